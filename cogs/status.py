"""`/data-status`: is what the bot counts in this server saved? For members with Manage Server.

Per guild only: a guild's admin sees their server's figures (its open voice sessions, its
backfill, its invite snapshot) and the bot's state in words (database answering, writes waiting,
counting or standing by), never a figure, host or path of the bot as a whole: the bot may serve
other servers, whose admins are not this one's. The operator has those in the logs, `/metrics`
and `/healthz` (`app/wiring/health.py`) and the command-line tools (`docs/outbox.md`). The outbox
is one queue for every guild (a unit of writes can hold several guilds'), so it is told in words.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from pymongo.errors import PyMongoError

from app import __version__
from app.storage.database import ping_ms
from app.wiring.reply_limits import fit_embed
from cogs import style
from cogs.settings import require_manage_guild

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
READ_DEADLINE_SECONDS = 1.5
ROLES = {
    "active": "Active: this bot counts this server's activity and invites",
    "standby": "Standing by: another process of this bot counts; this one takes over if it stops",
}


def verdict(answers: bool, waiting: bool) -> str:
    """The one line leading `/data-status`: is what the bot counts saved now? (In words: the
    outbox's depth is the whole bot's.)"""
    if not answers:
        return ("**Not saving now:** the database is not answering; what the bot counts waits in its "
                "local outbox and is saved when it answers again. Nothing is lost.")
    if waiting:
        return "**Catching up:** the database answers; writes kept while it was away are still being saved."
    return "**All saved:** the database answers and nothing is waiting."


class StatusCog(commands.Cog, name="Status"):
    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def _snapshot_age(self, guild_id: int) -> str:
        try:
            state = await asyncio.wait_for(self.bot.repos.invite_guilds.get(guild_id), READ_DEADLINE_SECONDS)
        except (TimeoutError, PyMongoError):
            return "unavailable (database not answering)"
        return style.ago(state.snapshot_at)

    def _probe_line(self) -> str:
        probe = self.bot.probe_result
        if probe is None:
            return "not run"
        return f"a test write was read back {style.ago(probe.at)}"

    def _activity_fields(self, embed: discord.Embed, guild_id: int) -> None:
        activity = self.bot.get_cog("Activity")
        if activity is None:
            return
        sessions = sum(1 for s in activity.voice.open_sessions().values() if s.guild_id == guild_id)
        embed.add_field(name="Open voice sessions", value=str(sessions))
        last = activity.last_flush
        embed.add_field(name="Voice time last saved", value=style.ago(last[0]) if last else "not yet")
        embed.add_field(name="Messages from history", value=activity.backfill.progress_of(guild_id).line(),
                        inline=False)
        rewards = self.bot.get_cog("Rewards")
        if rewards is not None:
            embed.add_field(name="Activity roles", value=rewards.progress_line(guild_id), inline=False)

    async def status_embed(self, guild_id: int) -> discord.Embed:
        bot = self.bot
        answers = await ping_ms(bot.db, READ_DEADLINE_SECONDS) is not None
        embed = discord.Embed(title="Data status", color=0x2ECC71 if answers else 0xE74C3C)
        embed.description = verdict(answers, bot.outbox.depth > 0)
        embed.add_field(name="Counting", value=ROLES.get(bot.lease.role, bot.lease.role), inline=False)
        embed.add_field(name="Database", value="answering" if answers else "not answering")
        embed.add_field(name="Startup check", value=self._probe_line())
        self._activity_fields(embed, guild_id)
        embed.add_field(name="Invite snapshot", value=await self._snapshot_age(guild_id))
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
