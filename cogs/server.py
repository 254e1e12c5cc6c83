"""`/server stats [period]`: the server's joins, leaves, net growth, messages and voice time per day,
as a chart (`app.tracking.server_chart`) attached to an embed with the period's totals.

Visible to everyone: it shows no member's numbers, only sums over the server
(`app.wiring.privacy.SURFACES`). The read (`app.tracking.server_stats.ServerStatsReader`) runs in the
guild's heavy-read slot like every read that may aggregate, and the picture is drawn in a worker
thread. Days are the server's (`time_zone` setting).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.tracking.server_chart import ServerChart, render_server_chart
from app.tracking.server_stats import ServerStats, ServerStatsReader
from app.tracking.voice import PERIOD_LABELS
from app.wiring.commands import read_or_defer
from app.wiring.limits import SERVER_STATS_LIMIT, cooldown
from app.wiring.reply_limits import fit_embed
from cogs import style
from cogs.text import safe_name

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
FILE_NAME = "server-stats.png"
PERIOD_CHOICES = [
    app_commands.Choice(name="7 days", value="7d"),
    app_commands.Choice(name="30 days", value="30d"),
]
FOOTER = ("Joins include rejoins; leaves count members whose join the bot recorded. "
          "A thread's messages count under its channel.")
TOP_CHANNELS_NAME = "Top channels"
NO_CHANNELS = "No messages counted in a channel you can see in this period."


def signed(n: int) -> str:
    """`+3`, `-2`, `0`."""
    return f"{n:+,d}" if n else "0"


def viewable_by(member: Any) -> Callable[[int], bool]:
    """Whether a channel is listed in the top channels: it still exists and the member running the
    command may view it (a staff channel's name and count are not posted for a member who cannot
    see it; its messages stay in the shares' whole)."""
    guild = member.guild

    def listed(channel_id: int) -> bool:
        channel = guild.get_channel(channel_id)
        return channel is not None and channel.permissions_for(member).view_channel

    return listed


def top_channels_text(stats: ServerStats) -> str:
    """One line per top channel: `1. <#id> 1,234 (12.3%)`; the share is of every channel's messages
    in the period. At most 10 lines of about 50 characters: within a field's 1,024."""
    if not stats.channels:
        return NO_CHANNELS
    whole = stats.channel_messages or 1
    return "\n".join(f"{rank}. <#{channel}> {style.number(n)} ({n / whole:.1%})"
                     for rank, (channel, n) in enumerate(stats.channels, 1))


def build_server_stats_embed(guild_name: str, stats: ServerStats) -> discord.Embed:
    """The `/server stats` embed: the period's totals (the chart is attached as its image)."""
    totals = stats.totals
    embed = discord.Embed(
        title=f"Server stats - {PERIOD_LABELS[stats.period]}",
        description=f"{safe_name(guild_name)} · per day in server time ({stats.time_zone})",
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="Joins", value=style.number(totals.joins))
    embed.add_field(name="Leaves", value=style.number(totals.leaves))
    embed.add_field(name="Net growth", value=signed(totals.net))
    embed.add_field(name="Messages", value=style.number(totals.messages))
    embed.add_field(name="Voice", value=style.duration(totals.voice_s))
    embed.add_field(name=TOP_CHANNELS_NAME, value=top_channels_text(stats), inline=False)
    embed.set_footer(text=FOOTER)
    return embed


class ServerCog(commands.Cog, name="Server"):
    server = app_commands.Group(name="server", guild_only=True, description="This server's figures")

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    def reader(self) -> ServerStatsReader:
        repos = self.bot.repos
        return ServerStatsReader(repos.activity, repos.joins, getattr(self.bot, "ranks", None),
                                 getattr(self.bot, "channel_stats", None))

    @server.command(name="stats",
                    description="Joins, leaves, messages and voice time per day as a chart, and top channels")
    @app_commands.describe(period="Which period (default: 30 days)")
    @app_commands.choices(period=PERIOD_CHOICES)
    @cooldown("server stats", SERVER_STATS_LIMIT)
    async def stats(self, interaction: discord.Interaction, period: str = "30d") -> None:
        guild = interaction.guild
        assert guild is not None
        await interaction.response.defer(thinking=True)
        config = await self.bot.repos.guild_settings.get(guild.id)
        stats = await read_or_defer(interaction, self.reader().read(
            guild.id, period, self.bot.clock.now(), config.time_zone, viewable_by(interaction.user)))
        png = await asyncio.to_thread(render_server_chart, ServerChart(guild.name, stats))
        embed = build_server_stats_embed(guild.name, stats)
        embed.set_image(url=f"attachment://{FILE_NAME}")
        log.debug("/server stats in guild %s: %s, activity from %s, channels from %s", guild.id, period,
                  stats.activity_from, stats.channels_from)
        await interaction.followup.send(embed=fit_embed(embed), file=discord.File(io.BytesIO(png), FILE_NAME),
                                        allowed_mentions=NO_MENTIONS)
