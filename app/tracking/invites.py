"""Invite tracking per guild: one worker per guild turns join events and invite counts into attributions.

No Discord here: the cog translates gateway events into `submit` calls and hands the tracker a
`GuildAccess` (the invite list, the vanity uses and the member list of a guild, and where to
announce a recorded join or leave). Data flows event -> cog -> tracker -> repository.

**Joins.** A join event goes straight into the guild's *waiting* list, in arrival order (never
behind another job). The worker reads the live invites (after a short settle delay, one read in
flight per guild), notes for each read how many waiting joiners it surely includes (events that
arrived before it was sent) and at most includes (events that arrived before its answer plus
`event_lag`, the longest delay assumed between a join and its event), and lets
`app.tracking.attribution.settle` decide. Joiners before a certain cut are recorded (exactly
once: `$setOnInsert` on the join key) and only then does the stored snapshot advance, to the read
at that cut: a stored snapshot only ever holds uses that recorded joins account for.

**Other jobs** (leaves, invite creates/deletes, role gains, refreshes) run in arrival order, each
after the joins that arrived before it are recorded.

**Start order** (per guild): events that arrive before the guild is available wait. When it
becomes available the worker *syncs*: it loads the stored snapshot, puts the members who joined
while the bot was not watching (and joins still awaiting a readable invite list) at the head of
the waiting list, closes the stays of members who left meanwhile, and reads the invites.

All attribution decisions are made by `app.tracking.attribution` (pure); all writes go to repositories.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo.errors import PyMongoError

from app.storage.journal import Journal, Record
from app.storage.writes import is_outage
from app.tracking import invite_journal as jr
from app.tracking.attribution import (
    LEFT_QUICKLY,
    VANITY,
    GroupMatch,
    Settlement,
    Snapshot,
    Window,
    fake_reason,
    increases,
    inviter_of,
    left_quickly,
    settle,
)
from app.tracking.audit_match import AuditedInvite, used_up_candidate
from app.tracking.conversions import Conversions
from app.wiring.clock import Clock
from app.wiring.container import Repositories
from repositories.invites import StoredInvite
from repositories.joins import FIRST, REJOIN, Attribution, JoinRecord, StoredJoin, credit_for, join_key

log = logging.getLogger(__name__)
SAME_JOIN = timedelta(seconds=1)  # one join's time in the member list and in its event
OUTAGE_RETRY_FIRST_SECONDS = 0.5
OUTAGE_RETRY_MAX_SECONDS = 15.0
STALLED_ROUND_PAUSE_SECONDS = 0.5
UNREADABLE_RETRY_FIRST_SECONDS = 1.0
UNREADABLE_RETRY_MAX_SECONDS = 60.0
EVENT_LAG_SECONDS = 0.5  # longest assumed delay between a join (its use visible) and its event
SETTLE_SECONDS = 0.1  # quiet time after the latest join before the invites are read ...
SETTLE_MAX_SECONDS = 0.3  # ... but never longer than this after the first join not read yet
READ_WHILE_BLOCKED_AFTER_SECONDS = 0.5  # a job waiting this long on MongoDB: reads go on beside it
MEMBER_LIST_WAIT_SECONDS = 60.0  # longest a sync holds the guild's joins for a complete member list
NO_SNAPSHOT = "no_snapshot"
NO_INVITE_USE = "no_invite_use"
OFFLINE = "joined_while_offline"


@dataclass(frozen=True)
class Joiner:
    """A member's join as seen at event time (or found in the member list after downtime)."""

    member_id: int
    name: str
    joined_at: datetime
    created_at: datetime
    live: bool  # seen as a GUILD_MEMBER_ADD (False: found in the member list after downtime)

    def key(self, guild_id: int) -> str:
        return join_key(guild_id, self.member_id, self.joined_at)


@dataclass(frozen=True)
class JoinFacts:
    """What the invite tracker knows about one join (or, for a leave, about the member's join)."""

    guild_id: int
    member_id: int
    member_name: str
    source: str
    code: str | None
    candidates: tuple[str, ...]
    inviter_id: int | None
    inviter_name: str | None
    joined_at: datetime
    account_created_at: datetime | None
    live: bool = True
    hint: str = ""  # no invite use rose: discovery | widget | discovery_or_widget


@dataclass(frozen=True)
class GuildMembers:
    """A guild's member list as the bot has it: human members (as joiners found in the list) and
    whether the list is complete (a partial cache would look like mass leaves)."""

    name: str
    members: Sequence[Joiner]
    complete: bool


class FetchFailed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # missing_permissions | fetch_failed
        self.detail = detail


class GuildAccess(Protocol):
    """What the tracker needs from Discord, injected by the cog (no Discord I/O of its own)."""

    async def invites(self, guild_id: int) -> list[StoredInvite]:
        """`GET /guilds/{id}/invites`; FetchFailed when Discord would not say."""
        ...

    async def vanity(self, guild_id: int) -> tuple[str, int] | None:
        """The vanity code and its uses (None: the guild has no vanity URL); FetchFailed on error."""
        ...

    def has_guild(self, guild_id: int) -> bool:
        """Whether the bot knows the guild (still)."""
        ...

    def members(self, guild_id: int) -> GuildMembers | None:
        """The guild's member list, None when the guild is not known (any more)."""
        ...

    def member_roles(self, guild_id: int, member_id: int) -> set[int] | None:
        """The role ids the member holds now (None: not a member the bot knows)."""
        ...

    async def audited_invites(self, guild_id: int) -> list[AuditedInvite] | None:
        """Invite create and revoke entries of the audit log, newest first (None: no View Audit
        Log, or the request failed)."""
        ...

    def join_hint(self, guild_id: int) -> str:
        """How members may join without an invite use: discovery (the guild is in Server
        Discovery), widget (its widget is on), discovery_or_widget, or ""."""
        ...

    def joined(self, facts: JoinFacts) -> None:
        """A join was recorded."""
        ...

    def left(self, guild_id: int, member_id: int, name: str, facts: JoinFacts | None) -> None:
        """A leave was recorded."""
        ...


@dataclass
class Job:
    kind: str  # leave | invite_create | invite_delete | roles | refresh
    data: Any = None
    done: asyncio.Future[Any] | None = None
    seq: int = 0
    at: float = 0.0  # when the event arrived (monotonic seconds)
    when: datetime | None = None  # when the event arrived (UTC): a leave's time
    record_id: int = 0  # in the invite journal (0: not journaled)
    restored: bool = False  # taken up again from the journal of a previous run


@dataclass
class LiveInvites:
    invites: list[StoredInvite]
    vanity_code: str | None
    vanity_uses: int | None  # None: no vanity URL, or its uses could not be read this time

    def snapshot(self) -> Snapshot:
        return Snapshot(
            invites={inv.code: inv.uses_entry() for inv in self.invites},
            vanity_code=self.vanity_code,
            vanity_uses=self.vanity_uses,
        )


@dataclass
class Arrival:
    """A joiner waiting for attribution. `at`: when the event arrived (monotonic seconds; -inf for
    members found in the member list); `recorded`: already stored as unknown, awaiting a readable
    invite list (`counted` as it was recorded); `writing`: this process started to record it (a
    run of the job again after an outage finishes it); `written`: recorded and announced."""

    joiner: Joiner
    at: float
    seq: int
    reason: str = ""
    recorded: bool = False
    counted: str = FIRST
    fake: str = ""
    record_id: int = 0  # in the invite journal (0: not journaled)
    restored: bool = False  # taken up again from the journal of a previous run
    writing: bool = False
    written: bool = False


