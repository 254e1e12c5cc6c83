"""Invite figures in memory, per guild: `/invites`, `/invites leaderboard` and the join
announcements' totals without an aggregation per command.

MongoDB stays the only store of record (see `docs/data-model.md`, "Invite boards in memory"):

- a mirror of every join document of the guild, reduced to what the figures use (the member, the
  inviter credited, `joined_ms`, fake, left, reset; for a credited join also its code, the
  member's status and `left_ms`, for retention), and of every non-zero bonus;
- per inviter, the `joined_ms` of their credited joins in three sorted lists (regular, fake, left),
  so a period's figures are a bisection; the all-time leaderboard as a `SortedList` ordered as
  `InviteStats.leaderboard` orders it (total, then regular, highest first, then member id);
- per (inviter, code), the credited members as retention counts them (`RetentionSet`: present
  ones by join time, those who left by the length of their stay), so how many stayed N days at
  any moment is a bisection (`app/tracking/retention.py` defines it; a test holds them equal).

Kept exact by reading back, not by deltas: every write of the join and bonus repositories tells
the boards which documents it touched (`JoinWatch`), and the next read of the guild (or the
background drain) reads those documents again by `_id` and replaces their mirror. A document's
figures are a function of the document alone, so a retried, replayed or late write changes
nothing twice, and a read that starts after a write was acknowledged sees it (one read at a time
per guild, in order). A guild's boards are built in the background with one pass over its
documents; until then `ready()` is False and `InviteStats` falls back to the aggregations. Only the
process holding the lease answers from them (the others: aggregations).
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sortedcontainers import SortedList

from app.tracking.builds import GuildBuilds
from app.tracking.retention import DAY_MS, HORIZONS, Horizon, Retention, RetentionView, Stay, retained_order
from app.wiring.clock import to_ms
from app.wiring.heap import building, collect_young_if_due
from repositories.invite_bonus import InviteBonusRepository
from repositories.joins import FAKE_REASONS, InviterCounts, JoinRepository

log = logging.getLogger(__name__)
READ_BATCH = 500  # documents read back by `_id` per query
CHUNK = 100  # documents (or members) handled per event-loop turn while building
NO_TIME = -(1 << 62)  # `left_ms` not recorded
LOWEST = -(1 << 63)  # below any stay: `(since_ms, LOWEST)` sorts before every left member joined then
Row = tuple[int, InviterCounts, int]  # a leaderboard row: member, their counts, their bonus


class Figures(NamedTuple):
    """What one join document adds to its inviter's figures (a tuple of ints and a str: the garbage
    collector stops tracking it, so a mirror of 100,000 joins does not lengthen its collections)."""

    member_id: int
    inviter_id: int  # 0: credits nobody
    joined_ms: int
    fake: bool
    left: bool
    code: str = ""  # the code of a credited join ("" when none was stored)
    gone: bool = False  # member_status left (fake or not): retention's "left"
    left_ms: int = NO_TIME  # when the stay this join began ended

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Figures:
        """The filters of `JoinRepository.counts`, as MongoDB matches them (a missing field does
        not equal ""): credited and not reset; fake by reason; left when not fake (reason "") and
        the member's status is left."""
        credit_to = doc.get("credit_to")
        credited = isinstance(credit_to, int) and credit_to > 0 and doc.get("reset_id") == ""
        joined_ms = doc.get("joined_ms")
        if joined_ms is None:
            joined_ms = to_ms(doc["joined_at"])
        return cls(
            member_id=int(doc["member_id"]),
            inviter_id=int(credit_to) if credited else 0,  # type: ignore[arg-type]
            joined_ms=int(joined_ms),
            fake=doc.get("fake_reason") in FAKE_REASONS,
            left=doc.get("fake_reason") == "" and doc.get("member_status") == "left",
            **(_stay_fields(doc) if credited else {}),
        )

    def stay(self) -> Stay:
        return Stay(self.member_id, self.joined_ms, None if self.left_ms == NO_TIME else self.left_ms,
                    not self.gone)

    def kinds(self) -> list[str]:
        if not self.inviter_id:
            return []
        return ["regular", *(["fake"] if self.fake else []), *(["left"] if self.left else [])]


