"""`/export leaderboard|invites|joins|channels [period]` (Manage Server): a CSV file of this server's
figures.

The file is made by `app.operations.export` (columns: docs/export.md) and attached to an ephemeral
reply. Discord takes files up to the size it gives with each interaction (`attachment_size_limit`,
10 MiB on a server without boosts); a longer export is cut after the last whole row that fits and
the reply says so, with the command that writes the whole file on the bot's host. One export per
server at a time, and a cooldown per member.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.operations.export import (
    ChannelNames,
    ExportRequest,
    ExportResult,
    Names,
    Sources,
    file_name,
    write_export,
)
from app.tracking.voice import PERIOD_LABELS, zone
from app.wiring.commands import answer
from app.wiring.limits import EXPORT_LIMIT, SingleFlight, retry_text
from cogs import style
from cogs.stats import PERIOD_CHOICES

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
MARGIN = 64 * 1024  # bytes kept free under the upload limit for the rest of the request
WHAT = {"leaderboard": "activity per member", "invites": "invite figures per inviter",
        "joins": "joins, one per row", "channels": "messages per channel"}
ALREADY_RUNNING = "An export of this server is already running; run `/export` again when it is done."
PERIOD_HELP = "Which period (default: all time)"


def script_command(guild_id: int, kind: str, period: str) -> str:
    return f"python -m scripts.export_csv --guild {guild_id} {kind} --period {period}"


def reply_text(request: ExportRequest, result: ExportResult, limit: int) -> str:
    """What the reply says about the attached file."""
    what = f"{WHAT[request.kind]}, {PERIOD_LABELS[request.period]}"
    if result.cut:
        return (f"**The file was cut**: it holds the first {style.count(result.rows, 'row')} ({what}), as "
                f"much as Discord takes from the bot here ({limit / 2**20:.0f} MiB). For the whole set run "
                f"`{script_command(request.guild_id, request.kind, request.period)}` on the bot's host.")
    if not result.rows:
        return f"Nothing to export ({what}): the file has only the column names."
    return (f"{style.count(result.rows, 'row')} ({what}). UTF-8 CSV, dates in UTC; the columns are "
            "described in the bot's docs/export.md.")


def channel_names(guild: discord.Guild) -> ChannelNames:
    """The server's channels' names now (None for a deleted channel)."""

    def name(channel_id: int) -> str | None:
        channel = guild.get_channel(channel_id)
        return channel.name if channel is not None else None

    return name


class ExportCog(commands.Cog, name="Export"):
    export = app_commands.Group(
        name="export", guild_only=True,
        description="This server's figures as a CSV file for a spreadsheet (Manage Server)",
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self._running = SingleFlight()

    @export.command(name="leaderboard", description="Messages, voice, camera and streaming time per member "
                                                    "(Manage Server)")
    @app_commands.describe(period=PERIOD_HELP)
    @app_commands.choices(period=PERIOD_CHOICES)
    async def leaderboard(self, interaction: discord.Interaction, period: str = "all") -> None:
        await self._export(interaction, "leaderboard", period)

    @export.command(name="invites", description="Regular, left, fake, bonus and total invites per inviter, "
                                                "with staff codes (Manage Server)")
    @app_commands.describe(period="Members brought in during (default: all time; bonus counts only all time)")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def invites(self, interaction: discord.Interaction, period: str = "all") -> None:
        await self._export(interaction, "invites", period)

    @export.command(name="joins", description="Every join: who, when, how, invited by whom, fake, left "
                                              "(Manage Server)")
    @app_commands.describe(period="Joins during (default: all time)")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def joins(self, interaction: discord.Interaction, period: str = "all") -> None:
        await self._export(interaction, "joins", period)

    @export.command(name="channels", description="Messages per channel, a thread's under its channel "
                                                 "(Manage Server)")
    @app_commands.describe(period=PERIOD_HELP)
    @app_commands.choices(period=PERIOD_CHOICES)
    async def channels(self, interaction: discord.Interaction, period: str = "all") -> None:
        await self._export(interaction, "channels", period)

    async def _export(self, interaction: discord.Interaction, kind: str, period: str) -> None:
        guild = interaction.guild
        if guild is None or not interaction.permissions.manage_guild:
            await answer(interaction, style.needs_manage_server(f"export {kind}"))
            return
        with self._running.hold(guild.id, "an export") as mine:
            if not mine:
                await answer(interaction, ALREADY_RUNNING)
                return
            left = self.bot.cooldowns.hit("export", guild.id, interaction.user.id, EXPORT_LIMIT)
            if left > 0:
                await answer(interaction, retry_text(left))
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            await self._send_file(interaction, guild, kind, period)

    async def _send_file(self, interaction: discord.Interaction, guild: discord.Guild, kind: str,
                         period: str) -> None:
        config = await self.bot.repos.guild_settings.get(guild.id)
        now = self.bot.clock.now()
        request = ExportRequest(guild.id, kind, period, now, zone(config.time_zone))
        limit = interaction.filesize_limit
        buffer = io.BytesIO()
        sources = Sources.of(self.bot.repos, getattr(self.bot, "ranks", None))
        result = await write_export(sources, request, buffer, names=self._names(guild),
                                    limit=limit - MARGIN, channel_names=channel_names(guild))
        buffer.seek(0)
        attachment = discord.File(buffer, file_name(kind, period, guild.id, now))
        await interaction.followup.send(reply_text(request, result, limit), file=attachment, ephemeral=True,
                                        allowed_mentions=NO_MENTIONS)

    def _names(self, guild: discord.Guild) -> Names:
        """Display names of the members here now; the name at their last join for the others."""
        joins = self.bot.repos.joins

        async def lookup(member_ids: set[int]) -> dict[int, str]:
            present = {m: member.display_name for m in member_ids if (member := guild.get_member(m))}
            earlier = await joins.latest_names(guild.id, member_ids - set(present))
            return {**earlier, **present}

        return lookup