@dataclass
class Read:
    """One read of the live invites: sent and answered (monotonic), `lo` waiting joiners surely in it."""

    sent: float
    answered: float
    lo: int
    live: LiveInvites
    at: datetime
    record_id: int = 0  # in the invite journal (0: not journaled)
    keys: frozenset[str] | None = None  # restored from the journal: the joins surely in it, by key
    # The first read of a sync: its uses since the snapshot span a time the bot could not see the
    # guild, so they may hold joins no event or member list will ever show (joined and left). Only
    # joins whose event came before it was sent are settled against it (campaign long run, seed
    # 137): a join whose event came while it was out is left to the next read.
    after_gap: bool = False


@dataclass
class GuildWorker:
    guild_id: int
    queue: deque[Job] = field(default_factory=deque)
    waiting: list[Arrival] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    base: Snapshot | None = None  # the accounted snapshot (None: none stored yet)
    stored: dict[str, StoredInvite] = field(default_factory=dict)  # invite documents as stored
    loaded: bool = False
    settled_at: float = -math.inf  # arrival time of the latest join settled
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    needs_sync: bool = False
    # The stored snapshot time kept while a sync had only part of the member list: members who
    # joined after it may be missing from that list, so no snapshot is stored as of a later time
    # until a sync with the whole list has looked for them.
    unreconciled_since: datetime | None = None
    task: asyncio.Task[None] | None = None
    read_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one invite read in flight
    # A read in flight counts the waiting joins it surely holds by position; these say how the
    # waiting list changed meanwhile: `settled` joins taken off its head, `reshaped` any other change.
    settled: int = 0
    reshaped: int = 0
    # After a failed read (Discord answered 5xx or timed out), the joins it left awaiting are read
    # again after this many seconds, doubling up to UNREADABLE_RETRY_MAX_SECONDS while reads fail.
    retry_delay: float = 0.0
    retry: asyncio.TimerHandle | None = None
    snapshot_at: datetime | None = None  # the stored snapshot's time: joins before it are accounted
    # When the uses in `base` were read: a join found only later (in the member list, or by its
    # leave) from before then may have its use in `base` already, so no diff can attribute it.
    base_read_at: datetime | None = None
    stalled: bool = False  # a round made no progress (warned once per worker)
    # Since when events of the guild may have been lost (a guild outage, a gateway connection
    # lost): no snapshot is stored as of a later time until a sync (or a RESUME) says what they
    # were; a read meanwhile would take unseen joins' uses into the snapshot, and the sync would
    # then not look for them (long campaign on the latest code, seed 1: a join lost).
    away_since: datetime | None = None
    # Members whose join event this process saw, joined after the stored snapshot (pruned as the
    # snapshot moves): a leave of one of them is never taken up as an unseen join.
    seen: dict[int, datetime] = field(default_factory=dict)

    def unsettled(self) -> list[Arrival]:
        return [a for a in self.waiting if not a.recorded]

    def blocks(self, job: Job) -> bool:
        """A job waits for the joins that arrived before it to be recorded."""
        return any(a.seq < job.seq and not a.recorded for a in self.waiting)


def _differs(stored: StoredInvite | None, live: StoredInvite) -> bool:
    if stored is None:
        return True
    return (stored.uses, stored.inviter_id, stored.inviter_name) != (
        live.uses,
        live.inviter_id,
        live.inviter_name,
    )