def _stay_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What retention needs of a credited join (`app.tracking.retention.Stay`)."""
    left_ms = doc.get("left_ms")
    return {"code": str(doc.get("code") or ""), "gone": doc.get("member_status") == "left",
            "left_ms": int(left_ms) if left_ms is not None else NO_TIME}


class RetentionSet:
    """The credited members of one (inviter, code), as retention counts them at any time: present
    members by `joined_ms`; members who left by their stay's length (all time: one bisection) and
    by `joined_ms` (a period); members who left at an unrecorded time by `joined_ms`."""

    __slots__ = ("left", "members", "present", "stays", "unrecorded")

    def __init__(self) -> None:
        self.present = SortedList()
        self.left = SortedList()  # (joined_ms, stay_ms)
        self.stays = SortedList()  # stay_ms
        self.unrecorded = SortedList()
        self.members: Counter[int] = Counter()

    def change(self, figures: Figures, sign: int) -> None:
        if figures.gone and figures.left_ms != NO_TIME:
            stay_ms = figures.left_ms - figures.joined_ms
            changes = [(self.left, (figures.joined_ms, stay_ms)), (self.stays, stay_ms)]
        else:
            changes = [(self.unrecorded if figures.gone else self.present, figures.joined_ms)]
        for times, value in changes:
            if sign > 0:
                times.add(value)
            else:
                times.remove(value)
        self.members[figures.member_id] += sign
        if not self.members[figures.member_id]:
            del self.members[figures.member_id]

    def empty(self) -> bool:
        return not self.members

    def horizon(self, days: int, now_ms: int, since_ms: int | None) -> Horizon:
        """Same outcome as `Stay.stayed` for every member joined from `since_ms` on (None: all)."""
        span = days * DAY_MS
        low = 0 if since_ms is None else self.present.bisect_left(since_ms)
        present_stayed = max(0, self.present.bisect_right(now_ms - span) - low)
        present_pending = len(self.present) - low - present_stayed
        if since_ms is None:
            left = len(self.stays)
            left_stayed = left - self.stays.bisect_left(span)
            unrecorded = len(self.unrecorded)
        else:
            stays = [stay for _, stay in self.left.irange((since_ms, LOWEST))]
            left, left_stayed = len(stays), sum(stay >= span for stay in stays)
            unrecorded = len(self.unrecorded) - self.unrecorded.bisect_left(since_ms)
        return Horizon(days, present_stayed + left_stayed, present_stayed + left,
                       present_pending + unrecorded)

    def retention(self, now_ms: int, since_ms: int | None = None) -> Retention:
        horizons = tuple(self.horizon(days, now_ms, since_ms) for days in HORIZONS)
        if since_ms is None:
            brought_in = sum(self.members.values())
        else:
            brought_in = sum(len(t) - t.bisect_left(since_ms) for t in (self.present, self.unrecorded))
            brought_in += len(self.left) - self.left.bisect_left((since_ms, LOWEST))
        return Retention(brought_in, horizons)


@dataclass
class InviterBoard:
    regular: SortedList = field(default_factory=SortedList)
    fake: SortedList = field(default_factory=SortedList)
    left: SortedList = field(default_factory=SortedList)

    def counts(self, since_ms: int | None) -> InviterCounts:
        def n(times: SortedList) -> int:
            return len(times) if since_ms is None else len(times) - bisect_left(times, since_ms)

        return InviterCounts(regular=n(self.regular), fake=n(self.fake), left=n(self.left))

    def empty(self) -> bool:
        return not self.regular


def rank_key(member_id: int, counts: InviterCounts, bonus: int) -> tuple[int, int, int]:
    """The leaderboard's order: total (regular - left - fake + bonus), then regular, highest first,
    then member id."""
    total = counts.regular - counts.left - counts.fake + bonus
    return (-total, -counts.regular, member_id)


class GuildInvites:
    """One guild's mirror and boards."""

    def __init__(self, guild_id: int) -> None:
        self.guild_id = guild_id
        self.joins: dict[str, Figures] = {}
        self.keys_of: defaultdict[int, set[str]] = defaultdict(set)
        self.inviters: defaultdict[int, InviterBoard] = defaultdict(InviterBoard)
        self.bonus: dict[int, int] = {}
        self.all_time = SortedList()
        self.ranked: dict[int, tuple[int, int, int]] = {}  # member -> their key in all_time
        self.version = 0  # changes with every change of a figure: the period boards' cache key
        self._periods: dict[int, tuple[int, list[Row]]] = {}
        self.deferred: set[int] | None = None  # while building: members to rank at the end
        self.retention: dict[tuple[int, str], RetentionSet] = {}  # (inviter, code) -> its members
        self.codes_of: defaultdict[int, set[str]] = defaultdict(set)
        self.inviters_of: defaultdict[str, set[int]] = defaultdict(set)

    # ---- the mirror -----------------------------------------------------------------------
    def put(self, key: str, figures: Figures | None) -> None:
        """The document `key` now has `figures` (None: it is gone)."""
        old = self.joins.get(key)
        if old == figures:
            return
        self.version += 1
        self.joins.pop(key, None)
        if old is not None:
            self.keys_of[old.member_id].discard(key)
            self._count(old, -1)
        if figures is not None:
            self.joins[key] = figures
            self.keys_of[figures.member_id].add(key)
            self._count(figures, +1)

    def put_bonus(self, member_id: int, bonus: int) -> None:
        if self.bonus.get(member_id, 0) == bonus:
            return
        self.version += 1
        if bonus:
            self.bonus[member_id] = bonus
        else:
            self.bonus.pop(member_id, None)
        self._rerank(member_id)

    def _count(self, figures: Figures, sign: int) -> None:
        if not figures.inviter_id:
            return
        board = self.inviters[figures.inviter_id]
        for kind in figures.kinds():
            times: SortedList = getattr(board, kind)
            if sign > 0:
                times.add(figures.joined_ms)
            else:
                times.remove(figures.joined_ms)
        if board.empty():
            del self.inviters[figures.inviter_id]
        self._count_stay(figures, sign)
        self._rerank(figures.inviter_id)

    def _count_stay(self, figures: Figures, sign: int) -> None:
        pair = (figures.inviter_id, figures.code)
        group = self.retention.get(pair)
        if group is None:
            group = self.retention[pair] = RetentionSet()
            self.codes_of[figures.inviter_id].add(figures.code)
            self.inviters_of[figures.code].add(figures.inviter_id)
        group.change(figures, sign)
        if group.empty():
            del self.retention[pair]
            inviter, code = pair
            self.codes_of[inviter].discard(code)
            self.inviters_of[code].discard(inviter)
            if not self.codes_of[inviter]:
                del self.codes_of[inviter]
            if not self.inviters_of[code]:
                del self.inviters_of[code]

    def _rerank(self, member_id: int) -> None:
        if self.deferred is not None:
            self.deferred.add(member_id)
            return
        old = self.ranked.pop(member_id, None)
        if old is not None:
            self.all_time.remove(old)
        counts = self.counts(member_id, None)
        bonus = self.bonus.get(member_id, 0)
        if counts.regular or bonus:
            key = rank_key(member_id, counts, bonus)
            self.all_time.add(key)
            self.ranked[member_id] = key

    async def rank_deferred(self) -> None:
        """End of a build: rank everyone whose figures it loaded, a chunk per event-loop turn."""
        members, self.deferred = sorted(self.deferred or ()), None
        for start in range(0, len(members), CHUNK):
            for member_id in members[start: start + CHUNK]:
                self._rerank(member_id)
            await asyncio.sleep(0)

    # ---- reads --------------------------------------------------------------------------------
    def counts(self, member_id: int, since_ms: int | None) -> InviterCounts:
        board = self.inviters.get(member_id)
        return board.counts(since_ms) if board is not None else InviterCounts()

    def page(self, since_ms: int | None, skip: int, limit: int) -> tuple[list[Row], int]:
        """(member, counts, bonus) of the leaderboard's rows `skip` to `skip + limit`, and how many
        rows it has. All time: a slice of the kept board. A period: sorted on first use after a
        change, then kept until the next change."""
        if since_ms is None:
            members = [m for _, _, m in self.all_time[skip: skip + limit]]
            return [(m, self.counts(m, None), self.bonus.get(m, 0)) for m in members], len(self.all_time)
        cached = self._periods.get(since_ms)
        if cached is None or cached[0] != self.version:
            cached = (self.version, self._period_rows(since_ms))
            current = {k: v for k, v in self._periods.items() if v[0] == self.version}
            self._periods = {**current, since_ms: cached}
        return cached[1][skip: skip + limit], len(cached[1])

    # ---- retention (app.tracking.retention) ----------------------------------------------------
    def _pairs(self, inviter_id: int | None, code: str | None) -> list[tuple[int, str]]:
        if inviter_id is not None and code is not None:
            return [(inviter_id, code)] if (inviter_id, code) in self.retention else []
        if inviter_id is not None:
            return [(inviter_id, c) for c in sorted(self.codes_of.get(inviter_id, ()))]
        if code is not None:
            return [(i, code) for i in sorted(self.inviters_of.get(code, ()))]
        return sorted(self.retention)

    def retention_view(self, inviter_id: int | None, code: str | None, now_ms: int) -> RetentionView:
        """The figures of an inviter's members, a code's, or one inviter's through one code."""
        pairs = self._pairs(inviter_id, code)
        total, members = Retention(), []
        for pair in pairs:
            group = self.retention[pair]
            total += group.retention(now_ms)
            members += group.members.elements()
        return RetentionView(total, tuple(sorted(members)), frozenset(i for i, _ in pairs))

    def inviter_retention(self, inviter_id: int, now_ms: int, since_ms: int | None = None) -> Retention:
        total = Retention()
        for pair in self._pairs(inviter_id, None):
            total += self.retention[pair].retention(now_ms, since_ms)
        return total

    def retention_board(self, now_ms: int) -> list[tuple[int, Retention]]:
        """Every inviter with members brought in, in `retained_order`."""
        rows = [(inviter, self.inviter_retention(inviter, now_ms)) for inviter in self.codes_of]
        rows.sort(key=lambda row: retained_order(*row))
        return rows

    def codes(self, inviter_id: int) -> list[str]:
        return sorted(self.codes_of.get(inviter_id, ()))

    def retained_page(self, since_ms: int | None, now_ms: int, days: int, skip: int,
                      limit: int) -> tuple[list[Row], int]:
        """The leaderboard's rows (the same rows as `page`) ordered by how many of the members
        brought in during the period stayed `days` days, then as the leaderboard orders them."""
        if since_ms is None:
            rows = [(m, self.counts(m, None), self.bonus.get(m, 0)) for _, _, m in self.all_time]
        else:
            rows = self._period_rows(since_ms)

        def key(row: Row) -> tuple[int, ...]:
            stayed = self.inviter_retention(row[0], now_ms, since_ms).horizon(days).stayed
            return (-stayed, *rank_key(*row))

        rows.sort(key=key)
        return rows[skip: skip + limit], len(rows)

    def _period_rows(self, since_ms: int) -> list[Row]:
        rows = []
        for member_id, board in self.inviters.items():
            counts = board.counts(since_ms)
            if counts.regular:
                rows.append((member_id, counts, 0))  # a bonus has no date: not in a period
        rows.sort(key=lambda row: rank_key(*row))
        return rows


