"""Join and leave messages in the guild's announcement channel, with the inviter.

The invite tracker dispatches `tracked_join` (with `JoinFacts`) once a join is recorded and
`tracked_leave` once a leave is. Joins found after a downtime are announced late, after the
start-up reconciliation: one message each, or one batch message per guild when there are many.
A missing channel or permission is logged once per guild and shown in `/invites-admin debug`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord.ext import commands

from app.wiring.privacy import announce_totals
from cogs import style
from cogs.announcement_text import JoinFacts, allowed_for, join_text, late_batch_text, leave_text
from repositories.guild_settings import GuildConfig

log = logging.getLogger(__name__)
LATE_SETTLE_SECONDS = 2.0  # late joins arriving closer together than this are posted together
LATE_BATCH_MIN = 4  # from this many late joins on, one batch message instead of one each


class AnnouncementsCog(commands.Cog, name="Announcements"):
    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.problems: dict[int, str] = {}
        self._late: dict[int, list[JoinFacts]] = {}
        self._late_tasks: dict[int, asyncio.Task[None]] = {}

    def problem(self, guild_id: int) -> str | None:
        """Why announcements cannot be posted in this guild, if they cannot."""
        return self.problems.get(guild_id)

    async def wait_idle(self) -> None:
        for task in list(self._late_tasks.values()):
            if not task.done():
                await asyncio.shield(task)

    async def _invites_of(self, config: GuildConfig, inviter_id: int | None) -> int | None:
        """The inviter's total, or None where members may not see others' figures (the channel
        is read by every member: `app.wiring.privacy.announce_totals`)."""
        if not announce_totals(config.members_view_others):
            return None
        if inviter_id is None:
            return 0
        return (await self.bot.repos.invite_stats.member_summary(config.guild_id, inviter_id)).total

    # ---- events from the invite tracker --------------------------------------------------------
    @commands.Cog.listener()
    async def on_tracked_join(self, facts: JoinFacts) -> None:
        config = await self.bot.repos.guild_settings.get(facts.guild_id)
        if config.announcement_channel is None:
            return
        if not facts.live:
            self._late.setdefault(facts.guild_id, []).append(facts)
            self._schedule_late(facts.guild_id)
            return
        invites = await self._invites_of(config, facts.inviter_id)
        text = join_text(config.join_template, facts, invites, config.mention_member)
        mentioned = facts.member_id if config.mention_member else None
        await self._post(facts.guild_id, config.announcement_channel, text, mentioned)

    @commands.Cog.listener()
    async def on_tracked_leave(self, guild_id: int, member_id: int, member_name: str,
                               facts: JoinFacts | None) -> None:
        config = await self.bot.repos.guild_settings.get(guild_id)
        if config.announcement_channel is None:
            return
        invites = await self._invites_of(config, facts.inviter_id if facts else None)
        text = leave_text(config.leave_template, facts, member_id, member_name, invites)
        await self._post(guild_id, config.announcement_channel, text, None)

    # ---- late joins ---------------------------------------------------------------------------
    def _schedule_late(self, guild_id: int) -> None:
        task = self._late_tasks.get(guild_id)
        if task is not None and not task.done():
            task.cancel()
        self._late_tasks[guild_id] = asyncio.create_task(self._post_late(guild_id), name="late joins")

    async def _post_late(self, guild_id: int) -> None:
        await asyncio.sleep(LATE_SETTLE_SECONDS)
        joins = self._late.pop(guild_id, [])
        config = await self.bot.repos.guild_settings.get(guild_id)
        if not joins or config.announcement_channel is None:
            return
        if len(joins) >= LATE_BATCH_MIN:
            await self._post(guild_id, config.announcement_channel, late_batch_text(joins), None)
            return
        for facts in joins:
            invites = await self._invites_of(config, facts.inviter_id)
            text = join_text(config.join_template, facts, invites, config.mention_member)
            await self._post(guild_id, config.announcement_channel, text,
                             facts.member_id if config.mention_member else None)

    # ---- sending --------------------------------------------------------------------------------
    async def _post(self, guild_id: int, channel_id: int, text: str, mentioned: int | None) -> None:
        channel = self.bot.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel):
            self._problem(guild_id, f"the announcement channel {style.channel(channel_id)} is missing or "
                                    "not a text channel: pick another with `/settings set`")
            return
        try:
            await channel.send(text[:2000], allowed_mentions=allowed_for(mentioned))
        except discord.Forbidden:
            self._problem(guild_id, f"no permission to post in {style.channel(channel_id)}: give the bot "
                                    "Send Messages there")
        except discord.HTTPException as exc:
            log.warning("announcement in guild %s not posted: %s", guild_id, exc)
        else:
            self.problems.pop(guild_id, None)

    def _problem(self, guild_id: int, reason: str) -> None:
        if self.problems.get(guild_id) != reason:
            log.error("announcements in guild %s cannot be posted: %s", guild_id, reason)
        self.problems[guild_id] = reason
