"""Activity listeners: messages and voice states in, counter writes out (through the repositories).

Messages go to a group-commit writer (each claimed first from the ledger that splits every
channel's message ids between live counting and the backfill from history, issue 19: a gap
opens at start, on every gateway disconnect and when a guild becomes unavailable; the backfill
runs whenever a guild becomes available, which discord.py reports at start, after a re-IDENTIFY
and after a guild outage); voice changes go to the VoiceTracker (one write in flight
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

import aiohttp
import discord
from discord.ext import commands

from app.storage.retry import OpId
from app.tracking.backfill import (
    Backfill,
    HistoryForbidden,
    HistoryMessage,
    HistoryUnavailable,
    Ledger,
    ReadableChannel,
)
from app.tracking.message_counter import MessageCounter
from app.tracking.voice import LiveVoice, day_of, voice_flags, zone
from app.tracking.voice_tracker import FlushResult, VoiceTracker
from app.wiring.clock import to_ms
from app.wiring.heap import GuildCaches, keep_long_lived
from app.wiring.metrics import count_event
from app.wiring.validation import reject, valid_id
from repositories.activity import (
    FILL_GUARD,
    MESSAGE_GUARD,
    VOICE_GUARD,
    ActivityRepository,
    ChannelCount,
    ChannelMark,
    Credit,
    FillRange,
)
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


class ChannelHistory:
    """The backfill's view of Discord: readable channels and pages of their history (discord.py's
    `history`, which respects the route's rate limits)."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    def channels(self, guild_id: int) -> list[ReadableChannel]:
        guild = self.bot.get_guild(guild_id)
        if guild is None or guild.me is None:
            return []
        found: list[ReadableChannel] = []
        for channel in (*guild.text_channels, *guild.voice_channels, *guild.stage_channels, *guild.threads):
            perms = channel.permissions_for(guild.me)
            found.append(ReadableChannel(channel.id, getattr(channel, "parent_id", None),
                                         perms.view_channel and perms.read_message_history))
        return found

    async def history(self, channel_id: int, after: int, limit: int) -> list[HistoryMessage]:
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            return []  # deleted (or a thread no longer cached): nothing more to count there
        try:
            return [HistoryMessage(m.id, m.author.id if counts_message(m) else None)
                    async for m in channel.history(limit=limit, after=discord.Object(id=after),
                                                   oldest_first=True)]
        except discord.Forbidden as exc:
            raise HistoryForbidden(channel_id) from exc
        except discord.NotFound:
            return []
        except discord.DiscordServerError as exc:
            raise HistoryUnavailable(f"{exc.status} {exc.text or ''}".strip()) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise HistoryUnavailable(type(exc).__name__) from exc


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
        self.activity = activity
        self.ledger = Ledger(bot.sequence.next)
        self.messages = MessageCounter(activity.add_messages_marked, next_seq=bot.sequence.next,
                                       ledger=self.ledger, on_written=self._noter(MESSAGE_GUARD),
                                       set_aside=activity.writer.set_aside, on_refused=self._reranker(),
                                       on_channels_written=self._channel_noter(MESSAGE_GUARD),
                                       catch_up=activity.writer.catch_up)
        self.backfill = Backfill(
            self.ledger, self._write_page, guild_settings.get, lambda: to_ms(bot.clock.now()),
            bot.sequence.next, max_age_seconds=bot.settings.backfill_max_age_seconds,
            max_messages=bot.settings.backfill_max_messages, before_write=self.messages.barrier,
        )
        self.history = ChannelHistory(bot)
        self._loading: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_flush: tuple[datetime, FlushResult] | None = None
        self.caches = GuildCaches()  # long-lived objects frozen out of the GC's full collections

    def _reranker(self) -> Callable[[list[Credit]], None] | None:
        """After a batch was kept aside: the guilds' ranks and channel tables read MongoDB again
        (what it applied)."""
        tables = [t for t in (getattr(self.bot, "ranks", None), getattr(self.bot, "channel_stats", None))
                  if t is not None]
        if not tables:
            return None

        def rebuild(credits: list[Credit]) -> None:
            for guild_id in sorted({c.guild_id for c in credits}):
                for table in tables:
                    table.rebuild(guild_id)

        return rebuild

    def _channel_noter(self, guard: str) -> Callable[[list[ChannelCount], OpId], None] | None:
        """What tells the in-memory channel table about written channel counts."""
        table = getattr(self.bot, "channel_stats", None)
        if table is None:
            return None
        return lambda counts, op_id: table.note(counts, op_id, guard)

    async def _write_page(self, credits: list[Credit], op_id: int, fill: FillRange, mark: ChannelMark | None,
                          channels: list[ChannelCount]) -> None:
        """One backfill page (`add_backfill`), then the channel table told of its channel counts."""
        await self.activity.add_backfill(credits, op_id, fill, mark, channels)
        note = self._channel_noter(FILL_GUARD)
        if note is not None:
            note(channels, op_id)

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
        for task in list(self._tasks):
            task.cancel()  # a backfill resumes at the next start from its last written page
        if self.ledger.loaded.is_set():  # else nothing was written yet: no mark moved, and the
            await self.messages.wait_idle()  # next start counts these messages from history
        await self.voice.flush()

    # ---- messages --------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not counts_message(message):
            return
        assert message.guild is not None
        # The message id too: it becomes the channel's backfill mark, stored as a 64-bit int.
        ids = (message.id, message.author.id, message.channel.id, message.guild.id)
        if not all(valid_id(i) for i in ids):
            reject("MESSAGE_CREATE", "id out of range", guild=message.guild.id, member=message.author.id,
                   channel=message.channel.id)
            return
        config = await self.guild_settings.get(message.guild.id)
        channel = message.channel
        parent_id = getattr(channel, "parent_id", None)
        if channel.id in config.ignored_channels or parent_id in config.ignored_channels:
            return
        if not self.ledger.claim_live(message.guild.id, channel.id, message.id):
            return  # inside a backfill range: counted from history
        day = day_of(to_ms(self.bot.clock.now()), zone(config.time_zone))
        # A thread's (or forum post's) messages count under its parent channel: threads are many
        # and short-lived. Only a thread has `parent_id` (other channels have `category_id`).
        self.messages.add(message.guild.id, message.author.id, day, channel_id=parent_id or channel.id)
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
        await self.voice.update(member.guild.id, member.id, live_voice(after, afk, config), at=arrived,
                                before=live_voice(before, afk, config))

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        self._start_backfill(guild.id)
        await self.reconcile(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self._start_backfill(guild.id)
        await self.reconcile(guild)

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        self.ledger.open_gaps()  # unless the session resumes, what is sent now is not delivered
        await self.voice.pause(self.bot.clock.now())

    @commands.Cog.listener()
    async def on_lease_acquired(self) -> None:
        """Another process held the lease and counted meanwhile: its marks are read again before
        the backfill that the take-over's `guild_available` events start."""
        self.ledger.reload()
        self._loading = None

    # ---- backfill from channel history ---------------------------------------------------------
    def _start_backfill(self, guild_id: int) -> None:
        if self._loading is None:
            self._loading = asyncio.create_task(self._load_marks(), name="load channel marks")
        task = asyncio.create_task(self._backfill(guild_id), name=f"backfill {guild_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load_marks(self) -> None:
        """The stored marks and unfinished ranges, once every write of the previous run is in."""
        delay = 1.0
        await self.bot.writer.wait_backlog()
        while True:
            try:
                marks, ranges = await self.activity.channel_marks()
                break
            except Exception:
                log.exception("reading the channel marks failed; retrying in %.0fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONCILE_MAX_DELAY)
        self.ledger.load(marks, ranges)
        log.info("channel marks loaded: %d channels, %d unfinished backfill ranges", len(marks), len(ranges))

    async def _backfill(self, guild_id: int) -> None:
        counted = self.backfill.progress.messages
        try:
            await self.backfill.run_guild(guild_id, self.history)
        except Exception:
            log.exception("backfill of guild %s failed; the next start or gap resumes it", guild_id)
        else:
            log.info("backfill of guild %s: %s (all guilds: %s)", guild_id,
                     self.backfill.progress_of(guild_id).line(), self.backfill.progress.line())
        ranks = getattr(self.bot, "ranks", None)
        if ranks is not None and self.backfill.progress.messages != counted:
            ranks.rebuild(guild_id)  # backfilled counts reach the ranks through a fresh read

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self.voice.resume()

    @commands.Cog.listener()
    async def on_guild_unavailable(self, guild: discord.Guild) -> None:
        self.ledger.open_gaps(guild.id)
        await self.voice.suspend(guild.id)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.voice.suspend(guild.id)

    async def reconcile(self, guild: discord.Guild) -> None:
        """Reconcile the guild's voice sessions; while MongoDB is unreachable, keep trying. The
        guild's ranks are built in the background unless they are already."""
        self.caches.built(guild.id, guild)  # its member and voice-state cache was just built
        for table in (getattr(self.bot, "ranks", None), getattr(self.bot, "channel_stats", None)):
            if table is not None:
                table.ensure(guild.id)
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