@dataclass
class _Build:
    invites: GuildInvites
    task: asyncio.Task[None] | None = None


class InviteBoards(GuildBuilds[_Build, GuildInvites]):
    """Every guild's invite figures: built in the background, kept exact by reading back the
    documents each write touched."""

    what = "invite boards"

    def __init__(self, joins: JoinRepository, bonus: InviteBonusRepository,
                 active: Callable[[], bool] = lambda: True, batch: int = READ_BATCH) -> None:
        super().__init__(active)
        self.joins = joins
        self.bonus = bonus
        self.batch = batch
        self._touched_keys: defaultdict[int, set[str]] = defaultdict(set)
        self._touched_members: defaultdict[int, set[int]] = defaultdict(set)
        self._touched_bonus: defaultdict[int, set[int]] = defaultdict(set)
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        joins.watch = self
        bonus.watch = self

    # ---- told by the repositories (JoinWatch / BonusWatch) --------------------------------------
    def keys_written(self, keys: Iterable[str]) -> None:
        for key in keys:
            guild_id = int(key.split(":", 1)[0])
            if self._tracked(guild_id):
                self._touched_keys[guild_id].add(key)

    def member_written(self, guild_id: int, member_id: int) -> None:
        if self._tracked(guild_id):
            self._touched_members[guild_id].add(member_id)

    def bonus_written(self, guild_id: int, member_id: int) -> None:
        if self._tracked(guild_id):
            self._touched_bonus[guild_id].add(member_id)

    def _tracked(self, guild_id: int) -> bool:
        return guild_id in self._ready or guild_id in self._builds

    def _new_build(self, guild_id: int) -> _Build:
        return _Build(GuildInvites(guild_id))

    def _start_over(self, guild_id: int, build: _Build) -> None:
        build.invites = GuildInvites(guild_id)

    async def _build(self, guild_id: int, build: _Build) -> None:
        invites = build.invites
        writer = self.joins.writer
        while writer.draining:  # an erase kept in the outbox is not in MongoDB yet
            await writer.wait_drained()
        async with self._locks[guild_id]:
            # From here on, a write either lands before the scan reads it or is touched and read
            # back below: the touches of before are covered by the scan.
            self._take_touched(guild_id)
            with building("invite boards built"):  # no full collection in the middle of the build
                docs = await self._load(guild_id, invites)
                await invites.rank_deferred()
                await self._read_back(invites, *self._take_touched(guild_id))
        self._done(guild_id, invites)
        log.info("invite boards of guild %s built: %d joins, %d inviters", guild_id, docs,
                 len(invites.inviters))

    async def _load(self, guild_id: int, invites: GuildInvites) -> int:
        """Every join of the guild and every bonus into `invites`; the number of joins read."""
        docs = 0
        invites.deferred = set()
        async for rows in self.joins.scan_figures(guild_id, self.batch):
            for start in range(0, len(rows), CHUNK):
                for doc in rows[start: start + CHUNK]:
                    invites.put(doc["_id"], Figures.of(doc))
                collect_young_if_due("invite boards building")
                await asyncio.sleep(0)
            docs += len(rows)
        for member_id, bonus in (await self.bonus.all(guild_id)).items():
            invites.put_bonus(member_id, bonus)
        return docs

    # ---- keeping exact ----------------------------------------------------------------------------
    def _take_touched(self, guild_id: int) -> tuple[set[str], set[int], set[int]]:
        return (self._touched_keys.pop(guild_id, set()), self._touched_members.pop(guild_id, set()),
                self._touched_bonus.pop(guild_id, set()))

    async def settle(self, guild_id: int) -> None:
        """Read back what writes touched since the last read (before an answer)."""
        async with self._locks[guild_id]:
            invites = self._ready.get(guild_id)
            if invites is not None:
                await self._read_back(invites, *self._take_touched(guild_id))

    async def _read_back(self, invites: GuildInvites, keys: set[str], members: set[int],
                         bonus_members: set[int]) -> None:
        for member_id in members:
            keys |= invites.keys_of.get(member_id, set())
        if keys:
            found = await self.joins.figure_docs(sorted(keys), self.batch)
            for key in keys:
                doc = found.get(key)
                invites.put(key, Figures.of(doc) if doc is not None else None)
        for member_id in bonus_members:
            invites.put_bonus(member_id, await self.bonus.get(invites.guild_id, member_id))

    # ---- reads (only when `ready`) ------------------------------------------------------------
    async def counts(self, guild_id: int, member_id: int,
                     since: datetime | None = None) -> tuple[InviterCounts, int]:
        await self.settle(guild_id)
        invites = self._ready[guild_id]
        since_ms = to_ms(since) if since is not None else None
        return invites.counts(member_id, since_ms), invites.bonus.get(member_id, 0)

    async def page(self, guild_id: int, since: datetime | None, skip: int,
                   limit: int) -> tuple[list[Row], int]:
        await self.settle(guild_id)
        return self._ready[guild_id].page(to_ms(since) if since is not None else None, skip, limit)

    async def guild(self, guild_id: int) -> GuildInvites:
        """The guild's mirror, with every write acknowledged so far read back (retention reads)."""
        await self.settle(guild_id)
        return self._ready[guild_id]
