"""Activity listeners: messages and voice states in, counter writes out (through the repositories).

Messages go to a group-commit writer; voice changes go to the VoiceTracker (one write in flight
per member). On each guild becoming available the stored sessions are reconciled with the real
voice states; a scheduler job flushes open sessions every VOICE_FLUSH_SECONDS and a shutdown
hook does the same on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import discord
from discord.ext import commands

from app.storage.retry import OpId
from app.tracking.message_counter import MessageCounter
from app.tracking.voice import LiveVoice, day_of, voice_flags, zone
from app.tracking.voice_tracker import FlushResult, VoiceTracker
from app.wiring.clock import to_ms
from app.wiring.heap import GuildCaches, keep_long_lived
from app.wiring.metrics import count_event
from app.wiring.validation import reject, valid_id
from repositories.activity import MESSAGE_GUARD, VOICE_GUARD, ActivityRepository, Credit
from repositories.guild_settings import GuildConfig, GuildSettingsRepository
from repositories.voice_sessions import VoiceSessionRepository

log = logging.getLogger(__name__)
FLUSH_JOB_ID = "voice-flush"
RECONCILE_MAX_DELAY = 60.0
LIVE_YIELD_EVERY = 1000


def live_voice(
    state: discord.VoiceState | None, afk_channel_id: int | None, config: GuildConfig
) -> LiveVoice | None:
    """Where the member is now and what counts there (None: not in a voice channel)."""
    if state is None or state.channel is None:
        return None
    channel_id = state.channel.id
    return LiveVoice(channel_id, voice_flags(
        channel_id=channel_id,
        self_video=state.self_video,
        self_stream=bool(state.self_stream),
        self_deaf=state.self_deaf,
        afk_channel_id=afk_channel_id,
        count_self_deafened=config.count_self_deafened,
    ))


def counts_message(message: discord.Message) -> bool:
    """Guild messages by people: no bots, webhooks, system messages or DMs."""
    return (
        message.guild is not None
        and hasattr(message, "author")  # a MESSAGE_CREATE without an author parses, without the attribute
        and not message.author.bot
        and message.webhook_id is None
        and not message.is_system()
    )


class ActivityCog(commands.Cog, name="Activity"):
    def __init__(
        self,
        bot: Any,
        activity: ActivityRepository,
        sessions: VoiceSessionRepository,
        guild_settings: GuildSettingsRepository,
    ) -> None:
        self.bot = bot
        self.guild_settings = guild_settings
        self.voice = VoiceTracker(
            activity, sessions, guild_settings, bot.clock, bot.settings.voice_downtime_cap_seconds,
            next_seq=bot.sequence.next, on_credited=self._noter(VOICE_GUARD),
        )
        self.messages = MessageCounter(activity.add_messages, next_seq=bot.sequence.next,
                                       on_written=self._noter(MESSAGE_GUARD))
        self.last_flush: tuple[datetime, FlushResult] | None = None
        self.caches = GuildCaches()  # long-lived objects frozen out of the GC's full collections

    def _noter(self, guard: str) -> Callable[[list[Credit], OpId], None] | None:
        """What tells the in-memory ranks about a written count (see app.tracking.ranks)."""
        ranks = getattr(self.bot, "ranks", None)
        if ranks is None:
            return None
        return lambda credits, op_id: ranks.note(credits, op_id, guard)

    async def cog_load(self) -> None:
        self.bot.add_interval_job(FLUSH_JOB_ID, self.flush_voice, self.bot.settings.voice_flush_seconds)
        self.bot.add_shutdown_hook("activity flush", self.shutdown_flush)

    async def wait_idle(self) -> None:
        await self.messages.wait_idle()

    async def flush_voice(self) -> FlushResult | None:
        try:
            result = await self.voice.flush()
        except Exception:
            log.exception("voice flush failed; the next run credits the same time")
            return None
        self.last_flush = (self.bot.clock.now(), result)
        metrics = getattr(self.bot, "metrics", None)
        if metrics is not None:
            metrics.flush_seconds.observe(result.seconds)
        return result

    async def shutdown_flush(self) -> None:
        await self.messages.wait_idle()
        await self.voice.flush()

    # ---- messages --------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not counts_message(message):
            return
        assert message.guild is not None
        if not valid_id(message.author.id) or not valid_id(message.channel.id):
            reject("MESSAGE_CREATE", "id out of range", guild=message.guild.id, member=message.author.id,
                   channel=message.channel.id)
            return
        config = await self.guild_settings.get(message.guild.id)
        channel = message.channel
        parent_id = getattr(channel, "parent_id", None)
        if channel.id in config.ignored_channels or parent_id in config.ignored_channels:
            return
        day = day_of(to_ms(self.bot.clock.now()), zone(config.time_zone))
        self.messages.add(message.guild.id, message.author.id, day)
        count_event(self.bot, "message")

    # ---- voice -----------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        if member.bot:
            return
        if not valid_id(member.id) or (after.channel is not None and not valid_id(after.channel.id)):
            reject("VOICE_STATE_UPDATE", "id out of range", guild=member.guild.id, member=member.id)
            return
        arrived = self.bot.clock.now()
        config = await self.guild_settings.get(member.guild.id)
        afk = member.guild.afk_channel.id if member.guild.afk_channel else None
        count_event(self.bot, "voice")
        await self.voice.update(member.guild.id, member.id, live_voice(after, afk, config), at=arrived)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self.reconcile(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.reconcile(guild)

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        await self.voice.pause(self.bot.clock.now())

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self.voice.resume()

    @commands.Cog.listener()
    async def on_guild_unavailable(self, guild: discord.Guild) -> None:
        await self.voice.suspend(guild.id)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.voice.suspend(guild.id)

    async def reconcile(self, guild: discord.Guild) -> None:
        """Reconcile the guild's voice sessions; while MongoDB is unreachable, keep trying. The
        guild's ranks are built in the background unless they are already."""
        self.caches.built(guild.id, guild)  # its member and voice-state cache was just built
        ranks = getattr(self.bot, "ranks", None)
        if ranks is not None:
            ranks.ensure(guild.id)
        delay = 1.0
        while True:
            try:
                await self._reconcile_once(guild)
                keep_long_lived("voice reconciled")
                return
            except Exception:
                log.exception("voice reconciliation for guild %s failed; retrying in %.0fs", guild.id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONCILE_MAX_DELAY)

    async def _reconcile_once(self, guild: discord.Guild) -> None:
        config = await self.guild_settings.get(guild.id)
        afk = guild.afk_channel.id if guild.afk_channel else None
        live: dict[int, LiveVoice] = {}
        seen = 0
        for channel in guild.channels:
            if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
                continue
            for member_id, state in list(channel.voice_states.items()):
                seen += 1
                if seen % LIVE_YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a big guild's voice states: keep the event loop turning
                member = guild.get_member(member_id)
                where = live_voice(state, afk, config)
                if where is not None and not (member is not None and member.bot):
                    live[member_id] = where
        await self.voice.reconcile(guild.id, live)
