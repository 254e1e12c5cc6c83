"""Ranked boards in memory, per guild: ranks, pages and counts of `/ud` and `/top` without a scan.

MongoDB stays the only store of record; everything here is derived from the `activity` documents
and rebuilt from them (see `docs/data-model.md`, "Ranks in memory"):

- a mirror of each member's all-time document and of their day documents of the last
  `KEEP_DAYS` days: the five counters plus the two guard sequences (`msg_seq`, `voice_seq`);
- per metric of `METRICS`, a board of the all-time values, and per span of days `[since, until)`
  (until None: no end; today, 7 days, 30 days in the guild's time zone, a season) a board of the
  sums of the day documents of those days, built from the mirror with the ranks (the current
  periods, `spans_of`) or on first use (any other span). A board is a
  `SortedList` of one int per member with a value > 0, ordered by value (highest first) then member
  id, as the aggregation's `$sort` orders them;
- a span reaching before the mirror (a long or past season) also keeps, per member, the sums of its
  day documents older than the mirror (its "base"), read once from MongoDB when the span is first
  asked for (`ActivityRepository.scan_days`); a write noted on such an old day drops the spans
  covering it (their base would not know whether MongoDB applied it: those documents are not
  mirrored, so their guard sequences are not known here), and the next read builds them again.

When a count becomes visible: when the tracker's write returned, i.e. MongoDB acknowledged it or
the Writer kept it in the durable outbox (the same moment the tracker forgets it). The trackers
then call `note(credits, op_id, guard)`.

Exact under races, by the guards: a counting write with sequence `s` is applied to a mirrored
document only when `s` is above the document's stored guard sequence for that writer, exactly the
rule MongoDB's guarded update follows. So a write that a rebuild's read already saw is not added
again, whether its note arrives during the rebuild (kept aside and applied at its end) or after it,
and a replay of an intent a previous run applied already changes nothing.

With the guild's rule for an active day (`rule_of`), the build also reads the day documents of the
`STREAK_DAYS` days before the mirror and keeps, per member, which of those days were active: one int
used as a bit set (`Earlier`). `/ud`'s streak then reads no document. A write to one of those days
(a late one, or a backfill) makes that member's set unknown until the next build; a rule that
changed since the build makes the guild's unknown.

A guild's boards are built in the background (`ensure`, `rebuild`): wait until the outbox is empty
(its writes are noted but not yet in MongoDB), then one pass over the guild's documents in batches,
yielding to the event loop. Until a guild is built, `ready()` is False and the commands fall back
to the aggregations. A rebuild keeps the previous boards answering until the new ones are done.
Only the process holding the lease counts, so on a standby `ready()` is always False.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from typing import Any

from sortedcontainers import SortedList

from app.storage.retry import OpId
from app.tracking.builds import GuildBuilds
from app.tracking.streaks import STREAK_DAYS, ActiveRule
from app.tracking.voice import COUNTERS
from app.wiring.clock import Clock
from app.wiring.heap import building, collect_young_if_due
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
PERIOD_BOARDS_KEPT = 8  # spans within the mirror kept per guild, least recently used dropped first
RANGE_BOARDS_KEPT = 3  # spans reaching before the mirror (seasons), least recently used dropped first
SLOT = {name: i for i, name in enumerate(COUNTERS)}
SEQ_SLOT = {MESSAGE_GUARD: len(COUNTERS), VOICE_GUARD: len(COUNTERS) + 1}
WIDTH = len(COUNTERS) + 2
TOP = 1 << 63
SHIFT = 64
MASK = (1 << SHIFT) - 1


Span = tuple[str, str | None]  # the days from `since` (inclusive) to `until` (exclusive; None: no end)
OldDays = Callable[[str, str], AsyncIterator[list[dict[str, Any]]]]


def in_span(day: str, span: Span) -> bool:
    since, until = span
    return since <= day and (until is None or day < until)


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
class Earlier:
    """Which days before the mirror each member was active on, under `rule`: bit i of a member's
    int is the day `first` + i. Members whose set is not known (`unknown`) are read from MongoDB."""

    first: date
    rule: ActiveRule
    bits: dict[int, int] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            if self.rule.active(Counters.from_document(doc)):
                try:
                    bit = 1 << (date.fromisoformat(doc["day"]) - self.first).days
                except (TypeError, ValueError):
                    self.unknown.add(int(doc["member_id"]))  # the reader logs an unreadable day
                    continue
                member = int(doc["member_id"])
                self.bits[member] = self.bits.get(member, 0) | bit

    def days(self, member_id: int) -> list[date]:
        bits, found = self.bits.get(member_id, 0), []
        while bits:
            low = bits & -bits
            found.append(self.first + timedelta(days=low.bit_length() - 1))
            bits ^= low
        return found


@dataclass
class _PeriodBuild:
    boards: dict[str, Board]
    done: set[int] = field(default_factory=set)
    stale: bool = False  # a span reaching before the mirror: an old day of it was written meanwhile


@dataclass
class _Range:
    """A span reaching before the mirror: per member, the sums (`COUNTERS`) of its days older than
    the mirror, and its boards (those sums plus the member's mirrored days of the span)."""

    base: dict[int, list[int]]
    boards: dict[str, Board]


class GuildRanks:
    """One guild's mirror and boards."""

    def __init__(self, guild_id: int, keep_from: str, old_days: OldDays | None = None) -> None:
        self.guild_id = guild_id
        self.keep_from = keep_from  # the oldest day mirrored
        self.old_days = old_days  # reads the guild's day documents of [since, until) from MongoDB
        self.totals: dict[int, list[int]] = {}
        self.days: dict[int, dict[str, list[int]]] = {}
        self.all_time = {metric: Board() for metric in METRICS}
        self.periods: dict[Span, dict[str, Board]] = {}  # least recently used first
        self._period_builds: dict[Span, _PeriodBuild] = {}
        self._period_tasks: dict[Span, asyncio.Task[dict[str, Board]]] = {}
        self.ranges: dict[Span, _Range] = {}  # least recently used first
        self._range_builds: dict[Span, _PeriodBuild] = {}
        self._range_tasks: dict[Span, asyncio.Task[_Range]] = {}
        self._day_names: dict[str, str] = {}  # one string object per day
        self.earlier: Earlier | None = None  # active days before the mirror (with a rule)

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
            if not amounts:
                continue
            if credited_day < self.keep_from:
                if self.earlier is not None:
                    self.earlier.unknown.add(member)  # its day's counters are not mirrored
                self._old_day_written(credited_day)
                continue
            day = self._day_names.setdefault(credited_day, credited_day)
            record = self.days.setdefault(member, {}).setdefault(day, [0] * WIDTH)
            if _apply(record, amounts, slot, op_id):
                self._add_to_periods(member, day, amounts)

    def _add_to_periods(self, member: int, day: str, amounts: Mapping[str, int]) -> None:
        built = [*self.periods.items(), *((span, r.boards) for span, r in self.ranges.items())]
        for span, boards in built:
            if in_span(day, span):
                for metric, name in METRICS.items():
                    boards[metric].add(member, amounts.get(name, 0))
        for span, build in (*self._period_builds.items(), *self._range_builds.items()):
            if in_span(day, span) and member in build.done:
                for metric, name in METRICS.items():
                    build.boards[metric].add(member, amounts.get(name, 0))

    def _old_day_written(self, day: str) -> None:
        """A write to a day older than the mirror: the spans covering it are read again."""
        for span in [span for span in self.ranges if in_span(day, span)]:
            del self.ranges[span]
            log.info("ranks of guild %s: a write to %s; the board of %s is read again",
                     self.guild_id, day, span)
        for span, build in self._range_builds.items():
            if in_span(day, span):
                build.stale = True

    def forget_member(self, member_id: int) -> None:
        self.totals.pop(member_id, None)
        self.days.pop(member_id, None)
        if self.earlier is not None:
            self.earlier.bits.pop(member_id, None)
        for kept in self.ranges.values():
            kept.base.pop(member_id, None)
        for build in self._range_builds.values():
            build.stale = True  # its read of MongoDB may have seen the member's documents
        building = [b.boards for b in self._period_builds.values()]
        kept_ranges = [r.boards for r in self.ranges.values()]
        for boards in (self.all_time, *self.periods.values(), *kept_ranges, *building):
            for board in boards.values():
                board.set(member_id, 0)

    # ---- reads ----------------------------------------------------------------------------
    def counters(self, member_id: int, since: str | None, until: str | None = None,
                 base: Mapping[int, list[int]] | None = None) -> Counters:
        """The member's counters of `[since, until)` from the mirror (None: all time), plus their
        sums in `base` (a span reaching before the mirror: its days older than the mirror)."""
        if since is None:
            record = self.totals.get(member_id)
            return Counters(*record[:len(COUNTERS)]) if record else Counters()
        sums = list((base or {}).get(member_id) or [0] * len(COUNTERS))
        for day, record in self.days.get(member_id, {}).items():
            if in_span(day, (since, until)):
                for i in range(len(COUNTERS)):
                    sums[i] += record[i]
        return Counters(*sums)

    async def member_counters(self, member_id: int, since: str | None, until: str | None = None) -> Counters:
        """`counters` of any span: one reaching before the mirror is built first (`boards`)."""
        if self.covers(since):
            return self.counters(member_id, since, until)
        kept = await self._range((since, until))
        return self.counters(member_id, since, until, kept.base)

    def covers(self, since: str | None) -> bool:
        """Whether the mirror alone holds the days from `since` on (None: the all-time documents)."""
        return since is None or since >= self.keep_from

    def streak_days(self, member_id: int, first: date, rule: ActiveRule
                    ) -> tuple[dict[str, Counters], list[date]] | None:
        """The member's mirrored days from `first` on, and their active days from `first` to the
        mirror (under `rule`); None when those are not known here."""
        earlier = self.earlier
        if earlier is None or earlier.rule != rule or first < earlier.first or member_id in earlier.unknown:
            return None
        since = first.isoformat()
        mirrored = {day: Counters(*record[:len(COUNTERS)])
                    for day, record in self.days.get(member_id, {}).items() if day >= since}
        return mirrored, [d for d in earlier.days(member_id) if d >= first]

    async def every_member(self, since: str | None, until: str | None = None) -> list[tuple[int, Counters]]:
        """Every member's counters of `[since, until)`, members with only zeros left out."""
        base: Mapping[int, list[int]] = {}
        if not self.covers(since):
            base = (await self._range((since, until))).base
        members = list(self.totals) if since is None else list(dict.fromkeys([*base, *self.days]))
        found: list[tuple[int, Counters]] = []
        for i, member in enumerate(members):
            counters = self.counters(member, since, until, base)
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
        for i, member in enumerate(list(self.days)):
            count = self.member_active_days(member, since, until, active)
            if count:
                found[member] = count
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        return found

    def member_active_days(self, member_id: int, since: str, until: str,
                           active: Callable[[int, int], bool]) -> int:
        messages, voice = SLOT["messages"], SLOT["voice_s"]
        return sum(1 for day, record in self.days.get(member_id, {}).items()
                   if since <= day <= until and active(record[messages], record[voice]))

    async def boards(self, since: str | None, until: str | None = None) -> dict[str, Board]:
        """The boards of `[since, until)` (since None: all time), built on first use (the build
        makes the current periods')."""
        if since is None:
            return self.all_time
        span = (since, until)
        if not self.covers(since):
            return (await self._range(span)).boards
        if span in self.periods:
            self.periods[span] = self.periods.pop(span)  # the most recently used now
            return self.periods[span]
        task = self._period_tasks.get(span)
        if task is None:
            task = asyncio.create_task(self._build_period(span), name=f"ranks-period-{self.guild_id}")
            self._period_tasks[span] = task
        return await asyncio.shield(task)

    async def _build_period(self, span: Span) -> dict[str, Board]:
        """The boards of the days of `span`, from the mirror, a chunk of members at a time; writes
        noted meanwhile go to the members already summed (the others are summed later)."""
        build = _PeriodBuild({metric: Board() for metric in METRICS})
        self._period_builds[span] = build
        try:
            await self._sum_members(build, span, {})
            self.periods[span] = build.boards
            while len(self.periods) > PERIOD_BOARDS_KEPT:
                del self.periods[next(iter(self.periods))]
            return build.boards
        finally:
            del self._period_builds[span]
            self._period_tasks.pop(span, None)

    async def _sum_members(self, build: _PeriodBuild, span: Span, base: Mapping[int, list[int]]) -> None:
        members = list(dict.fromkeys([*base, *self.days]))
        while members:
            for i, member in enumerate(members):
                self._sum_member(build, member, span, base)
                if i % CHUNK == CHUNK - 1:
                    await asyncio.sleep(0)
            members = [m for m in self.days if m not in build.done]  # arrived meanwhile

    def _sum_member(self, build: _PeriodBuild, member: int, span: Span,
                    base: Mapping[int, list[int]]) -> None:
        counters = self.counters(member, span[0], span[1], base)
        for metric, name in METRICS.items():
            build.boards[metric].set(member, getattr(counters, name))
        build.done.add(member)

    async def _range(self, span: Span) -> _Range:
        """A span reaching before the mirror: kept, or built (one build at a time per span)."""
        if span in self.ranges:
            self.ranges[span] = self.ranges.pop(span)  # the most recently used now
            return self.ranges[span]
        task = self._range_tasks.get(span)
        if task is None:
            task = asyncio.create_task(self._build_range(span), name=f"ranks-range-{self.guild_id}")
            self._range_tasks[span] = task
        return await asyncio.shield(task)

    async def _read_base(self, since: str, until: str) -> dict[int, list[int]]:
        """Per member, the sums of the guild's day documents of `[since, until)`, from MongoDB."""
        assert self.old_days is not None, "no reader of the days older than the mirror"
        base: dict[int, list[int]] = {}

        def add(rows: list[dict[str, Any]]) -> None:
            for doc in rows:
                sums = base.setdefault(int(doc["member_id"]), [0] * len(COUNTERS))
                for i, name in enumerate(COUNTERS):
                    sums[i] += int(doc.get(name) or 0)

        with building("season built"):  # no full collection in the middle of the read
            await _load_frozen(self.old_days(since, until), add, "season building")
        return base

    async def _build_range(self, span: Span) -> _Range:
        """The base (sums of the span's days older than the mirror, read from MongoDB once), then
        the boards as `_build_period` makes them, each member's base added. Started over when a
        day older than the mirror is written meanwhile (or a member is erased)."""
        since, until = span
        old_until = self.keep_from if until is None else min(until, self.keep_from)
        try:
            while True:
                build = _PeriodBuild({metric: Board() for metric in METRICS})
                self._range_builds[span] = build
                base = await self._read_base(since, old_until)
                if not build.stale:
                    await self._sum_members(build, span, base)
                if build.stale:
                    continue
                kept = _Range(base, build.boards)
                self.ranges[span] = kept
                while len(self.ranges) > RANGE_BOARDS_KEPT:
                    del self.ranges[next(iter(self.ranges))]
                return kept
        finally:
            self._range_builds.pop(span, None)
            self._range_tasks.pop(span, None)


async def _load_frozen(batches: AsyncIterator[list[dict[str, Any]]],
                       load: Callable[[list[dict[str, Any]]], None], reason: str) -> int:
    """Every batch into `load`, yielding to the event loop after each; the young generations are
    collected and what was loaded frozen when they hold enough (`app/wiring/heap.py`). The number
    of documents read."""
    docs = 0
    async for rows in batches:
        load(rows)
        docs += len(rows)
        collect_young_if_due(reason)
        await asyncio.sleep(0)
    return docs


@dataclass
class _Build:
    ranks: GuildRanks
    notes: list[tuple[list[Credit], int, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Ranks(GuildBuilds[_Build, GuildRanks]):
    """Every guild's boards: built in the background, kept current by the trackers' notes."""

    what = "ranks"

    def __init__(self, activity: ActivityRepository, clock: Clock,
                 active: Callable[[], bool] = lambda: True, batch: int = SCAN_BATCH,
                 rule_of: Callable[[int], Awaitable[ActiveRule]] | None = None,
                 spans_of: Callable[[int], Awaitable[list[Span]]] | None = None) -> None:
        super().__init__(active)
        self.activity = activity
        self.clock = clock
        self.batch = batch
        self.rule_of = rule_of  # the guild's rule for an active day (None: no active days kept)
        self.spans_of = spans_of  # the guild's current periods: their boards are made with the build
        self.watchers: list[Callable[[int, set[int]], None]] = []

    def watch(self, changed: Callable[[int, set[int]], None]) -> None:
        """Call `changed(guild_id, member_ids)` when a noted write changed members' counters in a
        ready guild (the activity roles follow counts; called in the write path: keep it quick)."""
        self.watchers.append(changed)

    def _keep_from(self) -> str:
        return (self.clock.now().astimezone(UTC).date() - timedelta(days=KEEP_DAYS - 1)).isoformat()

    def _new_build(self, guild_id: int) -> _Build:
        return _Build(GuildRanks(guild_id, self._keep_from(), self._old_days(guild_id)))

    def _start_over(self, guild_id: int, build: _Build) -> None:
        build.ranks, build.notes = GuildRanks(guild_id, self._keep_from(), self._old_days(guild_id)), []

    def _old_days(self, guild_id: int) -> OldDays:
        """The reader of a guild's day documents older than the mirror (a season's base)."""

        async def read(since: str, until: str) -> AsyncIterator[list[dict[str, Any]]]:
            writer = self.activity.writer
            while writer.draining:  # noted writes kept in the outbox are not in MongoDB yet
                await writer.wait_drained()
            async for rows in self.activity.scan_days(guild_id, since, until, self.batch):
                yield rows

        return read

    async def _build(self, guild_id: int, build: _Build) -> None:
        writer = self.activity.writer
        while writer.draining:  # noted writes kept in the outbox are not in MongoDB yet
            await writer.wait_drained()
        build.notes.clear()  # from here on the read sees, or the notes hold, every write
        ranks = build.ranks
        with building("ranks built"):  # no full collection in the middle of the build
            docs = await self._load(guild_id, ranks)
            if self.rule_of is not None:
                rule = await self.rule_of(guild_id)
                ranks.earlier = await self._load_earlier(guild_id, ranks.keep_from, rule)
            await ranks.rank_all_time()
            # the first `/ud` or `/top` of a current period does not wait for its boards
            for since, until in await self.spans_of(guild_id) if self.spans_of is not None else []:
                await ranks.boards(since, until)
            for credits, op_id, guard in build.notes:  # notes arriving meanwhile are appended: applied too
                ranks.apply(credits, op_id, guard)
                await asyncio.sleep(0)  # one written unit per event-loop turn (a restart notes thousands)
        self._done(guild_id, ranks)
        log.info("ranks of guild %s built: %d documents, %d members", guild_id, docs, len(ranks.totals))

    async def _load(self, guild_id: int, ranks: GuildRanks) -> int:
        """The guild's documents into the mirror; the number read."""
        return await _load_frozen(self.activity.scan(guild_id, ranks.keep_from, self.batch), ranks.load,
                                  "ranks building")

    async def _load_earlier(self, guild_id: int, keep_from: str, rule: ActiveRule) -> Earlier:
        """The active days of the `STREAK_DAYS` days (and one more, for time zones) before the mirror."""
        earlier = Earlier(date.fromisoformat(keep_from) - timedelta(days=STREAK_DAYS + 1), rule)
        days = self.activity.scan_days(guild_id, earlier.first.isoformat(), keep_from, self.batch)
        await _load_frozen(days, earlier.load, "ranks building")
        return earlier

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
                if self.watchers:
                    members = {c.member_id for c in guild_credits}
                    for changed in self.watchers:
                        changed(guild_id, members)
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

    def counters(self, guild_id: int, member_id: int, since: str | None,
                 until: str | None = None) -> Counters:
        """A member's counters of `[since, until)`, when `covers(guild_id, since)`."""
        return self._ready[guild_id].counters(member_id, since, until)

    def streak_days(self, guild_id: int, member_id: int, first: date, rule: ActiveRule
                    ) -> tuple[dict[str, Counters], list[date]] | None:
        """`/ud`'s streak from memory: see `GuildRanks.streak_days` (None: read MongoDB)."""
        if not self.ready(guild_id):
            return None
        return self._ready[guild_id].streak_days(member_id, first, rule)

    async def member_counters(self, guild_id: int, member_id: int, since: str | None,
                              until: str | None = None) -> Counters:
        """A member's counters of any span `[since, until)` (one reaching before the mirror is
        built first, see `GuildRanks.boards`)."""
        return await self._ready[guild_id].member_counters(member_id, since, until)

    async def rank(self, guild_id: int, member_id: int, metric: str, since: str | None,
                   until: str | None = None) -> int | None:
        return (await self._ready[guild_id].boards(since, until))[metric].rank(member_id)

    async def every_member(self, guild_id: int, since: str | None,
                           until: str | None = None) -> list[tuple[int, Counters]]:
        """Every member's counters of `[since, until)` (the CSV export, a season's roles), zeros
        left out."""
        return await self._ready[guild_id].every_member(since, until)

    async def day_sums(self, guild_id: int, since: str, until: str) -> dict[str, Counters]:
        """The guild's counters per day from `since` to `until` (`/server stats`)."""
        return await self._ready[guild_id].day_sums(since, until)

    async def active_days(self, guild_id: int, since: str, until: str,
                          active: Callable[[int, int], bool]) -> dict[int, int]:
        """Per member, their days from `since` to `until` that `active(messages, voice_s)` accepts
        (activity roles)."""
        return await self._ready[guild_id].active_days(since, until, active)

    def member_active_days(self, guild_id: int, member_id: int, since: str, until: str,
                           active: Callable[[int, int], bool]) -> int:
        """`active_days` of one member."""
        return self._ready[guild_id].member_active_days(member_id, since, until, active)

    async def count(self, guild_id: int, metric: str, since: str | None, until: str | None = None) -> int:
        return len((await self._ready[guild_id].boards(since, until))[metric])

    async def page(self, guild_id: int, metric: str, since: str | None, skip: int,
                   limit: int, until: str | None = None) -> list[tuple[int, int]]:
        return (await self._ready[guild_id].boards(since, until))[metric].page(skip, limit)
