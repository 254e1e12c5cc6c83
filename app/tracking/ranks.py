"""Ranked boards in memory, per guild: ranks, pages and counts of `/ud` and `/top` without a scan.

MongoDB stays the only store of record; everything here is derived from the `activity` documents
and rebuilt from them (see `docs/data-model.md`, "Ranks in memory"):

- a mirror of each member's all-time document and of their day documents of the last
  `KEEP_DAYS` days: the five counters plus the two guard sequences (`msg_seq`, `voice_seq`);
- per metric of `METRICS`, a board of the all-time values, and per period start day (today, 7 days,
  30 days in the guild's time zone) a board of the sums of the day documents from that day on, built
  on first use from the mirror. A board is a `SortedList` of one int per member with a value > 0,
  ordered by value (highest first) then member id, as the aggregation's `$sort` orders them.

When a count becomes visible: when the tracker's write returned, i.e. MongoDB acknowledged it or
the Writer kept it in the durable outbox (the same moment the tracker forgets it). The trackers
then call `note(credits, op_id, guard)`.

Exact under races, by the guards: a counting write with sequence `s` is applied to a mirrored
document only when `s` is above the document's stored guard sequence for that writer, exactly the
rule MongoDB's guarded update follows. So a write that a rebuild's read already saw is not added
again, whether its note arrives during the rebuild (kept aside and applied at its end) or after it,
and a replay of an intent a previous run applied already changes nothing.

A guild's boards are built in the background (`ensure`, `rebuild`): wait until the outbox is empty
(its writes are noted but not yet in MongoDB), then one pass over the guild's documents in batches,
yielding to the event loop. Until a guild is built, `ready()` is False and the commands fall back
to the aggregations. A rebuild keeps the previous boards answering until the new ones are done.
Only the process holding the lease counts, so on a standby `ready()` is always False.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from sortedcontainers import SortedList

from app.storage.retry import OpId
from app.tracking.builds import GuildBuilds
from app.tracking.voice import COUNTERS
from app.wiring.clock import Clock
from app.wiring.heap import keep_long_lived
from repositories.activity import (
    MESSAGE_GUARD,
    METRICS,
    VOICE_GUARD,
    ActivityRepository,
    Counters,
    Credit,
)

log = logging.getLogger(__name__)
KEEP_DAYS = 32  # day documents mirrored: enough for a 30-day period in any time zone
SCAN_BATCH = 1000
CHUNK = 500  # members per step of an in-memory pass before yielding to the event loop
PERIOD_BOARDS_KEPT = 6  # period start days kept per guild (today, 7 and 30 days, and yesterday's)
SLOT = {name: i for i, name in enumerate(COUNTERS)}
SEQ_SLOT = {MESSAGE_GUARD: len(COUNTERS), VOICE_GUARD: len(COUNTERS) + 1}
WIDTH = len(COUNTERS) + 2
TOP = 1 << 63
SHIFT = 64
MASK = (1 << SHIFT) - 1


def board_key(value: int, member_id: int) -> int:
    """One int ordering (value descending, member ascending) like the aggregation's `$sort`."""
    return ((TOP - value) << SHIFT) | member_id


class Board:
    """Members with a value > 0, ranked."""

    __slots__ = ("sorted", "values")

    def __init__(self) -> None:
        self.sorted: SortedList = SortedList()
        self.values: dict[int, int] = {}

    def set(self, member_id: int, value: int) -> None:
        old = self.values.get(member_id, 0)
        if old == value:
            return
        if old > 0:
            self.sorted.remove(board_key(old, member_id))
        if value > 0:
            self.sorted.add(board_key(value, member_id))
            self.values[member_id] = value
        else:
            self.values.pop(member_id, None)

    def add(self, member_id: int, amount: int) -> None:
        if amount:
            self.set(member_id, self.values.get(member_id, 0) + amount)

    def rank(self, member_id: int) -> int | None:
        """1 + the members strictly ahead; None when the member has nothing."""
        value = self.values.get(member_id, 0)
        return None if value <= 0 else 1 + self.sorted.bisect_left(board_key(value, 0))

    def page(self, skip: int, limit: int) -> list[tuple[int, int]]:
        return [(key & MASK, TOP - (key >> SHIFT)) for key in self.sorted.islice(skip, skip + limit)]

    def __len__(self) -> int:
        return len(self.sorted)


