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
from cogs import style
from cogs.settings import require_manage_guild

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
READ_DEADLINE_SECONDS = 1.5


def verdict(round_trip: float | None, depth: int, oldest: datetime | None) -> str:
    """The one line leading `/data-status`: is what the bot counts saved now?"""
    waiting = style.count(depth, "write")
    if round_trip is None:
        return (f"**Not saving now:** the database is not answering; {waiting} waiting in the outbox, "
                "saved when it answers again. Nothing is lost.")
    if depth:
        return (f"**Catching up:** the database answers; {waiting} still waiting, the oldest since "
                f"{style.ago(oldest)}.")
    return "**All saved:** the database answers and nothing is waiting."


class StatusCog(commands.Cog, name="Status"):
    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def _snapshot_age(self, guild_id: int, now: datetime) -> str:
        try:
            state = await asyncio.wait_for(self.bot.repos.invite_guilds.get(guild_id), READ_DEADLINE_SECONDS)
        except (TimeoutError, PyMongoError):
            return "unavailable (database not answering)"
        return style.ago(state.snapshot_at)

    def _probe_line(self, now: datetime) -> str:
        probe = self.bot.probe_result
        if probe is None:
            return "not run"
        attempts = style.count(probe.attempts, "attempt")
        return f"write read back in {probe.round_trip_ms:.1f} ms ({attempts}), {style.ago(probe.at)}"

    async def _outbox_line(self, now: datetime) -> str:
        outbox, writer = self.bot.outbox, self.bot.writer
        oldest = await outbox.oldest_created_ms()
        if oldest is None:
            return "empty: everything is in MongoDB"
        replaying = " (being replayed)" if writer.draining else ""
        return f"{style.count(outbox.depth, 'write')} waiting, oldest {style.ago(from_ms(oldest))}{replaying}"

    def _activity_fields(self, embed: discord.Embed, now: datetime) -> None:
        activity = self.bot.get_cog("Activity")
        if activity is None:
            return
        embed.add_field(name="Open voice sessions", value=str(len(activity.voice.open_sessions())))
        last = activity.last_flush
        flushed = "not yet"
        if last is not None:
            sessions = style.count(last[1].sessions, "session")
            flushed = f"{style.ago(last[0])}, {sessions} in {last[1].seconds:.3f}s"
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
        oldest_ms = await bot.outbox.oldest_created_ms()
        oldest = from_ms(oldest_ms) if oldest_ms is not None else None
        embed.description = verdict(round_trip, bot.outbox.depth, oldest)
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
