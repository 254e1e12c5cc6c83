"""Invite tracking per guild: one worker per guild processes every invite-related event in order.

No Discord here: the cog translates gateway events into `submit` calls and hands the tracker a
`GuildAccess` (the invite list, the vanity uses and the member list of a guild, and where to
announce a recorded join or leave). Data flows event -> cog -> tracker -> repository.

Start order (per guild): events that arrive before the guild is available are queued, never
dropped. When the guild becomes available the worker first *syncs*: it loads the stored
snapshot, fetches the live invites (and the vanity URL's uses), attributes the members who
joined while the bot was not watching (downtime) together with the joins already queued, closes
the stays of members who left meanwhile, and stores the new snapshot. Only then does it process
the queue, one job at a time: joins (consecutive queued joins form one batch: one fetch, one
match), leaves, invite creates/deletes, role gains (conversions), refreshes.

All attribution decisions are made by `app.tracking.attribution` (pure); all writes go to repositories.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pymongo.errors import PyMongoError

from app.storage.writes import is_outage
from app.tracking.attribution import (
    VANITY,
    GroupMatch,
    Snapshot,
    fake_reason,
    increases,
    inviter_of,
    match_group,
)
from app.wiring.clock import Clock
from app.wiring.container import Repositories
from repositories.invites import StoredInvite
from repositories.joins import FIRST, REJOIN, Attribution, JoinRecord, StoredJoin, credit_for, join_key

log = logging.getLogger(__name__)
MAX_BATCH = 50
OUTAGE_RETRY_FIRST_SECONDS = 0.5
OUTAGE_RETRY_MAX_SECONDS = 15.0


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

    def joined(self, facts: JoinFacts) -> None:
        """A join was recorded."""
        ...

    def left(self, guild_id: int, member_id: int, name: str, facts: JoinFacts | None) -> None:
        """A leave was recorded."""
        ...


@dataclass
class Job:
    kind: str  # join | leave | invite_create | invite_delete | roles | sync
    data: Any = None
    done: asyncio.Future[Any] | None = None


@dataclass
class LiveInvites:
    invites: list[StoredInvite]
    vanity_code: str | None
    vanity_uses: int | None

    def snapshot(self) -> Snapshot:
        return Snapshot(
            invites={inv.code: inv.uses_entry() for inv in self.invites},
            vanity_code=self.vanity_code,
            vanity_uses=self.vanity_uses,
        )


@dataclass
class GuildWorker:
    guild_id: int
    queue: deque[Job] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    needs_sync: bool = False
    task: asyncio.Task[None] | None = None

    def queued_join_ids(self) -> set[int]:
        return {job.data.member_id for job in self.queue if job.kind == "join"}


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

    def __init__(self, repos: Repositories, clock: Clock, access: GuildAccess) -> None:
        self.repos = repos
        self.clock = clock
        self.access = access
        self.workers: dict[int, GuildWorker] = {}
        self.warned_forbidden: set[int] = set()

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
        """Queue a job (synchronously, so jobs keep the order their events arrived in)."""
        worker = self.worker(guild_id)
        done = asyncio.get_running_loop().create_future() if wait else None
        worker.queue.append(Job(kind, data, done))
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

    async def wait_idle(self) -> None:
        """Until every started worker has an empty queue and nothing in progress."""
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
            if worker.needs_sync:
                worker.needs_sync = False
                await self._guarded(worker, Job("sync"))
                continue
            if not worker.queue:
                worker.idle.set()
                worker.wake.clear()
                await worker.wake.wait()
                continue
            job = worker.queue.popleft()
            if job.kind == "join":
                batch = [job]
                while worker.queue and worker.queue[0].kind == "join" and len(batch) < MAX_BATCH:
                    batch.append(worker.queue.popleft())
                await self._guarded(worker, Job("joins", [j.data for j in batch]), batch)
            else:
                await self._guarded(worker, job, [job])

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
        for original in originals:
            if original.done is not None and not original.done.done():
                if error is not None:
                    original.done.set_exception(error)
                else:
                    original.done.set_result(result)

    async def _until_mongodb_answers(self, worker: GuildWorker, job: Job) -> Any:
        """Run the job; while MongoDB is away, wait and run it again (the guild's later jobs wait
        behind it, in order). Every step of a job is idempotent, so a partial first run is harmless.
        Joins waiting here are matched together once MongoDB is back: exact when the uses since the
        snapshot add up for one code, `ambiguous` otherwise, never guessed."""
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
        if job.kind == "refresh":
            return await self.sync(worker)
        if job.kind == "joins":
            return await self.process_joins(worker, job.data)
        if job.kind == "leave":
            return await self._left(gid, job.data, now)
        if job.kind == "invite_create":
            return await self.repos.invites.created(gid, job.data, now)
        if job.kind == "invite_delete":
            return await self.repos.invites.removed(gid, job.data, now)
        if job.kind == "roles":
            member_id, added = job.data
            return await self.role_gained(gid, member_id, added)
        raise ValueError(f"unknown invite job {job.kind!r}")

    # ---- fetching -------------------------------------------------------------------------------
    async def fetch_live(self, guild_id: int) -> LiveInvites:
        """The live invites and vanity uses; FetchFailed when Discord would not say."""
        try:
            invites = await self.access.invites(guild_id)
            vanity = await self.access.vanity(guild_id)
        except FetchFailed as failed:
            forbidden = failed.reason == "missing_permissions"
            if forbidden:
                self._warn_forbidden(guild_id, failed.detail)
            else:
                log.warning("could not fetch invites of guild %s: %s", guild_id, failed.detail)
            await self.repos.invite_guilds.fetch_failed(guild_id, self.clock.now(), forbidden=forbidden)
            raise
        self.warned_forbidden.discard(guild_id)
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

    async def _store_snapshot(
        self, guild_id: int, stored: dict[str, StoredInvite], live: LiveInvites
    ) -> None:
        now = self.clock.now()
        changed = [inv for inv in live.invites if _differs(stored.get(inv.code), inv)]
        live_codes = {inv.code for inv in live.invites}
        gone = [code for code in stored if code not in live_codes]
        await self.repos.invites.set_uses(guild_id, changed, now)
        for code in gone:
            await self.repos.invites.removed(guild_id, code, now)
        await self.repos.invite_guilds.snapshot_stored(guild_id, now, live.vanity_code, live.vanity_uses)

    # ---- sync (start, guild available, /invites refresh) -------------------------------------------
    async def sync(self, worker: GuildWorker) -> dict[str, Any]:
        gid = worker.guild_id
        guild = self.access.members(gid)
        if guild is None:
            return {"status": "no guild"}
        state = await self.repos.invite_guilds.get(gid)
        stored = await self.repos.invites.live(gid)
        queued_before = {job.data.member_id: job.data for job in worker.queue if job.kind == "join"}
        try:
            live = await self.fetch_live(gid)
        except FetchFailed as failed:
            if state.snapshot_at is not None:
                group = self._unseen_joiners(guild, state.snapshot_at, queued_before, worker)
                await self._record_group(gid, group, failed.reason, awaiting=True)
            await self._reconcile_leaves(gid, guild)
            return {"status": failed.reason}
        group = list(queued_before.values())
        awaiting: list[StoredJoin] = []
        reason = "no_snapshot"
        if state.snapshot_at is not None:
            group = self._unseen_joiners(guild, state.snapshot_at, queued_before, worker)
            awaiting = await self.repos.joins.awaiting(gid)
            reason = "joined_while_offline"
        group = await self._without_recorded(gid, group)
        outcome = None
        if state.snapshot_at is not None and (group or awaiting):
            stored_snapshot = state.snapshot(stored)
            outcome = match_group(len(group) + len(awaiting), increases(stored_snapshot, live.snapshot()))
            await self._apply(gid, group, awaiting, outcome, stored_snapshot, live.snapshot(), reason)
        elif group:
            await self._record_group(gid, group, reason, awaiting=False)
        await self._reconcile_leaves(gid, guild)
        await self._store_snapshot(gid, stored, live)
        log.info(
            "invites of guild %s synced: %d live, %d joins reconciled (%s)",
            gid,
            len(live.invites),
            len(group) + len(awaiting),
            outcome.status if outcome else "none",
        )
        return {
            "status": "ok",
            "invites": len(live.invites),
            "reconciled": len(group) + len(awaiting),
            "outcome": outcome.status if outcome else "none",
        }

    def _unseen_joiners(
        self, guild: GuildMembers, since: datetime, queued_before: dict[int, Joiner], worker: GuildWorker
    ) -> list[Joiner]:
        """Members who joined after the snapshot (and the joins queued before the fetch), except
        joins queued after the fetch started: their uses may be missing from it."""
        queued_after = worker.queued_join_ids() - set(queued_before)
        found: dict[int, Joiner] = dict(queued_before)
        for member in guild.members:
            if member.member_id in found or member.member_id in queued_after:
                continue
            if member.joined_at > since:
                found[member.member_id] = member
        return sorted(found.values(), key=lambda j: j.joined_at)

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

    # ---- live joins -----------------------------------------------------------------------------
    async def process_joins(self, worker: GuildWorker, joiners: list[Joiner]) -> str:
        gid = worker.guild_id
        if not self.access.has_guild(gid):
            return "no guild"
        group = await self._without_recorded(gid, joiners)
        if not group:
            return "already recorded"
        state = await self.repos.invite_guilds.get(gid)
        stored = await self.repos.invites.live(gid)
        try:
            live = await self.fetch_live(gid)
        except FetchFailed as failed:
            awaiting = state.snapshot_at is not None
            await self._record_group(gid, group, failed.reason, awaiting=awaiting)
            return failed.reason
        if state.snapshot_at is None:
            await self._record_group(gid, group, "no_snapshot", awaiting=False)
            await self._store_snapshot(gid, stored, live)
            return "no_snapshot"
        awaiting = await self.repos.joins.awaiting(gid) if state.stale else []
        stored_snapshot = state.snapshot(stored)
        gained = increases(stored_snapshot, live.snapshot())
        outcome = match_group(len(group) + len(awaiting), gained)
        if not outcome.attributed:
            group, outcome = await self._widen(worker, group, awaiting, gained, outcome)
        await self._apply(gid, group, awaiting, outcome, stored_snapshot, live.snapshot(), "")
        await self._store_snapshot(gid, stored, live)
        return outcome.status

    async def _widen(
        self,
        worker: GuildWorker,
        group: list[Joiner],
        awaiting: list[StoredJoin],
        gained: dict[str, int],
        outcome: GroupMatch,
    ) -> tuple[list[Joiner], GroupMatch]:
        """The batch did not match. Joins whose events arrived while the list was fetched (queued
        next) joined before its answer came, so their uses are usually in it: when the batch plus
        them accounts for the increases exactly (one code), take them along. Otherwise leave them
        queued, in order, and keep the batch's own unattributed outcome."""
        extra: list[Job] = []
        while worker.queue and worker.queue[0].kind == "join" and len(group) + len(extra) < MAX_BATCH:
            extra.append(worker.queue.popleft())
        if not extra:
            return group, outcome
        wider = group + await self._without_recorded(worker.guild_id, [job.data for job in extra])
        widened = match_group(len(wider) + len(awaiting), gained)
        if widened.attributed:
            return wider, widened
        worker.queue.extendleft(reversed(extra))
        return group, outcome

    # ---- recording ------------------------------------------------------------------------------
    def _attribution(
        self, outcome: GroupMatch, stored: Snapshot, live: Snapshot, *, live_join: bool, reason: str
    ) -> Attribution:
        if outcome.code is None:
            source = "ambiguous" if outcome.candidates else "unknown"
            return Attribution(source, candidates=outcome.candidates, reason=reason)
        if outcome.code == VANITY:
            code = live.vanity_code or stored.vanity_code
            source = "vanity" if live_join else "downtime"
            return Attribution(source, code=code, candidates=outcome.candidates)
        invite = inviter_of(outcome.code, stored, live)
        return Attribution(
            "invite" if live_join else "downtime",
            code=outcome.code,
            inviter_id=invite.inviter_id if invite else None,
            inviter_name=invite.inviter_name if invite else None,
            candidates=outcome.candidates,
        )

    async def _apply(
        self,
        guild_id: int,
        group: list[Joiner],
        awaiting: list[StoredJoin],
        outcome: GroupMatch,
        stored: Snapshot,
        live: Snapshot,
        reason: str,
    ) -> None:
        config = await self.repos.guild_settings.get(guild_id)
        earlier = await self.repos.joins.members_with_joins(guild_id, [j.member_id for j in group])
        for joiner in group:
            attribution = self._attribution(
                outcome, stored, live, live_join=joiner.live, reason="" if joiner.live else reason
            )
            rejoin = joiner.member_id in earlier
            await self._record(guild_id, joiner, attribution, rejoin, config.fake_account_days)
        for doc in awaiting:
            attribution = self._attribution(outcome, stored, live, live_join=True, reason="")
            fake = doc.fake_reason or fake_reason(
                member_id=doc.member_id,
                inviter_id=attribution.inviter_id,
                joined_at=doc.joined_at,
                account_created_at=doc.account_created_at or doc.joined_at,
                fake_account_days=config.fake_account_days,
            )
            credit = credit_for(doc.counted, attribution)
            await self.repos.joins.settle_awaiting(doc.key, attribution, credit, fake)

    async def _record_group(self, guild_id: int, group: list[Joiner], reason: str, *, awaiting: bool) -> None:
        """Record joins that could not be attributed at all (no snapshot, invites unreadable)."""
        if not group:
            return
        config = await self.repos.guild_settings.get(guild_id)
        earlier = await self.repos.joins.members_with_joins(guild_id, [j.member_id for j in group])
        attribution = Attribution("unknown", reason=reason, awaiting="snapshot" if awaiting else "")
        for joiner in group:
            rejoin = joiner.member_id in earlier
            await self._record(guild_id, joiner, attribution, rejoin, config.fake_account_days)

    async def _record(
        self, guild_id: int, joiner: Joiner, attribution: Attribution, rejoin: bool, fake_days: int
    ) -> None:
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
            ),
            recorded_at=self.clock.now(),
        )
        await self.repos.joins.record(record)
        self.access.joined(JoinFacts(
            guild_id, joiner.member_id, joiner.name, attribution.source, attribution.code,
            tuple(attribution.candidates), attribution.inviter_id, attribution.inviter_name,
            joiner.joined_at, joiner.created_at, live=joiner.live,
        ))
        log.info(
            "join of %s in guild %s: %s%s",
            joiner.member_id,
            guild_id,
            attribution.source,
            f" via {attribution.code}" if attribution.code else "",
        )

    async def _left(self, guild_id: int, member_id: int, now: datetime) -> int:
        changed = await self.repos.joins.left(guild_id, member_id, now)
        first = await self.repos.joins.first_for_member(guild_id, member_id)
        facts = None
        if first is not None:
            facts = JoinFacts(guild_id, member_id, first.member_name, first.source, first.code,
                              first.candidates, first.inviter_id, first.inviter_name, first.joined_at,
                              first.account_created_at)
        name = first.member_name if first is not None else str(member_id)
        self.access.left(guild_id, member_id, name, facts)
        return changed

    # ---- conversions ----------------------------------------------------------------------------
    async def role_gained(self, guild_id: int, member_id: int, added: set[int]) -> bool:
        """A member attributed to a staff code who gains the conversion role: one conversion."""
        config = await self.repos.guild_settings.get(guild_id)
        if config.conversion_role is None or config.conversion_role not in added:
            return False
        first = await self.repos.joins.first_for_member(guild_id, member_id)
        if first is None or first.code is None or first.converted_by:
            return False
        staff = await self.repos.staff_codes.by_code(guild_id, first.code)
        if staff is None:
            return False
        converted = await self.repos.joins.mark_converted(first.key, staff.member_id, self.clock.now())
        if converted:
            log.info("conversion of %s in guild %s: staff %s", member_id, guild_id, staff.member_id)
        return converted