def _record(doc: Mapping[str, Any]) -> list[int]:
    """A mirrored document: the counters, then the message and voice guard sequences."""
    seqs = [doc.get(guard) for guard in (MESSAGE_GUARD, VOICE_GUARD)]
    return [int(doc.get(name) or 0) for name in COUNTERS] + [s if isinstance(s, int) else 0 for s in seqs]


def _apply(record: list[int], amounts: Mapping[str, int], slot: int, seq: int) -> bool:
    """Add `amounts` under sequence `seq` unless the document has it (or a newer one) already."""
    if seq <= record[slot]:
        return False
    for name, value in amounts.items():
        record[SLOT[name]] += value
    record[slot] = seq
    return True


@dataclass
class _PeriodBuild:
    boards: dict[str, Board]
    done: set[int] = field(default_factory=set)


class GuildRanks:
    """One guild's mirror and boards."""

    def __init__(self, guild_id: int, keep_from: str) -> None:
        self.guild_id = guild_id
        self.keep_from = keep_from  # the oldest day mirrored
        self.totals: dict[int, list[int]] = {}
        self.days: dict[int, dict[str, list[int]]] = {}
        self.all_time = {metric: Board() for metric in METRICS}
        self.periods: dict[str, dict[str, Board]] = {}
        self._period_builds: dict[str, _PeriodBuild] = {}
        self._period_tasks: dict[str, asyncio.Task[dict[str, Board]]] = {}
        self._day_names: dict[str, str] = {}  # one string object per day

    # ---- loading --------------------------------------------------------------------------
    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            member = int(doc["member_id"])
            if "day" in doc and doc.get("day") is not None:
                day = self._day_names.setdefault(doc["day"], doc["day"])
                self.days.setdefault(member, {})[day] = _record(doc)
            else:
                self.totals[member] = _record(doc)

    async def rank_all_time(self) -> None:
        for i, (member, record) in enumerate(list(self.totals.items())):
            for metric, name in METRICS.items():
                self.all_time[metric].set(member, record[SLOT[name]])
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)

    # ---- writes ---------------------------------------------------------------------------
    def apply(self, credits: Iterable[Credit], op_id: int, guard: str) -> None:
        """A guarded counting write with sequence `op_id`: each document once, as MongoDB did."""
        slot = SEQ_SLOT[guard]
        totals: dict[int, dict[str, int]] = {}
        days: dict[tuple[int, str], dict[str, int]] = {}
        for c in credits:
            for target in (totals.setdefault(c.member_id, {}), days.setdefault((c.member_id, c.day), {})):
                for name, value in c.amounts.items():
                    if name in SLOT and value:
                        target[name] = target.get(name, 0) + int(value)
        for member, amounts in totals.items():
            record = self.totals.setdefault(member, [0] * WIDTH)
            if amounts and _apply(record, amounts, slot, op_id):
                for metric, name in METRICS.items():
                    self.all_time[metric].set(member, record[SLOT[name]])
        for (member, credited_day), amounts in days.items():
            if not amounts or credited_day < self.keep_from:
                continue
            day = self._day_names.setdefault(credited_day, credited_day)
            record = self.days.setdefault(member, {}).setdefault(day, [0] * WIDTH)
            if _apply(record, amounts, slot, op_id):
                self._add_to_periods(member, day, amounts)

    def _add_to_periods(self, member: int, day: str, amounts: Mapping[str, int]) -> None:
        for since, boards in self.periods.items():
            if day >= since:
                for metric, name in METRICS.items():
                    boards[metric].add(member, amounts.get(name, 0))
        for since, build in self._period_builds.items():
            if day >= since and member in build.done:
                for metric, name in METRICS.items():
                    build.boards[metric].add(member, amounts.get(name, 0))

    def forget_member(self, member_id: int) -> None:
        self.totals.pop(member_id, None)
        self.days.pop(member_id, None)
        building = [b.boards for b in self._period_builds.values()]
        for boards in (self.all_time, *self.periods.values(), *building):
            for board in boards.values():
                board.set(member_id, 0)

    # ---- reads ----------------------------------------------------------------------------
    def counters(self, member_id: int, since: str | None) -> Counters:
        if since is None:
            record = self.totals.get(member_id)
            return Counters(*record[:len(COUNTERS)]) if record else Counters()
        sums = [0] * len(COUNTERS)
        for day, record in self.days.get(member_id, {}).items():
            if day >= since:
                for i in range(len(COUNTERS)):
                    sums[i] += record[i]
        return Counters(*sums)

    def covers(self, since: str | None) -> bool:
        return since is None or since >= self.keep_from

    async def every_member(self, since: str | None) -> list[tuple[int, Counters]]:
        """Every member's counters since `since`, members with only zeros left out."""
        members = list(self.totals if since is None else self.days)
        found: list[tuple[int, Counters]] = []
        for i, member in enumerate(members):
            counters = self.counters(member, since)
            if counters != Counters():
                found.append((member, counters))
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        return found

    async def day_sums(self, since: str, until: str) -> dict[str, Counters]:
        """Per day from `since` to `until` (inclusive): the sum of every member's mirrored day
        document (days without activity absent). One pass over the mirror: every member with a
        mirrored day, each of their days looked at once (at most `KEEP_DAYS`), `CHUNK` members per
        event-loop turn. A write noted during the pass counts if its member was not summed yet."""
        sums: dict[str, list[int]] = {}
        for i, days in enumerate(list(self.days.values())):
            for day, record in days.items():
                if since <= day <= until:
                    total = sums.setdefault(day, [0] * len(COUNTERS))
                    for slot in range(len(COUNTERS)):
                        total[slot] += record[slot]
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        return {day: Counters(*total) for day, total in sums.items()}

    async def active_days(self, since: str, until: str, active: Callable[[int, int], bool]) -> dict[int, int]:
        """Per member, how many of their mirrored days from `since` to `until` (inclusive) `active`
        accepts, given the day's messages and voice seconds (members with none absent). One pass over
        the mirror like `day_sums`: each member's days looked at once (at most `KEEP_DAYS`), `CHUNK`
        members per event-loop turn."""
        found: dict[int, int] = {}
        messages, voice = SLOT["messages"], SLOT["voice_s"]
        for i, (member, days) in enumerate(list(self.days.items())):
            count = sum(1 for day, record in days.items()
                        if since <= day <= until and active(record[messages], record[voice]))
            if count:
                found[member] = count
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        return found

    async def boards(self, since: str | None) -> dict[str, Board]:
        if since is None:
            return self.all_time
        if since in self.periods:
            return self.periods[since]
        task = self._period_tasks.get(since)
        if task is None:
            task = asyncio.create_task(self._build_period(since), name=f"ranks-period-{self.guild_id}")
            self._period_tasks[since] = task
        return await asyncio.shield(task)

    async def _build_period(self, since: str) -> dict[str, Board]:
        """The boards of the days from `since` on, from the mirror, a chunk of members at a time;
        writes noted meanwhile go to the members already summed (the others are summed later)."""
        build = _PeriodBuild({metric: Board() for metric in METRICS})
        self._period_builds[since] = build
        try:
            members = list(self.days)
            while members:
                for i, member in enumerate(members):
                    self._sum_member(build, member, since)
                    if i % CHUNK == CHUNK - 1:
                        await asyncio.sleep(0)
                members = [m for m in self.days if m not in build.done]  # arrived meanwhile
            self.periods[since] = build.boards
            while len(self.periods) > PERIOD_BOARDS_KEPT:
                del self.periods[min(self.periods)]
            return build.boards
        finally:
            del self._period_builds[since]
            self._period_tasks.pop(since, None)

    def _sum_member(self, build: _PeriodBuild, member: int, since: str) -> None:
        sums = dict.fromkeys(METRICS, 0)
        for day, record in self.days.get(member, {}).items():
            if day >= since:
                for metric, name in METRICS.items():
                    sums[metric] += record[SLOT[name]]
        for metric, value in sums.items():
            build.boards[metric].set(member, value)
        build.done.add(member)


