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

from app.storage.writes import is_outage
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
OUTAGE_RETRY_FIRST_SECONDS = 0.5
OUTAGE_RETRY_MAX_SECONDS = 15.0
EVENT_LAG_SECONDS = 0.5  # longest assumed delay between a join (its use visible) and its event
SETTLE_SECONDS = 0.1  # quiet time after the latest join before the invites are read ...
SETTLE_MAX_SECONDS = 0.3  # ... but never longer than this after the first join not read yet
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
    invite list (`counted` as it was recorded)."""

    joiner: Joiner
    at: float
    seq: int
    reason: str = ""
    recorded: bool = False
    counted: str = FIRST
    fake: str = ""


@dataclass
class Read:
    """One read of the live invites: sent and answered (monotonic), `lo` waiting joiners surely in it."""

    sent: float
    answered: float
    lo: int
    live: LiveInvites
    at: datetime


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
    task: asyncio.Task[None] | None = None

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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repos = repos
        self.clock = clock
        self.access = access
        self.event_lag = event_lag
        self.settle_seconds = settle_seconds
        self.monotonic = monotonic
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
        if kind == "join":
            if not any(a.joiner.key(guild_id) == data.key(guild_id) for a in worker.waiting):
                worker.waiting.append(Arrival(data, self.monotonic(), self._seq))
        else:
            worker.queue.append(Job(kind, data, done, self._seq, self.monotonic()))
        worker.idle.clear()
        worker.wake.set()
        return done

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

    def gateway_lost(self) -> None:
        """The gateway connection dropped: join events may come late (a RESUME replays them), so no
        read is trusted to include every join before it until the connection is back."""
        self.gateway_ok.clear()

    def gateway_back(self) -> None:
        if not self.gateway_ok.is_set():
            for worker in self.workers.values():
                worker.reads.clear()
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
            elif worker.unsettled() or worker.reads:
                await self._guarded(worker, Job("round"))
            else:
                worker.idle.set()
                await worker.wake.wait()

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
            return await self._left(gid, job.data, now)
        if job.kind == "invite_create":
            return await self._created(worker, job, now)
        if job.kind == "invite_delete":
            return await self.repos.invites.removed(gid, job.data, now)
        if job.kind == "roles":
            member_id, added = job.data
            return await self.role_gained(gid, member_id, added)
        raise ValueError(f"unknown invite job {job.kind!r}")

    # ---- fetching -------------------------------------------------------------------------------
    async def fetch_live(self, guild_id: int, vanity_code: str | None = None) -> LiveInvites:
        """The live invites and vanity uses; FetchFailed when the invite list could not be read.
        A failed vanity request alone keeps the list: the vanity uses are then None (no candidate
        for this read), with `vanity_code` (the one known before) kept."""
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
        try:
            vanity = await self.access.vanity(guild_id)
        except FetchFailed as failed:
            log.warning("could not read the vanity uses of guild %s (%s): the vanity URL is no "
                        "candidate for this read", guild_id, failed.detail)
            return LiveInvites(invites, vanity_code, None)
        vanity_code, vanity_uses = vanity if vanity is not None else (None, None)
        return LiveInvites(invites, vanity_code, vanity_uses)

    def _warn_forbidden(self, guild_id: int, detail: str) -> None:
        if guild_id not in self.warned_forbidden:
            self.warned_forbidden.add(guild_id)
            log.warning(
                "guild %s: the bot lacks Manage Guild, so it cannot read invites; joins are "
                "recorded as unknown until the permission is given (%s)",
                guild_id,
                detail,
            )

    async def _store_snapshot(self, worker: GuildWorker, live: LiveInvites) -> None:
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
        vanity_code, vanity_uses = live.vanity_code, live.vanity_uses
        if vanity_uses is None and worker.base is not None and worker.base.vanity_uses is not None:
            vanity_code, vanity_uses = worker.base.vanity_code, worker.base.vanity_uses  # unchanged
        await self.repos.invite_guilds.snapshot_stored(gid, at, vanity_code, vanity_uses)
        worker.stored = {inv.code: inv for inv in live.invites}

    # ---- sync (start, guild available) ----------------------------------------------------------
    async def _load(self, worker: GuildWorker) -> None:
        """The stored snapshot, once per process (later the worker's memory is newer)."""
        if worker.loaded:
            return
        gid = worker.guild_id
        state = await self.repos.invite_guilds.get(gid)
        worker.stored = await self.repos.invites.live(gid)
        worker.base = state.snapshot(worker.stored) if state.snapshot_at is not None else None
        if state.stale:
            await self._take_awaiting(worker)
        worker.loaded = True

    async def _take_awaiting(self, worker: GuildWorker) -> None:
        """Joins recorded as unknown while the invites could not be read wait again, first."""
        known = {a.joiner.key(worker.guild_id) for a in worker.waiting}
        docs = [d for d in await self.repos.joins.awaiting(worker.guild_id) if d.key not in known]
        worker.waiting[:0] = [_from_awaiting(doc) for doc in docs]

    async def sync(self, worker: GuildWorker) -> dict[str, Any]:
        gid = worker.guild_id
        guild = self.access.members(gid)
        if guild is None:
            return {"status": "no guild"}
        await self._load(worker)
        state = await self.repos.invite_guilds.get(gid)
        # Reads made before this point may predate joins only now found in the member list.
        worker.reads.clear()
        if state.snapshot_at is not None:
            unseen = await self._unseen_joiners(worker, guild, state.snapshot_at)
            worker.waiting[:0] = [Arrival(j, -math.inf, 0, reason=OFFLINE) for j in unseen]
        await self._reconcile_leaves(gid, guild)
        result = await self.round(worker, force=True)
        await self.conversions.reconcile(gid)
        log.info("invites of guild %s synced: %s", gid, result)
        return result

    async def _unseen_joiners(
        self, worker: GuildWorker, guild: GuildMembers, since: datetime
    ) -> list[Joiner]:
        """Members who joined after the snapshot, have no join record and no event waiting."""
        waiting = {a.joiner.member_id for a in worker.waiting}
        found = [m for m in guild.members if m.joined_at > since and m.member_id not in waiting]
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
    async def round(self, worker: GuildWorker, *, force: bool = False) -> dict[str, Any]:
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
        vanity_code = worker.base.vanity_code if worker.base else None
        sent = self.monotonic()
        lo = len(worker.waiting)
        live = await self.fetch_live(worker.guild_id, vanity_code)
        read = Read(sent, self.monotonic(), lo, live, self.clock.now())
        worker.reads.append(read)
        return read

    async def _unreadable(self, worker: GuildWorker, reason: str) -> None:
        """The invite list could not be read: record the waiting joins as unknown now (awaiting a
        readable list when there is a snapshot to compare with later); reads so far are dropped."""
        worker.reads.clear()
        fresh = worker.unsettled()
        awaiting = worker.base is not None
        recorded = await self._record_unknown(worker.guild_id, fresh, reason, awaiting=awaiting)
        if awaiting:
            for arrival in fresh:
                arrival.recorded = True
                arrival.counted, arrival.fake = recorded.get(arrival.joiner.member_id, (FIRST, ""))
        else:
            worker.waiting = [a for a in worker.waiting if a.recorded]

    def _windows(self, worker: GuildWorker) -> list[Window]:
        """The reads whose windows have closed (answered + event_lag is past), as `settle` takes them."""
        arrived = [a.at for a in worker.waiting]
        now = self.monotonic()
        windows = []
        for read in worker.reads:
            closes = read.answered + self.event_lag
            if closes > now:
                break
            hi = bisect.bisect_left(arrived, closes)
            windows.append(Window(read.lo, max(hi, read.lo), read.live.snapshot(), read.at))
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
        await self._store_snapshot(worker, live)
        worker.settled_at = max([worker.settled_at, *(a.at for a in done)])
        worker.waiting = worker.waiting[result.joiners :]
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
            elif arrival.joiner.key(gid) in unrecorded:
                rejoin = arrival.joiner.member_id in earlier
                await self._record(gid, arrival.joiner, attribution, rejoin, config.fake_account_days)

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

    async def _record_unknown(
        self, guild_id: int, arrivals: list[Arrival], reason: str, *, awaiting: bool
    ) -> dict[int, tuple[str, str]]:
        """Record joins that could not be attributed at all (invites unreadable, no snapshot);
        returns member -> (counted, fake reason) as recorded."""
        joiners = await self._without_recorded(guild_id, [a.joiner for a in arrivals])
        if not joiners:
            return {}
        config = await self.repos.guild_settings.get(guild_id)
        earlier = await self.repos.joins.members_with_joins(guild_id, [j.member_id for j in joiners])
        attribution = Attribution("unknown", reason=reason, awaiting="snapshot" if awaiting else "")
        recorded = {}
        for joiner in joiners:
            rejoin = joiner.member_id in earlier
            record = await self._record(guild_id, joiner, attribution, rejoin, config.fake_account_days)
            recorded[joiner.member_id] = (record.counted, record.fake_reason)
        return recorded

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

    async def _left(self, guild_id: int, member_id: int, now: datetime) -> int:
        changed = await self.repos.joins.left(guild_id, member_id, now)
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
