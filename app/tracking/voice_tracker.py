"""Voice sessions over time: open, credit and move the checkpoint, close, flush, reconcile.

No Discord here: the cog says where a member is now (`LiveVoice` or None) and this class turns
that into session and counter writes. One voice write is in flight per member (a lock per
member, shared by events, the flush job and reconciliation). Every write of a batch shares one
operation sequence, which also guards the session documents against late, older writes: first the
session documents record their next state and pending credits, then the counters are credited
(guarded), then the intents are cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from app.storage.retry import OpId, next_op_seq
from app.tracking.voice import LiveVoice, credit, zone
from app.wiring.clock import Clock, to_ms
from repositories.activity import ActivityRepository, Credit
from repositories.guild_settings import GuildSettingsRepository
from repositories.voice_sessions import (
    Intent,
    SessionWrite,
    VoiceSession,
    VoiceSessionRepository,
    session_key,
)

log = logging.getLogger(__name__)
FLUSH_BATCH = 1000


@dataclass(frozen=True)
class FlushResult:
    sessions: int
    seconds: float


class VoiceTracker:
    def __init__(
        self,
        activity: ActivityRepository,
        sessions: VoiceSessionRepository,
        guild_settings: GuildSettingsRepository,
        clock: Clock,
        default_cap_seconds: float,
        batch_size: int = FLUSH_BATCH,
        next_seq: Callable[[], int] = next_op_seq,
        on_credited: Callable[[list[Credit], OpId], None] | None = None,
    ) -> None:
        self._next_seq = next_seq
        self._on_credited = on_credited  # told each credit once written (acknowledged or in the outbox)
        self.activity = activity
        self.repo = sessions
        self.guild_settings = guild_settings
        self.clock = clock
        self.default_cap_seconds = default_cap_seconds
        self.batch_size = batch_size
        self._sessions: dict[str, VoiceSession] = {}  # open sessions of the guilds in `_known`
        self._known: set[int] = set()  # guilds whose sessions were read once; memory is newer since
        self._pending: dict[str, Intent] = {}  # intents recorded but not yet confirmed applied
        self._locks: dict[str, asyncio.Lock] = {}
        self._arrived: dict[str, list[int]] = {}  # times of voice changes waiting for their lock
        self._ready: dict[int, asyncio.Event] = {}
        self._reconciling: dict[int, asyncio.Lock] = {}
        self._paused: set[int] = set()  # guilds waiting for their gateway session to resume

    # ---- what callers use -----------------------------------------------------------------
    def open_sessions(self) -> dict[str, VoiceSession]:
        return dict(self._sessions)

    def is_ready(self, guild_id: int) -> bool:
        return self._ready_event(guild_id).is_set()

    async def update(self, guild_id: int, member_id: int, live: LiveVoice | None,
                     at: datetime | None = None) -> None:
        """A member's voice state changed at `at` (default: now): credit the time since the checkpoint
        up to then and record the new state. The change time is taken when the event arrives, not when
        the member's lock frees up (a write may hold it through retries during a MongoDB outage)."""
        now = to_ms(at or self.clock.now())
        key = session_key(guild_id, member_id)
        waiting = self._arrived.setdefault(key, [])
        waiting.append(now)
        taken = False  # two events of one member may share a millisecond: remove this one's entry once
        try:
            await self._ready_event(guild_id).wait()
            tz = await self._zone(guild_id)
            async with self._locked([key]):
                waiting.remove(now)
                taken = True
                write = self._transition(guild_id, member_id, live, tz, now, now)
                await self._commit([write] if write else [], [key])
        finally:
            if not taken:
                waiting.remove(now)
            if not waiting:
                self._arrived.pop(key, None)

    async def flush(self, guild_id: int | None = None, at: datetime | None = None) -> FlushResult:
        """Credit every open session (of one guild, or all) up to now and move its checkpoint.

        At most `batch_size` sessions per bulk write. "Now" is taken before the batch's locks, and a
        member with a voice change waiting for its lock is credited only up to that change's time.
        """
        started = time.perf_counter()
        keys = sorted(k for k, s in self._sessions.items() if guild_id is None or s.guild_id == guild_id)
        flushed = 0
        zones: dict[int, ZoneInfo] = {}
        for i in range(0, len(keys), self.batch_size):
            batch = keys[i:i + self.batch_size]
            for gid in {self._sessions[k].guild_id for k in batch if k in self._sessions}:
                if gid not in zones:
                    zones[gid] = await self._zone(gid)
            now = to_ms(at or self.clock.now())
            async with self._locked(batch):
                writes = []
                for key in batch:
                    current = self._sessions.get(key)
                    if current is None or current.guild_id not in zones:
                        continue  # closed meanwhile
                    if not self.is_ready(current.guild_id):
                        continue  # its guild is still being reconciled
                    live = LiveVoice(current.channel_id, current.flags)
                    until = min([now, *self._arrived.get(key, ())])
                    write = self._transition(current.guild_id, current.member_id, live,
                                             zones[current.guild_id], until, until)
                    if write is not None:
                        writes.append(write)
                await self._commit(writes, batch)
                flushed += len(writes)
        result = FlushResult(flushed, time.perf_counter() - started)
        log.info("voice flush: %d session(s) credited in %.3fs", result.sessions, result.seconds)
        return result

    async def suspend(self, guild_id: int) -> None:
        """The guild went away (bot removed, outage): credit its sessions up to now, stop tracking it.

        The sessions stay, in MongoDB and in memory (what this process wrote or queued is newer than
        what MongoDB may hold yet); when the guild is available again they are reconciled.
        """
        await self.flush(guild_id)
        self._ready_event(guild_id).clear()
        kept = sum(1 for s in self._sessions.values() if s.guild_id == guild_id)
        log.info("voice tracking suspended for guild %s (%d open session(s) kept)", guild_id, kept)

    async def pause(self, at: datetime | None = None) -> None:
        """The gateway connection dropped: credit every tracked guild up to `at` and hold its voice
        events until the session resumes (`resume`) or the guild is reconciled again after a new
        session. Without this, flushes during the gap would credit members who left meanwhile."""
        guilds = {g for g, event in self._ready.items() if event.is_set()}
        await self.flush(at=at)  # one pass over every ready guild's sessions
        for guild_id in guilds:
            self._ready_event(guild_id).clear()
            self._paused.add(guild_id)
        if guilds:
            log.info("voice tracking paused for %d guild(s) until the gateway session is back", len(guilds))

    def resume(self) -> None:
        """The session resumed: the missed events are replayed in order, nothing was lost."""
        for guild_id in self._paused:
            self._ready_event(guild_id).set()
        self._paused.clear()

    @contextlib.asynccontextmanager
    async def forgetting(self, guild_id: int, member_id: int) -> AsyncIterator[None]:
        """For an erase: hold the member's voice lock, settle credits in flight, and forget the open
        session (its document is deleted inside the block). A later voice change opens a new one."""
        key = session_key(guild_id, member_id)
        async with self._locked([key]):
            if key in self._pending:
                await self._apply_pending([key])
            self._sessions.pop(key, None)
            yield

    async def reconcile(self, guild_id: int, live: Mapping[int, LiveVoice]) -> None:
        """The guild is available: match stored sessions with who is in voice now.

        Still in voice: credit the downtime since the checkpoint, capped, and continue with the
        current state. Gone: close at the checkpoint (nothing credited). In voice without a
        session: open one now. Voice events of the guild wait until this is done; a member with
        such an event is settled at the event's time instead of now (credited until it, capped),
        and the waiting events then replay the changes at their own times.

        The stored sessions are read from MongoDB once per guild and process, after every write a
        previous run left in the outbox is replayed; from then on this tracker's memory holds every
        write it made or queued, so a later reconcile (guild available again, a re-IDENTIFY) uses
        memory and never a MongoDB state that the outbox has not caught up with.
        """
        lock = self._reconciling.setdefault(guild_id, asyncio.Lock())
        async with lock:
            config = await self.guild_settings.get(guild_id)
            tz = zone(config.time_zone)
            cap = config.voice_downtime_cap_seconds
            cap_ms = int((self.default_cap_seconds if cap is None else cap) * 1000)
            stored = await self._load(guild_id)
            members = {s.member_id for s in self._sessions.values() if s.guild_id == guild_id} | set(live)
            keys = [session_key(guild_id, m) for m in sorted(members)]
            keys += [s.key for s in stored if s.key not in keys]
            async with self._locked(keys):
                now = to_ms(self.clock.now())
                writes = []
                for member_id in sorted(members):
                    key = session_key(guild_id, member_id)
                    current = self._sessions.get(key)
                    # A voice event of the member that waits for this reconcile: the state found now
                    # held at most until it, and the waiting events replay what followed.
                    at = min([now, *self._arrived.get(key, ())])
                    until = at if current is None else min(at, current.checkpoint + cap_ms)
                    if current is not None and member_id not in live and at == now:
                        until = current.checkpoint  # left while we were away: close at the checkpoint
                    write = self._transition(guild_id, member_id, live.get(member_id), tz, at, until)
                    if write is not None:
                        writes.append(write)
                await self._commit(writes, keys)
            log.info("voice reconciled for guild %s: %d stored, %d in voice, %d write(s)",
                     guild_id, len(stored), len(live), len(writes))
        self._paused.discard(guild_id)
        self._ready_event(guild_id).set()

    # ---- internals ------------------------------------------------------------------------
    async def _load(self, guild_id: int) -> list[VoiceSession]:
        """The guild's sessions: from memory when known, else from MongoDB (adopting its intents)."""
        if guild_id in self._known:
            return [s for s in self._sessions.values() if s.guild_id == guild_id]
        await self.repo.writer.wait_backlog()
        stored = await self.repo.for_guild(guild_id)
        for session in stored:
            if session.intent is not None and session.key not in self._pending:
                self._pending[session.key] = session.intent
            if session.key not in self._sessions and not (session.intent and session.intent.closing):
                self._sessions[session.key] = replace(session, intent=None)
        self._known.add(guild_id)
        return stored

    def _ready_event(self, guild_id: int) -> asyncio.Event:
        return self._ready.setdefault(guild_id, asyncio.Event())

    async def _zone(self, guild_id: int) -> ZoneInfo:
        return zone((await self.guild_settings.get(guild_id)).time_zone)

    @contextlib.asynccontextmanager
    async def _locked(self, keys: Iterable[str]):
        """Hold the per-member locks of `keys` (taken in sorted order, so batches never deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self._locks.setdefault(key, asyncio.Lock()))
            yield

    def _transition(
        self, guild_id: int, member_id: int, live: LiveVoice | None, tz: ZoneInfo, now: int, until: int
    ) -> SessionWrite | None:
        """The write that credits [checkpoint, until) under the old state and continues at `now` as `live`."""
        key = session_key(guild_id, member_id)
        current = self._sessions.get(key)
        if current is None:
            if live is None:
                return None
            return SessionWrite(key, VoiceSession(guild_id, member_id, live.channel_id, now, now, live.flags))
        credits = tuple(
            Credit(guild_id, member_id, day, amounts)
            for day, amounts in credit(current.checkpoint, until, current.flags, tz).items()
        )
        following = None
        if live is not None:
            following = replace(current, channel_id=live.channel_id, flags=live.flags,
                                checkpoint=max(now, current.checkpoint))
            unchanged = (following.channel_id, following.flags) == (current.channel_id, current.flags)
            if not credits and unchanged:
                return None  # nothing to credit, nothing changed: the checkpoint stays
        intent = Intent("", credits, closing=following is None) if credits else None
        return SessionWrite(key, following, intent)

    async def _commit(self, writes: list[SessionWrite], keys: Iterable[str]) -> None:
        """Apply leftover intents of `keys`, then record `writes`, credit them, and clear their intents."""
        await self._apply_pending([k for k in keys if k in self._pending])
        if not writes:
            return
        seq = self._next_seq()
        writes = [replace(w, seq=seq, intent=replace(w.intent, op_id=seq) if w.intent else None)
                  for w in writes]
        await self.repo.record(writes)
        for write in writes:
            if write.session is None:
                self._sessions.pop(write.key, None)
            else:
                self._sessions[write.key] = write.session
            if write.intent is not None:
                self._pending[write.key] = write.intent
        await self._apply_pending([w.key for w in writes if w.intent is not None])

    async def _apply_pending(self, keys: list[str]) -> None:
        by_op: dict[OpId, list[str]] = {}
        for key in keys:
            by_op.setdefault(self._pending[key].op_id, []).append(key)
        for op_id, op_keys in by_op.items():
            intents = [self._pending[k] for k in op_keys]
            credits = [c for i in intents for c in i.credits]
            await self.activity.add_voice(credits, op_id)
            if self._on_credited is not None:
                self._on_credited(credits, op_id)
            await self.repo.finish(
                op_id,
                keep=[k for k in op_keys if not self._pending[k].closing],
                close=[k for k in op_keys if self._pending[k].closing],
            )
            for key in op_keys:
                del self._pending[key]