@dataclass
class _Build:
    ranks: GuildRanks
    notes: list[tuple[list[Credit], int, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Ranks(GuildBuilds[_Build, GuildRanks]):
    """Every guild's boards: built in the background, kept current by the trackers' notes."""

    what = "ranks"

    def __init__(self, activity: ActivityRepository, clock: Clock,
                 active: Callable[[], bool] = lambda: True, batch: int = SCAN_BATCH) -> None:
        super().__init__(active)
        self.activity = activity
        self.clock = clock
        self.batch = batch

    def _keep_from(self) -> str:
        return (self.clock.now().astimezone(UTC).date() - timedelta(days=KEEP_DAYS - 1)).isoformat()

    def _new_build(self, guild_id: int) -> _Build:
        return _Build(GuildRanks(guild_id, self._keep_from()))

    def _start_over(self, guild_id: int, build: _Build) -> None:
        build.ranks, build.notes = GuildRanks(guild_id, self._keep_from()), []

    async def _build(self, guild_id: int, build: _Build) -> None:
        writer = self.activity.writer
        while writer.draining:  # noted writes kept in the outbox are not in MongoDB yet
            await writer.wait_drained()
        build.notes.clear()  # from here on the read sees, or the notes hold, every write
        ranks = build.ranks
        docs = 0
        async for rows in self.activity.scan(guild_id, ranks.keep_from, self.batch):
            ranks.load(rows)
            docs += len(rows)
        await ranks.rank_all_time()
        for credits, op_id, guard in build.notes:  # notes arriving meanwhile are appended: applied too
            ranks.apply(credits, op_id, guard)
            await asyncio.sleep(0)  # one written unit per event-loop turn (a restart notes thousands)
        self._done(guild_id, ranks)
        keep_long_lived("ranks built")
        log.info("ranks of guild %s built: %d documents, %d members", guild_id, docs, len(ranks.totals))

    # ---- the write path -------------------------------------------------------------------
    def note(self, credits: Iterable[Credit], op_id: OpId, guard: str) -> None:
        """A counting write returned (acknowledged by MongoDB or kept in the outbox)."""
        by_guild: dict[int, list[Credit]] = {}
        for c in credits:
            by_guild.setdefault(c.guild_id, []).append(c)
        for guild_id, guild_credits in by_guild.items():
            if not isinstance(op_id, int):
                # an intent of a version before sequences: nothing to compare; read MongoDB again
                if guild_id in self._ready or guild_id in self._builds:
                    self.rebuild(guild_id)
                continue
            ready = self._ready.get(guild_id)
            if ready is not None:
                ready.apply(guild_credits, op_id, guard)
            build = self._builds.get(guild_id)
            if build is not None:
                build.notes.append((guild_credits, op_id, guard))

    def forget_member(self, guild_id: int, member_id: int) -> None:
        """The member's documents were deleted (an erase): off every board at once."""
        ready = self._ready.get(guild_id)
        if ready is not None:
            ready.forget_member(member_id)

    # ---- reads (only when `ready`) --------------------------------------------------------
    def covers(self, guild_id: int, since: str | None) -> bool:
        return self.ready(guild_id) and self._ready[guild_id].covers(since)

    def counters(self, guild_id: int, member_id: int, since: str | None) -> Counters:
        return self._ready[guild_id].counters(member_id, since)

    async def rank(self, guild_id: int, member_id: int, metric: str, since: str | None) -> int | None:
        return (await self._ready[guild_id].boards(since))[metric].rank(member_id)

    async def every_member(self, guild_id: int, since: str | None) -> list[tuple[int, Counters]]:
        """Every member's counters since `since` (the CSV export), zeros left out."""
        return await self._ready[guild_id].every_member(since)

    async def day_sums(self, guild_id: int, since: str, until: str) -> dict[str, Counters]:
        """The guild's counters per day from `since` to `until` (`/server stats`)."""
        return await self._ready[guild_id].day_sums(since, until)

    async def active_days(self, guild_id: int, since: str, until: str,
                          active: Callable[[int, int], bool]) -> dict[int, int]:
        """Per member, their days from `since` to `until` that `active(messages, voice_s)` accepts
        (activity roles)."""
        return await self._ready[guild_id].active_days(since, until, active)

    async def count(self, guild_id: int, metric: str, since: str | None) -> int:
        return len((await self._ready[guild_id].boards(since))[metric])

    async def page(self, guild_id: int, metric: str, since: str | None, skip: int,
                   limit: int) -> list[tuple[int, int]]:
        return (await self._ready[guild_id].boards(since))[metric].page(skip, limit)