class InviteTracker:
    """The per-guild workers and what they do. The cog feeds it events and commands."""

    def __init__(
        self,
        repos: Repositories,
        clock: Clock,
        access: GuildAccess,
        *,
        event_lag: float = EVENT_LAG_SECONDS,
        settle_seconds: float = SETTLE_SECONDS,
        member_list_wait: float = MEMBER_LIST_WAIT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        journal: Journal | None = None,
    ) -> None:
        self.repos = repos
        self.clock = clock
        self.access = access
        self.event_lag = event_lag
        self.settle_seconds = settle_seconds
        self.member_list_wait = member_list_wait
        self.monotonic = monotonic
        self.journal = journal
        self._wall_minus_monotonic = time.time() - monotonic()
        self.workers: dict[int, GuildWorker] = {}
        self.warned_forbidden: set[int] = set()
        self.gateway_ok = asyncio.Event()
        self.gateway_ok.set()
        self._seq = 0
        self.conversions = Conversions(repos, clock, access.member_roles)

    # ---- feeding --------------------------------------------------------------------------------
    def worker(self, guild_id: int) -> GuildWorker:
        worker = self.workers.get(guild_id)
        if worker is None:
            worker = self.workers[guild_id] = GuildWorker(guild_id)
            worker.task = asyncio.get_running_loop().create_task(
                self._run(worker), name=f"invite worker {guild_id}"
            )
        return worker

    def submit(
        self, guild_id: int, kind: str, data: Any = None, *, wait: bool = False
    ) -> asyncio.Future[Any] | None:
        """Take an event (synchronously, so events keep the order they arrived in). A join goes to
        the waiting list at once, with its arrival time; anything else is queued."""
        worker = self.worker(guild_id)
        self._seq += 1
        done = asyncio.get_running_loop().create_future() if wait else None
        at = self.monotonic()
        if kind == "join":
            worker.seen[data.member_id] = data.joined_at
            if not any(a.joiner.key(guild_id) == data.key(guild_id) for a in worker.waiting):
                arrival = Arrival(data, at, self._seq)
                arrival.record_id = self._keep_join(guild_id, arrival)
                worker.waiting.append(arrival)
        else:
            job = Job(kind, data, done, self._seq, at, self.clock.now())
            job.record_id = self._keep_job(guild_id, job)
            worker.queue.append(job)
        worker.idle.clear()
        worker.wake.set()
        return done

    def joined_unseen(self, guild_id: int, joiner: Joiner) -> None:
        """A member leaves whom the bot may never have seen join: they joined while it could not
        see the guild, and left before it read the member list again (right after a re-IDENTIFY,
        the GUILD_CREATE that lists them is followed by their GUILD_MEMBER_REMOVE). Call before
        submitting the leave: a job ahead of it looks whether their join is recorded."""
        worker = self.worker(guild_id)
        if worker.snapshot_at is None or joiner.joined_at <= worker.snapshot_at:
            return  # joined before what the snapshot accounts for (or nothing known yet)
        if worker.seen.get(joiner.member_id) == joiner.joined_at:
            return  # this process saw the join (recorded, or erased since: never taken up again)
        self.submit(guild_id, "unseen_join", joiner)

    async def _unseen_join(self, worker: GuildWorker, joiner: Joiner) -> None:
        """Joined after the stored snapshot, with no join recorded and none waiting: the join
        waits now as a downtime join (settled by the downtime rule), ahead of the leave."""
        await self._load(worker)
        if worker.snapshot_at is None or joiner.joined_at <= worker.snapshot_at:
            return
        if _waiting_for(worker, joiner):
            return
        if not await self._without_recorded(worker.guild_id, [joiner]):
            return  # recorded already (its event came live)
        await self._take_up_offline(worker, [joiner])
        log.info("guild %s: member %s leaves, joined at %s while unseen: attributed before the leave",
                 worker.guild_id, joiner.member_id, joiner.joined_at.isoformat())

    async def _take_up_offline(self, worker: GuildWorker, joiners: list[Joiner]) -> None:
        """Joins found without their event wait as downtime joins, settled by the next read's diff,
        except those from before the uses the diff starts from were read: their use may be in
        them already, and a diff without it would credit them with someone else's (campaign long
        run, seed 12: a snapshot held back through a gateway gap, with newer uses). Those are
        recorded as unknown now, joined while the bot could not see the guild."""
        read_at = worker.base_read_at
        covered = [j for j in joiners if read_at is not None and j.joined_at <= read_at]
        if covered:
            log.info("guild %s: %d join(s) found after the invite uses that hold them were read: "
                     "recorded as unknown", worker.guild_id, len(covered))
            arrivals = [Arrival(j, -math.inf, 0, reason=OFFLINE) for j in covered]
            await self._record_unknown(worker.guild_id, arrivals, OFFLINE, awaiting=False)
        rest = [j for j in joiners if j not in covered]
        _insert_offline(worker, [Arrival(j, -math.inf, 0, reason=OFFLINE) for j in rest])

    # ---- the invite journal: inputs kept until what they lead to is in MongoDB ------------------
    def _wall(self, at: float) -> float:
        return at + self._wall_minus_monotonic

    def _monotonic(self, wall: float) -> float:
        """A wall-clock time of a previous run on this process's monotonic clock (never later than now)."""
        return min(wall - self._wall_minus_monotonic, self.monotonic())

    def _keep_join(self, guild_id: int, arrival: Arrival) -> int:
        if self.journal is None:
            return 0
        j = arrival.joiner
        entry = jr.JoinEntry(j.member_id, j.name, j.joined_at, j.created_at, j.live, self._wall(arrival.at))
        return self.journal.add(guild_id, jr.JOIN, jr.join_body(entry))

    def _keep_job(self, guild_id: int, job: Job) -> int:
        if self.journal is None or job.kind not in jr.JOB_KINDS:
            return 0
        entry = jr.JobEntry(job.kind, job.data, self._wall(job.at), job.when)
        return self.journal.add(guild_id, job.kind, jr.job_body(entry))

    def _keep_read(self, worker: GuildWorker, read: Read) -> int:
        if self.journal is None:
            return 0
        keys = frozenset(a.joiner.key(worker.guild_id) for a in worker.waiting[: read.lo])
        entry = jr.ReadEntry(self._wall(read.sent), self._wall(read.answered), read.at, read.live.invites,
                             read.live.vanity_code, read.live.vanity_uses, keys)
        return self.journal.add(worker.guild_id, jr.READ, jr.read_body(entry))

    def _forget(self, items: Iterable[Arrival | Read | Job]) -> None:
        """What these inputs led to is in MongoDB (or they are dropped): the journal lets them go."""
        if self.journal is not None:
            items = list(items)
            self.journal.forget([item.record_id for item in items if item.record_id])

    def restore(self, records: Sequence[Record]) -> None:
        """Take up what a previous run kept in the journal, before any live event: its waiting
        joins, its reads and its queued jobs, in their order, each worker as it was."""
        for record in records:
            worker = self.worker(record.guild_id)
            self._seq += 1
            if record.kind == jr.JOIN:
                self._restore_join(worker, record)
            elif record.kind == jr.READ:
                self._restore_read(worker, record)
            elif record.kind in jr.JOB_KINDS:
                entry = jr.job_entry(record.kind, record.body)
                at = self._monotonic(entry.wall)
                worker.queue.append(Job(record.kind, entry.data, None, self._seq, at, entry.when, record.id,
                                        restored=True))
            worker.idle.clear()

    def _restore_join(self, worker: GuildWorker, record: Record) -> None:
        entry = jr.join_entry(record.body)
        joiner = Joiner(entry.member_id, entry.name, entry.joined_at, entry.created_at, entry.live)
        at = max([self._monotonic(entry.wall), *(a.at for a in worker.waiting[-1:])])
        if any(a.joiner.key(worker.guild_id) == joiner.key(worker.guild_id) for a in worker.waiting):
            self._forget_ids([record.id])
            return
        worker.waiting.append(Arrival(joiner, at, self._seq, record_id=record.id, restored=True))

    def _restore_read(self, worker: GuildWorker, record: Record) -> None:
        entry = jr.read_entry(record.body)
        live = LiveInvites(entry.invites, entry.vanity_code, entry.vanity_uses)
        read = Read(self._monotonic(entry.sent_wall), self._monotonic(entry.answered_wall), 0, live,
                    entry.at, record.id, entry.keys)
        worker.reads.append(replace(read, lo=_lo_of(read, worker.waiting, worker.guild_id)))

    def _went_past(self, read: Read, read_ms: int | None) -> bool:
        """Whether the stored snapshot comes from this read or a later one (1 ms: rounding)."""
        return read_ms is not None and self._wall(read.answered) * 1000 <= read_ms + 1

    def _forget_ids(self, record_ids: list[int]) -> None:
        if self.journal is not None:
            self.journal.forget(record_ids)

    def guild_available(self, guild_id: int) -> None:
        """The guild (and its member list) is ready: sync first, then work through the queue."""
        worker = self.worker(guild_id)
        worker.needs_sync = True
        worker.idle.clear()
        worker.started.set()
        worker.wake.set()

    def guild_gone(self, guild_id: int) -> None:
        worker = self.workers.pop(guild_id, None)
        if worker is not None and worker.task is not None:
            worker.task.cancel()
        if worker is not None:  # the bot left the guild: nothing of it is tracked any more
            self._forget([*worker.waiting, *worker.reads, *worker.queue])

    def guild_unavailable(self, guild_id: int) -> None:
        """A guild outage: Discord sends nothing of the guild until it is back (then a sync)."""
        worker = self.worker(guild_id)
        worker.away_since = worker.away_since or self.clock.now()

    def gateway_lost(self) -> None:
        """The gateway connection dropped: join events may come late (a RESUME replays them), so no
        read is trusted to include every join before it until the connection is back."""
        self.gateway_ok.clear()
        now = self.clock.now()
        for worker in self.workers.values():
            worker.away_since = worker.away_since or now

    def gateway_back(self, *, resumed: bool = False) -> None:
        """The connection is back; `resumed`: every event missed meanwhile is replayed (else the
        guilds' syncs look for what was missed)."""
        if resumed:
            for worker in self.workers.values():
                worker.away_since = None
        if not self.gateway_ok.is_set():
            for worker in self.workers.values():
                self._forget(worker.reads)
                worker.reads.clear()
                worker.reshaped += 1
                worker.wake.set()
        self.gateway_ok.set()

    async def wait_idle(self) -> None:
        """Until every started worker has nothing waiting and nothing in progress."""
        for worker in list(self.workers.values()):
            if worker.started.is_set():
                await worker.idle.wait()

    async def close(self) -> None:
        for worker in list(self.workers.values()):
            if worker.task is not None:
                worker.task.cancel()
            if worker.retry is not None:
                worker.retry.cancel()
        self.workers.clear()

    # ---- the worker loop ------------------------------------------------------------------------
    async def _run(self, worker: GuildWorker) -> None:
        await worker.started.wait()
        while True:
            worker.wake.clear()
            if worker.needs_sync:
                worker.needs_sync = False
                await self._guarded(worker, Job("sync"))
            elif worker.queue and not worker.blocks(worker.queue[0]):
                job = worker.queue.popleft()
                await self._guarded(worker, job, [job])
                self._forget([job])
            elif worker.unsettled() or worker.reads:
                before = _progress(worker)
                await self._guarded(worker, Job("round"))
                if _progress(worker) == before:  # nothing read, settled or changed: do not spin
                    await self._stalled(worker)
            else:
                worker.idle.set()
                await worker.wake.wait()

    async def _stalled(self, worker: GuildWorker) -> None:
        """A round changed nothing (a join it cannot settle yet): wait for an event or a moment,
        rather than run the same round again at once (the long campaign, seed 6, caught a round
        that returned at once, over and over: the gateway's heartbeat fell 41 s behind)."""
        if not worker.stalled:
            worker.stalled = True
            log.warning("guild %s: an invite round made no progress (%d joins waiting, %d reads); "
                        "trying again on the next event or in %.1fs", worker.guild_id,
                        len(worker.unsettled()), len(worker.reads), STALLED_ROUND_PAUSE_SECONDS)
        await self._sleep_until(self.monotonic() + STALLED_ROUND_PAUSE_SECONDS, worker.wake)

    async def _guarded(self, worker: GuildWorker, job: Job, originals: Iterable[Job] = ()) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = await self._until_mongodb_answers(worker, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
            log.exception("invite tracking: %s in guild %s failed", job.kind, worker.guild_id)
            await asyncio.sleep(OUTAGE_RETRY_FIRST_SECONDS)  # a failing round must not spin
        for original in originals:
            if original.done is not None and not original.done.done():
                if error is not None:
                    original.done.set_exception(error)
                else:
                    original.done.set_result(result)

    async def _until_mongodb_answers(self, worker: GuildWorker, job: Job) -> Any:
        """Run the job to the end. A job that waits on MongoDB (an outage: the driver's timeouts and
        retries take seconds) does not stop the guild's invite reads: joins arriving meanwhile are
        read as they come (a read needs Discord, not MongoDB; it is kept in memory and in the
        journal), so the joins of an outage are told apart as finely as without it."""
        attempt = asyncio.ensure_future(self._retrying(worker, job))
        try:
            await asyncio.wait({attempt}, timeout=READ_WHILE_BLOCKED_AFTER_SECONDS)
            while not attempt.done():
                worker.wake.clear()
                if self._needs_read(worker) and self.gateway_ok.is_set():
                    await self._settle_delay(worker)
                    with contextlib.suppress(FetchFailed, PyMongoError):
                        await self._read(worker)
                    continue
                woken = asyncio.ensure_future(worker.wake.wait())
                await asyncio.wait({attempt, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
            return attempt.result()
        finally:
            attempt.cancel()

    async def _retrying(self, worker: GuildWorker, job: Job) -> Any:
        """Run the job; while MongoDB is away, wait and run it again (the guild's later jobs wait
        behind it, in order). Every step of a job is idempotent, and a round changes the worker's
        memory only after its writes, so a partial first run is harmless."""
        delay = OUTAGE_RETRY_FIRST_SECONDS
        while True:
            try:
                return await self._handle(worker, job)
            except PyMongoError as exc:
                if not is_outage(exc):
                    raise
                log.warning("invite tracking: MongoDB unavailable (%s); %s in guild %s waits %.1fs",
                            type(exc).__name__, job.kind, worker.guild_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, OUTAGE_RETRY_MAX_SECONDS)

    async def _handle(self, worker: GuildWorker, job: Job) -> Any:
        gid = worker.guild_id
        now = self.clock.now()
        if job.kind == "sync":
            return await self.sync(worker)
        if job.kind == "round":
            return await self.round(worker)
        if job.kind == "refresh":
            return await self.round(worker, force=True)
        if job.kind == "leave":
            return await self._left(gid, job.data, job.when or now, restored=job.restored)
        if job.kind == "unseen_join":
            return await self._unseen_join(worker, job.data)
        if job.kind == "invite_create":
            return await self._created(worker, job, job.when or now)
        if job.kind == "invite_delete":
            return await self.repos.invites.removed(gid, job.data, job.when or now)
        if job.kind == "roles":
            member_id, added = job.data
            return await self.role_gained(gid, member_id, added)
        raise ValueError(f"unknown invite job {job.kind!r}")

    # ---- fetching -------------------------------------------------------------------------------
    async def fetch_live(self, guild_id: int, vanity_code: str | None = None) -> LiveInvites:
        """The live invites and vanity uses; FetchFailed when the invite list could not be read.

        The vanity uses come from their own request, so they are read before and after the list:
        only when both agree do they hold as of the list's moment (a vanity join between the two
        requests would otherwise look older than an invite join the list missed; the long
        campaign, seed 61, credited such a vanity joiner with the other's code). A failed or
        changed vanity read keeps the list: the vanity uses are then None (no candidate for this
        read), with `vanity_code` (the one known before) kept."""
        before = await self._vanity(guild_id)
        try:
            invites = await self.access.invites(guild_id)
        except FetchFailed as failed:
            forbidden = failed.reason == "missing_permissions"
            if forbidden:
                self._warn_forbidden(guild_id, failed.detail)
            else:
                log.warning("could not fetch invites of guild %s: %s", guild_id, failed.detail)
            await self.repos.invite_guilds.fetch_failed(guild_id, self.clock.now(), forbidden=forbidden)
            raise
        self.warned_forbidden.discard(guild_id)
        after = await self._vanity(guild_id) if before is not None and before is not _FAILED else before
        if after is _FAILED or before is _FAILED:
            return LiveInvites(invites, vanity_code, None)
        if after != before:
            log.info("guild %s: the vanity URL was used while the invites were read: no candidate for "
                     "this read", guild_id)
            return LiveInvites(invites, vanity_code, None)
        code, uses = after if after is not None else (None, None)  # type: ignore[misc]
        return LiveInvites(invites, code, uses)

    async def _vanity(self, guild_id: int) -> tuple[str, int] | object | None:
        """The vanity code and uses (None: no vanity URL); _FAILED when Discord would not say."""
        try:
            return await self.access.vanity(guild_id)
        except FetchFailed as failed:
            log.warning("could not read the vanity uses of guild %s (%s): the vanity URL is no "
                        "candidate for this read", guild_id, failed.detail)
            return _FAILED

    def _warn_forbidden(self, guild_id: int, detail: str) -> None:
        if guild_id not in self.warned_forbidden:
            self.warned_forbidden.add(guild_id)
            log.warning(
                "guild %s: the bot lacks Manage Guild, so it cannot read invites; joins are "
                "recorded as unknown until the permission is given (%s)",
                guild_id,
                detail,
            )

    async def _store_snapshot(
        self, worker: GuildWorker, live: LiveInvites, read_ms: int | None = None
    ) -> None:
        """Store `live` as the snapshot (only called with a read whose uses recorded joins account
        for). Its time is before every join still waiting, so a restart finds those again."""
        gid = worker.guild_id
        now = self.clock.now()
        changed = [inv for inv in live.invites if _differs(worker.stored.get(inv.code), inv)]
        live_codes = {inv.code for inv in live.invites}
        gone = [code for code in worker.stored if code not in live_codes]
        await self.repos.invites.set_uses(gid, changed, now)
        for code in gone:
            await self.repos.invites.removed(gid, code, now)
        pending = [a.joiner.joined_at for a in worker.waiting if not a.recorded]
        at = min([now, *(joined - timedelta(milliseconds=1) for joined in pending)])
        for since in (worker.unreconciled_since, worker.away_since):
            if since is not None:
                at = min(at, since)
        vanity_code, vanity_uses = live.vanity_code, live.vanity_uses
        if vanity_uses is None and worker.base is not None and worker.base.vanity_uses is not None:
            vanity_code, vanity_uses = worker.base.vanity_code, worker.base.vanity_uses  # unchanged
        await self.repos.invite_guilds.snapshot_stored(gid, at, vanity_code, vanity_uses, read_ms,
                                                       uses_at=max(at, worker.base_read_at or at))
        worker.stored = {inv.code: inv for inv in live.invites}
        worker.snapshot_at = at
        worker.seen = {m: joined for m, joined in worker.seen.items() if joined > at}

    # ---- sync (start, guild available) ----------------------------------------------------------
    async def _load(self, worker: GuildWorker) -> None:
        """The stored snapshot, once per process (later the worker's memory is newer)."""
        if worker.loaded:
            return
        gid = worker.guild_id
        state = await self.repos.invite_guilds.get(gid)
        worker.stored = await self.repos.invites.live(gid)
        worker.base = state.snapshot(worker.stored) if state.snapshot_at is not None else None
        worker.snapshot_at = state.snapshot_at
        worker.base_read_at = state.uses_at or state.snapshot_at
        if state.stale:
            await self._take_awaiting(worker)
        await self._drop_restored_done(worker, state.read_ms)
        worker.loaded = True

    async def _drop_restored_done(self, worker: GuildWorker, read_ms: int | None) -> None:
        """A previous run may have stored what some kept inputs led to without forgetting them (a
        crash in between): reads the stored snapshot already went past, and joins already recorded,
        are let go (the snapshot never moves back, no join is counted twice)."""
        gid = worker.guild_id
        done_reads = [r for r in worker.reads if r.keys is not None and self._went_past(r, read_ms)]
        restored = [a for a in worker.waiting if a.restored and not a.recorded]
        existing = await self.repos.joins.existing_keys([a.joiner.key(gid) for a in restored])
        done_joins = [a for a in restored if a.joiner.key(gid) in existing]
        self._forget([*done_reads, *done_joins])
        worker.reads = [r for r in worker.reads if r not in done_reads]
        worker.waiting = [a for a in worker.waiting if a not in done_joins]
        worker.reshaped += 1

    async def _take_awaiting(self, worker: GuildWorker) -> None:
        """Joins recorded as unknown while the invites could not be read wait again, first."""
        gid = worker.guild_id
        docs = {d.key: d for d in await self.repos.joins.awaiting(gid)}
        for index, arrival in enumerate(worker.waiting):
            doc = docs.pop(arrival.joiner.key(gid), None)
            if doc is not None:  # kept by a previous run that recorded it before it could forget it
                awaiting = _from_awaiting(doc)
                worker.waiting[index] = replace(arrival, recorded=True, counted=awaiting.counted,
                                                fake=awaiting.fake)
        worker.waiting[:0] = [_from_awaiting(doc) for doc in docs.values()]
        worker.reshaped += 1

    async def sync(self, worker: GuildWorker) -> dict[str, Any]:
        gid = worker.guild_id
        guild = await self._member_list(worker)
        if guild is None:
            return {"status": "no guild"}
        await self._load(worker)
        state = await self.repos.invite_guilds.get(gid)
        # Reads made before this point may predate joins only now found in the member list; reads
        # a previous run kept hold only its joins (by key), which stay ahead of the ones found now.
        self._forget(r for r in worker.reads if r.keys is None)
        worker.reads = [r for r in worker.reads if r.keys is not None]
        worker.reshaped += 1
        if state.snapshot_at is not None:
            unseen = await self._downtime_joiners(worker, guild, state.snapshot_at)
            await self._take_up_offline(worker, unseen)
        await self._reconcile_leaves(gid, guild)
        result = await self.round(worker, force=True, after_gap=True)
        await self.conversions.reconcile(gid)
        log.info("invites of guild %s synced: %s", gid, result)
        return result

    async def _member_list(self, worker: GuildWorker) -> GuildMembers | None:
        """The guild's member list for a sync. While it is incomplete (discord.py fires
        guild_available when its member chunk request times out, and the chunks keep coming), the
        worker holds the guild's joins and jobs, up to `member_list_wait`: the cog calls
        `guild_available` again once the list is complete, which wakes it (as does any event)."""
        deadline = self.monotonic() + self.member_list_wait
        guild = self.access.members(worker.guild_id)
        held = False
        while guild is not None and not guild.complete and self.monotonic() < deadline:
            if not held:
                log.info("guild %s: the member list is still loading; invite tracking waits for it "
                         "(at most %.0fs)", worker.guild_id, self.member_list_wait)
                held = True
            worker.idle.set()  # nothing to do until the list is complete
            worker.wake.clear()
            await self._sleep_until(deadline, worker.wake)
            worker.needs_sync = False  # this sync reads the list again: it answers that call
            guild = self.access.members(worker.guild_id)
        if held:
            worker.idle.clear()
        return guild

    async def _downtime_joiners(
        self, worker: GuildWorker, guild: GuildMembers, since: datetime
    ) -> list[Joiner]:
        """Members who joined while nobody watched, looked for only in a complete member list.
        With part of the list, none are looked for and the snapshot time stays at `since` until
        a sync with the whole list (the cog asks for one once the list is loaded)."""
        if not guild.complete:
            log.warning("guild %s: syncing with part of the member list; members who joined since "
                        "%s are looked for once the list is complete", worker.guild_id, since.isoformat())
            if worker.unreconciled_since is None:
                worker.unreconciled_since = since
            return []
        unseen = await self._unseen_joiners(worker, guild, min(since, worker.unreconciled_since or since))
        worker.unreconciled_since = worker.away_since = None
        return unseen

    async def _unseen_joiners(
        self, worker: GuildWorker, guild: GuildMembers, since: datetime
    ) -> list[Joiner]:
        """Members who joined after the snapshot, have no join record and no event waiting."""
        # By join, not by member: a member whose earlier join waits may have left and joined again
        # unseen, and that join used an invite too (campaign long run, seed 180).
        found = [m for m in guild.members if m.joined_at > since and not _waiting_for(worker, m)]
        found = await self._without_recorded(worker.guild_id, found)
        return sorted(found, key=lambda j: j.joined_at)

    async def _without_recorded(self, guild_id: int, joiners: list[Joiner]) -> list[Joiner]:
        existing = await self.repos.joins.existing_keys([j.key(guild_id) for j in joiners])
        return [j for j in joiners if j.key(guild_id) not in existing]

    async def _reconcile_leaves(self, guild_id: int, guild: GuildMembers) -> None:
        """Members with an open stay who are no longer in the guild left while nobody watched
        (only with the full member list: a partial cache would look like mass leaves)."""
        if not guild.complete:
            return
        present = {m.member_id for m in guild.members}
        now = self.clock.now()
        for member_id in await self.repos.joins.open_member_ids(guild_id):
            if member_id not in present:
                await self.repos.joins.left(guild_id, member_id, now)

    # ---- rounds: read, wait for the read's window to close, settle what is certain ----------------
    async def round(
        self, worker: GuildWorker, *, force: bool = False, after_gap: bool = False
    ) -> dict[str, Any]:
        """One step for the waiting joins: read the invites when a join arrived since the last
        read (or `force`: refresh, sync), else wait for the next read's window to close; then
        record what the reads make certain and advance the snapshot to match."""
        await self._load(worker)
        read: Read | None = None
        if force or self._needs_read(worker):
            if not force:
                await self._settle_delay(worker)
            sent_at = self.clock.now()
            try:
                read = await self._read(worker)
            except FetchFailed as failed:
                await self._unreadable(worker, failed.reason)
                return {"status": failed.reason}
            worker.retry_delay = 0.0
            read.after_gap = after_gap
            await self._audit_match(worker, read, sent_at)
            if force:
                await self._sleep_until(read.answered + self.event_lag)
        else:
            await self._sleep_until(self._next_close(worker), worker.wake)
        await self.gateway_ok.wait()
        settled, advanced = await self._decide(worker)
        result: dict[str, Any] = {"status": "ok", "reconciled": settled, "stored": advanced}
        if read is not None:
            result["invites"] = len(read.live.invites)
        return result

    async def _audit_match(self, worker: GuildWorker, read: Read, sent_at: datetime) -> None:
        """The only pending read shows no use rising for the joins waiting: an invite created and
        used up since the snapshot (never in any read) may explain it. When the audit log makes it
        certain (`app.tracking.audit_match`) and no join recorded since its creation can have used
        it, the snapshot in memory learns it with 0 uses, so its use is matched like any used-up
        invite's."""
        base = worker.base
        if base is None or len(worker.reads) != 1 or not worker.unsettled():
            return
        if increases(base, read.live.snapshot(), read.at):
            return
        entries = await self.access.audited_invites(worker.guild_id)
        if not entries:
            return
        known = {*base.invites, *(inv.code for inv in read.live.invites), *worker.stored}
        found = used_up_candidate(entries, known, sent_at, read.at)
        if found is None or await self.repos.joins.recorded_since(worker.guild_id, found.created_at):
            return
        invite = StoredInvite(found.code, 0, found.max_uses, found.inviter_id, found.inviter_name,
                              found.channel_id, found.created_at, found.expires_at())
        await self.repos.invites.created(worker.guild_id, invite, self.clock.now())
        worker.base = replace(base, invites={**base.invites, found.code: invite.uses_entry()})
        worker.stored.setdefault(found.code, invite)
        log.info("guild %s: invite %s was created and used up between two reads (audit log)",
                 worker.guild_id, found.code)

    def _next_close(self, worker: GuildWorker) -> float:
        """When the next read's window closes (now when all have closed)."""
        now = self.monotonic()
        closing = [r.answered + self.event_lag for r in worker.reads if r.answered + self.event_lag > now]
        return min(closing, default=now)

    def _needs_read(self, worker: GuildWorker) -> bool:
        unsettled = worker.unsettled()
        if not unsettled:
            return False
        return not worker.reads or unsettled[-1].at >= worker.reads[-1].sent

    async def _settle_delay(self, worker: GuildWorker) -> None:
        """Wait until no join arrived for `settle_seconds` (at most SETTLE_MAX_SECONDS after the
        first join not read yet), so that joins at the same moment share one read."""
        since = worker.reads[-1].sent if worker.reads else -math.inf
        first = next((a.at for a in worker.waiting if a.at >= since and not a.recorded), None)
        if first is None:
            return
        deadline = (first if first > -math.inf else self.monotonic()) + SETTLE_MAX_SECONDS
        while True:
            until = min(worker.waiting[-1].at + self.settle_seconds, deadline)
            if until <= self.monotonic():
                return
            await asyncio.sleep(until - self.monotonic())

    async def _sleep_until(self, moment: float, wake: asyncio.Event | None = None) -> None:
        """Sleep until `moment` (monotonic), or until `wake` is set (a new event: a join that
        arrives while a read's window is open is read at once, for finer groups)."""
        delay = moment - self.monotonic()
        if delay <= 0:
            return
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)

    async def _read(self, worker: GuildWorker) -> Read:
        async with worker.read_lock:
            vanity_code = worker.base.vanity_code if worker.base else None
            sent = self.monotonic()
            lo, settled, reshaped = len(worker.waiting), worker.settled, worker.reshaped
            live = await self.fetch_live(worker.guild_id, vanity_code)
            # Another job may have settled joins (or changed the list) while this read was out.
            lo = max(0, lo - (worker.settled - settled))
            read = Read(sent, self.monotonic(), lo, live, self.clock.now())
            if worker.reshaped != reshaped:
                return read  # the list it counted is gone: not used for settling
            read.record_id = self._keep_read(worker, read)
            worker.reads.append(read)
            return read

    async def _unreadable(self, worker: GuildWorker, reason: str) -> None:
        """The invite list could not be read: record the waiting joins as unknown now (awaiting a
        readable list when there is a snapshot to compare with later); reads so far are dropped."""
        self._forget(worker.reads)
        worker.reads.clear()
        worker.reshaped += 1
        fresh = worker.unsettled()
        awaiting = worker.base is not None
        recorded = await self._record_unknown(worker.guild_id, fresh, reason, awaiting=awaiting)
        self._forget(fresh)  # recorded: found again as awaiting, or final
        if awaiting:
            for arrival in fresh:
                arrival.recorded = True
                arrival.counted, arrival.fake = recorded.get(arrival.joiner.member_id, (FIRST, ""))
            if reason == "fetch_failed" and fresh:
                self._read_again_later(worker)
        else:
            worker.waiting = [a for a in worker.waiting if a.recorded]
            worker.reshaped += 1

    def _read_again_later(self, worker: GuildWorker) -> None:
        """A failed read is most often Discord's passing trouble: the joins it left awaiting are
        settled by a read a little later, not only when the next member joins."""
        if worker.retry is not None:
            return
        worker.retry_delay = min(max(worker.retry_delay * 2, UNREADABLE_RETRY_FIRST_SECONDS),
                                 UNREADABLE_RETRY_MAX_SECONDS)

        def read_again() -> None:
            worker.retry = None
            self.submit(worker.guild_id, "refresh")

        worker.retry = asyncio.get_running_loop().call_later(worker.retry_delay, read_again)
        log.info("guild %s: the invites are read again in %.0fs for the joins left awaiting",
                 worker.guild_id, worker.retry_delay)

    def _windows(self, worker: GuildWorker) -> list[Window]:
        """The reads whose windows have closed (answered + event_lag is past), as `settle` takes them."""
        arrived = [a.at for a in worker.waiting]
        now = self.monotonic()
        windows = []
        for read in worker.reads:
            closes = read.answered + self.event_lag
            if closes > now:
                break
            lo, hi = read.lo, bisect.bisect_left(arrived, read.sent if read.after_gap else closes)
            if read.keys is not None:
                lo, hi = _bounds_by_key(read, worker.waiting, worker.guild_id, hi)
            windows.append(Window(lo, max(hi, lo), read.live.snapshot(), read.at))
        return windows

    async def _decide(self, worker: GuildWorker) -> tuple[int, bool]:
        """(joins settled, whether the snapshot advanced)."""
        windows = self._windows(worker)
        if not windows:
            return 0, False
        if worker.base is None:
            # Nothing to compare the first read with: the joins surely in it stay unknown; it
            # becomes the snapshot, and later joins are matched against it (one whose use it
            # already holds looks like a join without a use: never credited, never wrong).
            first = windows[0].lo
            result = Settlement(1, first, (GroupMatch(None, ()),) * first, unaccounted=True)
            return await self._apply(worker, result, NO_SNAPSHOT)
        return await self._apply(worker, settle(worker.base, windows), "")

    async def _apply(self, worker: GuildWorker, result: Settlement, reason: str) -> tuple[int, bool]:
        if not result.windows:
            return 0, False
        read = worker.reads[result.windows - 1]
        if result.unaccounted and reason != NO_SNAPSHOT:
            log.warning("guild %s: the invite counts hold uses no waiting join accounts for (a join "
                        "event missed or later than %.1fs); %d joins marked ambiguous",
                        worker.guild_id, self.event_lag, result.joiners)
        done = worker.waiting[: result.joiners]
        known = _every_invite(worker.base, worker.reads[: result.windows])
        await self._record_settled(worker, done, result.outcomes, known, read.live, reason)
        live = _keep_vanity(worker.base, read.live, result)
        worker.base_read_at = read.at
        await self._store_snapshot(worker, live, round(self._wall(read.answered) * 1000))
        self._forget([*done, *worker.reads[: result.windows]])
        worker.settled_at = max([worker.settled_at, *(a.at for a in done)])
        worker.waiting = worker.waiting[result.joiners :]
        worker.settled += result.joiners
        worker.reads = [replace(r, lo=max(0, r.lo - result.joiners)) for r in worker.reads[result.windows :]]
        worker.base = live.snapshot()
        return len(done), True

    async def _created(self, worker: GuildWorker, job: Job, now: datetime) -> None:
        """INVITE_CREATE: stored at once. The snapshot in memory learns the code (uses 0) when no
        read is waiting and no join that arrived after this event is settled: then its first use
        (whose join event comes after this one) is surely after the snapshot, so a code created and
        used up between two reads is still attributed. Otherwise the next read brings it."""
        invite: StoredInvite = job.data
        await self.repos.invites.created(worker.guild_id, invite, now)
        base = worker.base
        if base is None or invite.code in base.invites or worker.reads or worker.settled_at >= job.at:
            return
        entry = replace(invite, uses=0).uses_entry()
        worker.base = replace(base, invites={**base.invites, invite.code: entry})
        worker.stored.setdefault(invite.code, invite)

    # ---- recording ------------------------------------------------------------------------------
    def _attribution(
        self, outcome: GroupMatch, known: Snapshot, live: LiveInvites, arrival: Arrival, reason: str
    ) -> Attribution:
        live_join = arrival.joiner.live or arrival.recorded
        why = reason or ("" if live_join else arrival.reason)
        if outcome.code is None:
            source = "ambiguous" if outcome.candidates else "unknown"
            return Attribution(source, candidates=outcome.candidates, reason=why)
        if outcome.code == VANITY:
            return Attribution("vanity" if live_join else "downtime", code=live.vanity_code,
                               candidates=outcome.candidates)
        invite = inviter_of(outcome.code, known, live.snapshot())
        return Attribution(
            "invite" if live_join else "downtime",
            code=outcome.code,
            inviter_id=invite.inviter_id if invite else None,
            inviter_name=invite.inviter_name if invite else None,
            candidates=outcome.candidates,
        )

    def _hinted(self, guild_id: int, attribution: Attribution) -> Attribution:
        """No invite use rose for this joiner (unknown without candidates, with a snapshot to compare
        with): say so, and how it may have joined (Server Discovery, the widget); credit nobody."""
        no_use = attribution.source == "unknown" and not attribution.candidates
        if not no_use or attribution.reason not in ("", OFFLINE):
            return attribution
        return replace(attribution, reason=attribution.reason or NO_INVITE_USE,
                       hint=self.access.join_hint(guild_id))

    async def _record_settled(
        self,
        worker: GuildWorker,
        done: Sequence[Arrival],
        outcomes: Sequence[GroupMatch],
        known: Snapshot,
        live: LiveInvites,
        reason: str,
    ) -> None:
        gid = worker.guild_id
        config = await self.repos.guild_settings.get(gid)
        fresh = [a for a in done if not a.recorded]
        unrecorded = {j.key(gid) for j in await self._without_recorded(gid, [a.joiner for a in fresh])}
        earlier = await self.repos.joins.members_with_joins(gid, [a.joiner.member_id for a in fresh])
        for arrival, outcome in zip(done, outcomes, strict=True):
            attribution = self._hinted(gid, self._attribution(outcome, known, live, arrival, reason))
            if arrival.recorded:
                await self._settle_awaiting(gid, arrival, attribution, config.fake_account_days)
            else:
                rejoin = arrival.joiner.member_id in earlier
                await self._record_once(gid, arrival, attribution, rejoin, unrecorded,
                                        config.fake_account_days)
                earlier.add(arrival.joiner.member_id)  # a later join of theirs in this batch rejoins

    async def _settle_awaiting(self, guild_id: int, arrival: Arrival, attribution: Attribution,
                               fake_days: int) -> None:
        joiner = arrival.joiner
        fake = arrival.fake or fake_reason(
            member_id=joiner.member_id,
            inviter_id=attribution.inviter_id,
            joined_at=joiner.joined_at,
            account_created_at=joiner.created_at,
            fake_account_days=fake_days,
        )
        credit = credit_for(arrival.counted, attribution)
        await self.repos.joins.settle_awaiting(joiner.key(guild_id), attribution, credit, fake)
        if attribution.code is not None:
            await self.conversions.check(guild_id, joiner.member_id)
        log.info("join of %s in guild %s, awaiting a readable invite list: %s%s", joiner.member_id,
                 guild_id, attribution.source, f" via {attribution.code}" if attribution.code else "")

    async def _record_unknown(
        self, guild_id: int, arrivals: list[Arrival], reason: str, *, awaiting: bool
    ) -> dict[int, tuple[str, str]]:
        """Record joins that could not be attributed at all (invites unreadable, no snapshot);
        returns member -> (counted, fake reason) as stored (by this run or an earlier one)."""
        if not arrivals:
            return {}
        new = await self._without_recorded(guild_id, [a.joiner for a in arrivals])
        unrecorded = {j.key(guild_id) for j in new}
        config = await self.repos.guild_settings.get(guild_id)
        earlier = await self.repos.joins.members_with_joins(guild_id, [j.member_id for j in new])
        attribution = Attribution("unknown", reason=reason, awaiting="snapshot" if awaiting else "")
        for arrival in arrivals:
            rejoin = arrival.joiner.member_id in earlier
            await self._record_once(guild_id, arrival, attribution, rejoin, unrecorded,
                                    config.fake_account_days)
            earlier.add(arrival.joiner.member_id)
        stored = await self.repos.joins.by_keys([a.joiner.key(guild_id) for a in arrivals])
        return {doc.member_id: (doc.counted, doc.fake_reason) for doc in stored}

    async def _record_once(self, guild_id: int, arrival: Arrival, attribution: Attribution, rejoin: bool,
                           unrecorded: set[str], fake_days: int) -> None:
        """Record a waiting join and announce it, exactly once however often its job runs: a run
        again after an outage finishes what the first run started (the record is kept as first
        written, the member marked present, the join announced); a join stored before this
        process saw it (a previous process) is only marked present, never announced again."""
        if arrival.written:
            return
        if not arrival.writing and arrival.joiner.key(guild_id) not in unrecorded:
            await self.repos.joins.mark_present(guild_id, arrival.joiner.member_id, arrival.joiner.joined_at)
        else:
            arrival.writing = True
            await self._record(guild_id, arrival.joiner, attribution, rejoin, fake_days)
        arrival.written = True

    async def _record(
        self, guild_id: int, joiner: Joiner, attribution: Attribution, rejoin: bool, fake_days: int
    ) -> JoinRecord:
        repeat_rule = rejoin and (await self.repos.guild_settings.get(guild_id)).fake_repeat_joiner
        record = JoinRecord(
            guild_id=guild_id,
            member_id=joiner.member_id,
            member_name=joiner.name,
            joined_at=joiner.joined_at,
            account_created_at=joiner.created_at,
            attribution=attribution,
            counted=REJOIN if rejoin else FIRST,
            fake_reason=fake_reason(
                member_id=joiner.member_id,
                inviter_id=attribution.inviter_id,
                joined_at=joiner.joined_at,
                account_created_at=joiner.created_at,
                fake_account_days=fake_days,
                repeat_joiner=repeat_rule,
            ),
            recorded_at=self.clock.now(),
        )
        await self.repos.joins.record(record)
        if attribution.code is not None:
            await self.conversions.check(guild_id, joiner.member_id)
        self.access.joined(JoinFacts(
            guild_id, joiner.member_id, joiner.name, attribution.source, attribution.code,
            tuple(attribution.candidates), attribution.inviter_id, attribution.inviter_name,
            joiner.joined_at, joiner.created_at, live=joiner.live, hint=attribution.hint,
        ))
        log.info(
            "join of %s in guild %s: %s%s",
            joiner.member_id,
            guild_id,
            attribution.source,
            f" via {attribution.code}" if attribution.code else "",
        )
        return record

    async def _left(self, guild_id: int, member_id: int, now: datetime, *, restored: bool = False) -> int:
        # A leave from a previous run's journal: a stay begun after it is a rejoin while the bot was down.
        rejoin_after = now if restored else None
        changed = await self.repos.joins.left(guild_id, member_id, now, joined_before=rejoin_after)
        await self._fake_if_left_quickly(guild_id, member_id)
        first = await self.repos.joins.first_for_member(guild_id, member_id)
        facts = None
        if first is not None:
            facts = JoinFacts(guild_id, member_id, first.member_name, first.source, first.code,
                              first.candidates, first.inviter_id, first.inviter_name, first.joined_at,
                              first.account_created_at)
        name = first.member_name if first is not None else str(member_id)
        self.access.left(guild_id, member_id, name, facts)
        return changed

    async def _fake_if_left_quickly(self, guild_id: int, member_id: int) -> None:
        """The guild's "left within N seconds" rule (off by default): the stay just closed."""
        config = await self.repos.guild_settings.get(guild_id)
        if config.fake_left_within_seconds <= 0:
            return
        latest = await self.repos.joins.latest_for_member(guild_id, member_id)
        if latest is None or latest.left_at is None or latest.fake_reason:
            return
        if left_quickly(latest.joined_at, latest.left_at, config.fake_left_within_seconds):
            await self.repos.joins.mark_fake(latest.key, LEFT_QUICKLY)
            log.info("join of %s in guild %s is fake: left within %ss", member_id, guild_id,
                     config.fake_left_within_seconds)

    # ---- conversions ----------------------------------------------------------------------------
    async def role_gained(self, guild_id: int, member_id: int, added: set[int]) -> bool:
        """A member attributed to a staff code who gains the conversion role: one conversion."""
        return await self.conversions.role_gained(guild_id, member_id, added)


def _lo_of(read: Read, waiting: Sequence[Arrival], guild_id: int) -> int:
    """How many waiting joins a restored read surely holds: the leading ones it names."""
    keys = read.keys or frozenset()
    count = 0
    for arrival in waiting:
        if arrival.joiner.key(guild_id) not in keys:
            break
        count += 1
    return count


def _bounds_by_key(read: Read, waiting: Sequence[Arrival], guild_id: int, hi: int) -> tuple[int, int]:
    """(lo, hi) of a restored read: at least the leading joins it names, at most up to the last it
    names or the end of its window, whichever is later (joins found meanwhile may sit between)."""
    keys = read.keys or frozenset()
    named = [i for i, a in enumerate(waiting) if a.joiner.key(guild_id) in keys]
    return _lo_of(read, waiting, guild_id), max(hi, (named[-1] + 1) if named else 0)


_FAILED = object()  # a vanity read Discord did not answer


def _progress(worker: GuildWorker) -> tuple[int, ...]:
    """What a round changes when it gets anywhere: joins waiting or settled, reads, reshapes."""
    return (len(worker.waiting), sum(a.recorded for a in worker.waiting), len(worker.reads), worker.settled,
            worker.reshaped)


def _waiting_for(worker: GuildWorker, joiner: Joiner) -> bool:
    """Whether this join of the member (not an earlier one) is waiting already. The same join's time
    as the member list gives it and as its event (or the invite journal) kept it may differ in
    precision, so a join counts as the same within SAME_JOIN; a rejoin comes later than that."""
    return any(a.joiner.member_id == joiner.member_id and joiner.joined_at <= a.joiner.joined_at + SAME_JOIN
               for a in worker.waiting)


def _insert_offline(worker: GuildWorker, found: list[Arrival]) -> None:
    """Joins found in the member list go after the joins a previous run kept (their events came
    before the restart) and before this run's events, keeping the arrival times in order."""
    at = next((a.at for a in reversed(worker.waiting) if a.restored), -math.inf)
    index = max((i + 1 for i, a in enumerate(worker.waiting) if a.restored), default=0)
    worker.waiting[index:index] = [replace(a, at=at) for a in found]
    worker.reshaped += 1


def _from_awaiting(doc: StoredJoin) -> Arrival:
    created = doc.account_created_at or doc.joined_at
    joiner = Joiner(doc.member_id, doc.member_name, doc.joined_at, created, True)
    return Arrival(joiner, -math.inf, 0, recorded=True, counted=doc.counted, fake=doc.fake_reason)


def _every_invite(base: Snapshot | None, reads: Sequence[Read]) -> Snapshot:
    """Every invite seen from the snapshot to the last of `reads` (the latest facts of each), so a
    code created and used up between two reads still has its inviter."""
    invites = dict(base.invites) if base else {}
    for read in reads:
        invites.update(read.live.snapshot().invites)
    return Snapshot(invites)


def _keep_vanity(base: Snapshot | None, live: LiveInvites, result: Settlement) -> LiveInvites:
    """The read at the cut could not get the vanity uses. When every join settled up to it got an
    invite code, none of them used the vanity URL, so its count is still the one before; else
    its count is unknown (None) until a read has it again: no vanity use is credited to a later
    joiner that an earlier one may have made."""
    if live.vanity_uses is not None or base is None or base.vanity_uses is None:
        return live
    if all(outcome.code is not None and outcome.code != VANITY for outcome in result.outcomes):
        return replace(live, vanity_code=base.vanity_code, vanity_uses=base.vanity_uses)
    return live
