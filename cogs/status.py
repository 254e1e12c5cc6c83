"""`/data-status`: is persistence live, and is anything waiting? For members with Manage Server."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from pymongo.errors import PyMongoError

from app import __version__
from app.storage.database import ping_ms
from app.wiring.clock import from_ms
from app.wiring.reply_limits import fit_embed
from cogs.settings import require_manage_guild

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
READ_DEADLINE_SECONDS = 1.5


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "never"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m ago"


class StatusCog(commands.Cog, name="Status"):
    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def _snapshot_age(self, guild_id: int, now: datetime) -> str:
        try:
            state = await asyncio.wait_for(self.bot.repos.invite_guilds.get(guild_id), READ_DEADLINE_SECONDS)
        except (TimeoutError, PyMongoError):
            return "unavailable (database not answering)"
        return age(state.snapshot_at, now)

    def _probe_line(self, now: datetime) -> str:
        probe = self.bot.probe_result
        if probe is None:
            return "not run"
        return (f"write read back in {probe.round_trip_ms:.1f} ms ({probe.attempts} attempt(s)), "
                f"{age(probe.at, now)}")

    async def _outbox_line(self, now: datetime) -> str:
        outbox, writer = self.bot.outbox, self.bot.writer
        oldest = await outbox.oldest_created_ms()
        if oldest is None:
            return "empty: everything is in MongoDB"
        replaying = " (being replayed)" if writer.draining else ""
        return f"{outbox.depth} writes waiting, oldest {age(from_ms(oldest), now)}{replaying}"

    def _activity_fields(self, embed: discord.Embed, now: datetime) -> None:
        activity = self.bot.get_cog("Activity")
        if activity is None:
            return
        embed.add_field(name="Open voice sessions", value=str(len(activity.voice.open_sessions())))
        last = activity.last_flush
        flushed = "not yet"
        if last is not None:
            flushed = f"{age(last[0], now)}, {last[1].sessions} sessions in {last[1].seconds:.3f}s"
        embed.add_field(name="Last voice flush", value=flushed)
        embed.add_field(name="Messages from history", value=activity.backfill.progress.line(), inline=False)

    async def status_embed(self, guild_id: int) -> discord.Embed:
        bot, now = self.bot, self.bot.clock.now()
        round_trip = await ping_ms(bot.db, READ_DEADLINE_SECONDS)
        embed = discord.Embed(title="Data status", color=0x2ECC71 if round_trip is not None else 0xE74C3C)
        embed.add_field(name="Startup probe", value=self._probe_line(now), inline=False)
        answers = f"answers in {round_trip:.1f} ms" if round_trip is not None else "NOT answering"
        embed.add_field(name="Database now", value=answers)
        embed.add_field(name="Server", value=f"{bot.server_kind} MongoDB at {bot.db_host}")
        embed.add_field(name="Outbox", value=await self._outbox_line(now), inline=False)
        self._activity_fields(embed, now)
        embed.add_field(name="Invite snapshot", value=await self._snapshot_age(guild_id, now))
        embed.set_footer(text=f"version {__version__}")
        return embed

    @app_commands.command(name="data-status", extras={"needs_database": False},
                          description="Is persistence live? What is waiting? (Manage Server)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def data_status(self, interaction: discord.Interaction) -> None:
        if not await require_manage_guild(interaction):
            return
        assert interaction.guild is not None
        embed = await self.status_embed(interaction.guild.id)
        await interaction.response.send_message(embed=fit_embed(embed), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
