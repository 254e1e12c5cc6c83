"""Voice sessions over time: open, credit and move the checkpoint, close, flush, reconcile.

No Discord here: the cog says where a member is now (`LiveVoice` or None) and this class turns
that into writes. One voice write is in flight per member (a lock per member, shared by events,
the flush job and reconciliation). Every write of a batch shares one operation sequence and goes
to MongoDB as one `Writer` unit, applied in order:

1. new sessions are listed in `voice_sessions` (the directory a start reads);
2. ONE guarded update per member on the all-time activity document credits the total, moves the
   checkpoint (`voice_open`) and records the day credits (`voice_last`);
3. the day documents are credited (guarded by the same sequence);
4. closed sessions are unlisted (and entries of the shape before converted).

A crash between 2 and 3 leaves `voice_last` ahead of the day documents: the next load applies the
missing days under their own sequence (exactly once, the guard refuses a replay). See
`docs/activity.md` for the full crash analysis.
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

from app.storage.retry import GuardedUpdate, OpId, next_op_seq
from app.storage.writes import Write
from app.tracking.voice import LiveVoice, credit, zone
from app.wiring.clock import Clock, to_ms
from app.wiring.heap import building, collect_young_if_due
from repositories.activity import ActivityRepository, Credit, VoiceState, VoiceTotal, voice_updates
from repositories.guild_settings import GuildSettingsRepository
from repositories.voice_sessions import (
    Entry,
    Intent,
    VoiceSession,
    VoiceSessionRepository,
    entry_convert,
    entry_delete,
    entry_upsert,
    session_key,
)

log = logging.getLogger(__name__)
UNKNOWN = object()  # a voice event whose state before it was not given
FLUSH_BATCH = 500
YIELD_EVERY = 200  # transitions computed between two event-loop turns
LOCK_YIELD_EVERY = 1000  # locks taken between two event-loop turns
# a flush or reconcile of this many sessions runs as the builds do (`app/wiring/heap.py`): no
# automatic collection inside (a full one walked the batches' objects: 38 ms at 10,000), the young
# generations collected when due, and the new sessions frozen at the end (they live until the next
# flush)
FREEZE_AFTER = 1000
NOTE_CHUNK = 200  # members whose credits are told to the ranks in one event-loop turn


@dataclass(frozen=True, slots=True)
class VoiceWrite:
    """One member's next state: `session` (None: closed) after crediting `credits`; `opens`: the
    session is not listed yet; `converts`: its entry is in the shape before."""

    guild_id: int
    member_id: int
    session: VoiceSession | None
    credits: tuple[Credit, ...] = ()
    opens: bool = False
    converts: bool = False

    @property
    def key(self) -> str:
        return session_key(self.guild_id, self.member_id)

    def total(self) -> VoiceTotal:
        state = None if self.session is None else self.session.open_fields()
        return VoiceTotal(self.guild_id, self.member_id, self.credits, state)


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
        self._pending: dict[str, Intent] = {}  # intents of the shape before, not yet confirmed applied
        self._unsure: dict[str, tuple[int, VoiceWrite]] = {}  # writes whose unit raised: resubmitted first
        self._listed: set[str] = set()  # sessions with an entry in the directory
        self._legacy: set[str] = set()  # entries in the shape before, converted at the next write
        self._locks: dict[str, asyncio.Lock] = {}
        self._arrived: dict[str, list[int]] = {}  # times of voice changes waiting for their lock
        # For a member whose changes wait for the guild's reconcile: where they were before the first
        # of them, i.e. what the GUILD_CREATE the bot came back with showed (the reconcile's own view
        # of the guild already holds the later changes).
        self._before: dict[str, LiveVoice | None] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._reconciling: dict[int, asyncio.Lock] = {}
        self._paused: set[int] = set()  # guilds waiting for their gateway session to resume

    # ---- what callers use -----------------------------------------------------------------
    def open_sessions(self) -> dict[str, VoiceSession]:
        return dict(self._sessions)

    def is_ready(self, guild_id: int) -> bool:
        return self._ready_event(guild_id).is_set()

    async def update(self, guild_id: int, member_id: int, live: LiveVoice | None,
                     at: datetime | None = None, *, before: LiveVoice | object | None = UNKNOWN) -> None:
        """A member's voice state changed at `at` (default: now) from `before`: credit the time since
        the checkpoint up to then and record the new state. The change time is taken when the event
        arrives, not when the member's lock frees up (a write may hold it through retries during a
        MongoDB outage)."""
        now = to_ms(at or self.clock.now())
        key = session_key(guild_id, member_id)
        if before is not UNKNOWN and not self._ready_event(guild_id).is_set():
            self._before.setdefault(key, before)  # type: ignore[arg-type]
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
        def wanted(gid: int) -> bool:
            return guild_id is None or gid == guild_id

        with building("voice flush", large=len(self._sessions) + len(self._unsure) >= FREEZE_AFTER):
            # the open sessions, and writes whose unit raised (a close among them): the batch's
            # commit resubmits those first
            keys = sorted({k for k, s in self._sessions.items() if wanted(s.guild_id)}
                          | {k for k, (_, w) in self._unsure.items() if wanted(w.guild_id)})
            flushed = await self._flush_batches(keys, at)
        result = FlushResult(flushed, time.perf_counter() - started)
        log.info("voice flush: %d session(s) credited in %.3fs", result.sessions, result.seconds)
        return result

    async def _flush_batches(self, keys: list[str], at: datetime | None) -> int:
        flushed = 0
        zones: dict[int, ZoneInfo] = {}
        for i in range(0, len(keys), self.batch_size):
            collect_young_if_due("voice flush")
            batch = keys[i:i + self.batch_size]
            for gid in {self._sessions[k].guild_id for k in batch if k in self._sessions}:
                if gid not in zones:
                    zones[gid] = await self._zone(gid)
            now = to_ms(at or self.clock.now())
            async with self._locked(batch):
                writes = []
                for n, key in enumerate(batch, 1):
                    if n % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # bound the event-loop stall of a batch
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
        return flushed

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
        if self._paused:
            log.info("voice tracking resumed for %d guild(s): the session is back", len(self._paused))
        self._paused.clear()

    @contextlib.asynccontextmanager
    async def forgetting(self, guild_id: int, member_id: int) -> AsyncIterator[None]:
        """For an erase: hold the member's voice lock, settle credits in flight, and forget the open
        session (its document is deleted inside the block). A later voice change opens a new one."""
        key = session_key(guild_id, member_id)
        async with self._locked([key]):
            await self._settle([key])
            self._sessions.pop(key, None)
            self._listed.discard(key)
            self._legacy.discard(key)
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
            ordered = sorted(members)
            keys = {session_key(guild_id, m) for m in ordered} | {s.key for s in stored}
            written = 0
            async with self._locked(keys):
                with building("voice reconciled", large=len(keys) >= FREEZE_AFTER):
                    now = to_ms(self.clock.now())
                    for i in range(0, len(ordered), self.batch_size):
                        collect_young_if_due("voice reconcile")
                        batch = ordered[i:i + self.batch_size]
                        writes = await self._reconciled(guild_id, batch, live, tz, now, cap_ms)
                        await self._commit(writes, [session_key(guild_id, m) for m in batch])
                        written += len(writes)
                        await asyncio.sleep(0)
                    await self._settle(keys)
            for key in [k for k in self._before if k.startswith(f"{guild_id}:")]:
                del self._before[key]  # a member settled without a session: their events replay
            log.info("voice reconciled for guild %s: %d stored, %d in voice, %d write(s)",
                     guild_id, len(stored), len(live), written)
        self._paused.discard(guild_id)
        self._ready_event(guild_id).set()

    # ---- internals ------------------------------------------------------------------------
    async def _reconciled(self, guild_id: int, members: list[int], live: Mapping[int, LiveVoice],
                          tz: ZoneInfo, now: int, cap_ms: int) -> list[VoiceWrite]:
        writes = []
        for n, member_id in enumerate(members, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # bound the event-loop stall of a batch
            key = session_key(guild_id, member_id)
            current = self._sessions.get(key)
            # A voice event of the member that waits for this reconcile: the state found now held
            # at most until it, and the waiting events replay what followed.
            at = min([now, *self._arrived.get(key, ())])
            until = at if current is None else min(at, current.checkpoint + cap_ms)
            back_then = self._before.pop(key, live.get(member_id) if at == now else UNKNOWN)
            if current is not None and back_then is None:
                until = current.checkpoint  # left while we were away: close at the checkpoint
            write = self._transition(guild_id, member_id, live.get(member_id), tz, at, until)
            if write is not None:
                writes.append(write)
        return writes

    async def _load(self, guild_id: int) -> list[VoiceSession]:
        """The guild's sessions: from memory when known, else from MongoDB (the directory, then the
        members' all-time documents; day credits a crash left behind are applied first)."""
        if guild_id in self._known:
            return [s for s in self._sessions.values() if s.guild_id == guild_id]
        await self.repo.writer.wait_backlog()
        started = time.perf_counter()
        entries = await self.repo.entries(guild_id)
        states = await self.activity.voice_states(guild_id, [e.member_id for e in entries])
        stored: list[VoiceSession] = []
        unlisted: list[Entry] = []
        missing: dict[int, list[Credit]] = {}
        for n, entry in enumerate(entries, 1):
            if n % LOCK_YIELD_EVERY == 0:
                await asyncio.sleep(0)
            state = states.get(entry.member_id)
            if state is not None and state.last_op is not None and state.last_op >= entry.seq:
                session = self._adopt(entry, state)
                missing.setdefault(state.last_op, []).extend(state.last_days)
            elif entry.legacy is not None:
                session = self._adopt_legacy(entry)
            else:
                session = None  # listed, but its first write never landed
            if session is None:
                unlisted.append(entry)
            else:
                stored.append(session)
        await self._apply_missing_days(missing)
        await self._apply_pending([e.key for e in entries if e.key in self._pending])
        await self._unlist(unlisted)
        self._known.add(guild_id)
        log.info("voice sessions of guild %s loaded: %d entries, %d open, in %.3fs", guild_id, len(entries),
                 len(stored), time.perf_counter() - started)
        return stored

    def _adopt(self, entry: Entry, state: VoiceState) -> VoiceSession | None:
        """A session stored in the all-time document (an entry of the shape before is converted)."""
        if entry.legacy is not None:
            self._legacy.add(entry.key)
        if state.open is None:
            return None  # closed: only its entry is left
        session = VoiceSession.from_open(entry.guild_id, entry.member_id, dict(state.open))
        self._sessions.setdefault(entry.key, session)
        self._listed.add(entry.key)
        return session

    def _adopt_legacy(self, entry: Entry) -> VoiceSession | None:
        """A session stored in the shape before: its intent is applied as then; written in the new
        shape at the reconcile that follows."""
        session = entry.legacy
        assert session is not None
        self._listed.add(entry.key)
        self._legacy.add(entry.key)
        if session.intent is not None and entry.key not in self._pending:
            self._pending[entry.key] = session.intent
        if session.intent is not None and session.intent.closing:
            return None
        self._sessions.setdefault(entry.key, replace(session, intent=None))
        return session

    async def _apply_missing_days(self, by_op: dict[int, list[Credit]]) -> None:
        """The day documents of each member's last operation that a crash kept from landing."""
        for op_id, credits in sorted(by_op.items()):
            missing = await self.activity.days_missing(credits, op_id)
            if missing:
                log.warning("voice: %d day credit(s) of operation %d were not applied; applying them",
                            len(missing), op_id)
                await self.activity.add_voice_days(missing, op_id)
                if self._on_credited is not None:
                    self._on_credited(missing, op_id)

    async def _unlist(self, entries: list[Entry]) -> None:
        """Entries with no open session behind them (a crash before their first or after their
        last write): deleted, unless a newer write listed them again."""
        if entries:
            await self.repo.writer.submit(
                [Write.bulk(self.repo.collection_name, [entry_delete(e.key, e.seq + 1) for e in entries])],
                "unlist voice sessions")
        for entry in entries:
            self._listed.discard(entry.key)
            self._legacy.discard(entry.key)

    def _ready_event(self, guild_id: int) -> asyncio.Event:
        return self._ready.setdefault(guild_id, asyncio.Event())

    async def _zone(self, guild_id: int) -> ZoneInfo:
        return zone((await self.guild_settings.get(guild_id)).time_zone)

    @contextlib.asynccontextmanager
    async def _locked(self, keys: Iterable[str]):
        """Hold the per-member locks of `keys` (taken in sorted order, so batches never deadlock)."""
        held: list[asyncio.Lock] = []
        try:
            for n, key in enumerate(sorted(set(keys)), 1):
                lock = self._locks.setdefault(key, asyncio.Lock())
                await lock.acquire()
                held.append(lock)
                if n % LOCK_YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # uncontended locks never yield: 10,000 would stall the loop
            yield
        finally:
            for lock in held:
                lock.release()

    def _transition(
        self, guild_id: int, member_id: int, live: LiveVoice | None, tz: ZoneInfo, now: int, until: int
    ) -> VoiceWrite | None:
        """The write that credits [checkpoint, until) under the old state and continues at `now` as `live`."""
        key = session_key(guild_id, member_id)
        current = self._sessions.get(key)
        opens = key not in self._listed
        converts = key in self._legacy
        if current is None:
            if live is None:
                return None
            session = VoiceSession(guild_id, member_id, live.channel_id, now, now, live.flags)
            return VoiceWrite(guild_id, member_id, session, opens=opens, converts=converts)
        credits = tuple(
            Credit(guild_id, member_id, day, amounts)
            for day, amounts in credit(current.checkpoint, until, current.flags, tz).items()
        )
        following = None
        if live is not None:
            following = replace(current, channel_id=live.channel_id, flags=live.flags,
                                checkpoint=max(now, current.checkpoint))
            unchanged = (following.channel_id, following.flags) == (current.channel_id, current.flags)
            if not credits and unchanged and not converts and not opens:
                return None  # nothing to credit, nothing changed: the checkpoint stays
        return VoiceWrite(guild_id, member_id, following, credits, opens=opens, converts=converts)

    async def _unit(self, writes: list[VoiceWrite], seq: int) -> list[Write]:
        """The writes of one voice unit, in the order that keeps a crash between any two harmless
        (built `YIELD_EVERY` members per event-loop turn)."""
        collection = self.repo.collection_name
        unit: list[Write] = []
        opens = [entry_upsert(w.guild_id, w.member_id, seq) for w in writes if w.opens and w.session]
        if opens:
            unit.append(Write.bulk(collection, opens))
        totals: list[GuardedUpdate] = []
        days: list[GuardedUpdate] = []
        for i in range(0, len(writes), YIELD_EVERY):
            if i:
                await asyncio.sleep(0)
            more_totals, more_days = voice_updates([w.total() for w in writes[i:i + YIELD_EVERY]], seq)
            totals += more_totals
            days += more_days
        unit += self.activity.voice_writes(totals, days, seq)
        after = [entry_delete(w.key, seq) if w.session is None else entry_convert(w.key, seq)
                 for w in writes if w.session is None or w.converts]
        if after:
            unit.append(Write.bulk(collection, after))
        return unit

    async def _commit(self, writes: list[VoiceWrite], keys: Iterable[str]) -> None:
        """Settle what is left of earlier writes of `keys`, then apply `writes` as one unit."""
        await self._settle(keys)
        if writes:
            await self._submit(writes, self._next_seq())

    async def _settle(self, keys: Iterable[str]) -> None:
        """Apply intents of the shape before and resubmit writes whose unit raised (same sequence)."""
        keys = list(keys)
        await self._apply_pending([k for k in keys if k in self._pending])
        unsure: dict[int, list[VoiceWrite]] = {}
        for key in keys:
            if key in self._unsure:
                seq, write = self._unsure[key]
                unsure.setdefault(seq, []).append(write)
        for seq, writes in sorted(unsure.items()):
            await self._submit(writes, seq)

    async def _submit(self, writes: list[VoiceWrite], seq: int) -> None:
        for write in writes:
            self._unsure[write.key] = (seq, write)
            if write.session is None:
                self._sessions.pop(write.key, None)
                self._listed.discard(write.key)  # a session opened after this lists itself again
            else:
                self._sessions[write.key] = write.session
        unit = await self._unit(writes, seq)
        await asyncio.sleep(0)  # the writer encodes the unit next: one bounded step each
        await self.repo.writer.submit(unit, "credit voice time")
        for write in writes:
            del self._unsure[write.key]
            self._legacy.discard(write.key)
            if write.session is not None:
                self._listed.add(write.key)
        await self._note(writes, seq)

    async def _note(self, writes: list[VoiceWrite], seq: int) -> None:
        """Tell the ranks about written credits, `NOTE_CHUNK` members per event-loop turn (each
        member's credits of one operation in one note: the ranks apply an operation once per
        document). Cancelled in between, the rest is told at once: no credit goes untold."""
        if self._on_credited is None:
            return
        for i in range(0, len(writes), NOTE_CHUNK):
            credits = [c for w in writes[i:i + NOTE_CHUNK] for c in w.credits]
            if credits:
                self._on_credited(credits, seq)
            if i + NOTE_CHUNK >= len(writes):
                return
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                rest = [c for w in writes[i + NOTE_CHUNK:] for c in w.credits]
                if rest:
                    self._on_credited(rest, seq)
                raise

    async def _apply_pending(self, keys: list[str]) -> None:
        """Intents left by the shape before (`voice_sessions.pending*`): applied as then, once."""
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
