"""The in-memory ranks against a from-scratch aggregation, after random traffic written by the real
trackers, across a rebuild from MongoDB (a restart), an erase and a restore; the periods, and spans
of days like seasons (current and past ones, some starting before the 32 days mirrored)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.operations.backups import BackupService, NoProgress
from app.tracking import ranks as ranks_module
from app.tracking.message_counter import MessageCounter
from app.tracking.ranks import Ranks
from app.tracking.streaks import ActiveRule
from app.tracking.voice import LiveVoice, VoiceFlags, day_of, period_start_day, zone
from app.tracking.voice_tracker import VoiceTracker
from app.wiring.clock import ManualClock, to_ms
from repositories.activity import MESSAGE_GUARD, METRICS, VOICE_GUARD, ActivityRepository, Credit
from repositories.guild_settings import GuildSettingsRepository
from repositories.voice_sessions import VoiceSessionRepository

GUILDS = (7, 8)
MEMBERS = range(1, 41)
PERIODS = ("all", "today", "7d", "30d")
# Seasons as spans of days [since, until): past ones and a current (open) one, fixed days of the
# traffic (which starts on 2026-03-01); more relative to the oldest day mirrored in `season_spans`.
SEASONS = (("2026-03-01", "2026-03-04"), ("2026-03-04", "2026-03-20"), ("2026-03-20", None))


class Bot:
    """The trackers wired to the ranks as `cogs/activity.py` wires them."""

    def __init__(self, db: Any, policy: Any, clock: ManualClock, batch: int = 7) -> None:
        self.activity = ActivityRepository(db, policy)
        self.ranks = Ranks(self.activity, clock, batch=batch, spans_of=self.current_spans)
        self.voice = VoiceTracker(
            self.activity, VoiceSessionRepository(db, policy), GuildSettingsRepository(db, policy), clock,
            600, on_credited=lambda c, op: self.ranks.note(c, op, VOICE_GUARD))
        self.messages = MessageCounter(self.activity.add_messages,
                                       on_written=lambda c, op: self.ranks.note(c, op, MESSAGE_GUARD))
        self.clock = clock

    async def current_spans(self, guild_id: int) -> list[tuple[str, None]]:
        """As the bot: the boards of today, 7 and 30 days are made with the build (writes noted
        while they are made are applied after them)."""
        now = self.clock.now()
        return [(period_start_day(p, now, zone("UTC")) or "", None) for p in ("today", "7d", "30d")]


async def traffic(bot: Bot, rng: random.Random, steps: int) -> None:
    """Messages, voice moves, flushes and clock jumps (hours to days) in random order."""
    for _ in range(steps):
        roll = rng.random()
        guild, member = rng.choice(GUILDS), rng.choice(MEMBERS)
        if roll < 0.5:
            for _ in range(rng.randint(1, 3)):
                bot.messages.add(guild, member, day_of(to_ms(bot.clock.now()), zone("UTC")))
        elif roll < 0.75:
            live = None if rng.random() < 0.3 else LiveVoice(20, VoiceFlags(camera=rng.random() < 0.5))
            await bot.voice.update(guild, member, live)
        elif roll < 0.85:
            await bot.voice.flush()
        else:
            bot.clock.advance(rng.choice([60, 3600, 5 * 3600, 26 * 3600]))
        await asyncio.sleep(0)
    await bot.messages.wait_idle()
    await bot.voice.flush()


async def assert_exact(bot: Bot, guild: int) -> None:
    """Every board and count, and the ranks and counters of some members, equal the aggregation."""
    assert bot.ranks.ready(guild)
    repo, ranks = bot.activity, bot.ranks
    some = random.Random(guild).sample(list(MEMBERS), 5)
    for period in PERIODS:
        since = period_start_day(period, bot.clock.now(), zone("UTC"))
        for metric in METRICS:
            want = await repo.leaderboard(guild, metric, since, 0, 10_000)
            assert await ranks.page(guild, metric, since, 0, 10_000) == want, (period, metric)
            assert await ranks.count(guild, metric, since) == len(want)
            assert await ranks.page(guild, metric, since, 3, 5) == want[3:8]
            for member in (*some, 999):
                assert await ranks.rank(guild, member, metric, since) == await repo.rank(
                    guild, member, metric, since), (period, metric, member)
        for member in some:
            assert ranks.counters(guild, member, since) == await repo.member_counters(guild, member, since)
    await assert_active_days_exact(bot, guild)
    await assert_seasons_exact(bot, guild)


async def assert_active_days_exact(bot: Bot, guild: int) -> None:
    """The active days of the last 7 and 30 days (activity roles) are the day documents' days the
    streaks' rule counts as active, for every member."""
    today = bot.clock.now().date().isoformat()
    for rule in (ActiveRule(), ActiveRule(2, 600), ActiveRule(0, 0)):
        for days in (7, 30):
            since = period_start_day(f"{days}d", bot.clock.now(), zone("UTC"))
            assert since is not None
            want = {}
            for member in MEMBERS:
                daily = await bot.activity.daily(guild, member, since)
                count = sum(1 for day, c in daily.items() if day <= today and rule.active(c))
                if count:
                    want[member] = count
            assert await bot.ranks.active_days(guild, since, today, rule.active_counts) == want, (rule, days)


def season_spans(bot: Bot, guild: int) -> list[tuple[str, str | None]]:
    """`SEASONS`, and seasons starting before the days mirrored (`keep_from`): one ending inside the
    mirror, one ending before it, a current one."""
    keep = date.fromisoformat(bot.ranks._ready[guild].keep_from)

    def day(offset: int) -> str:
        return (keep + timedelta(days=offset)).isoformat()

    return [*SEASONS, (day(-9), day(3)), (day(-12), day(-2)), (day(-4), None)]


async def assert_seasons_exact(bot: Bot, guild: int) -> None:
    """Every season's board, count, ranks and counters equal the aggregation over its days."""
    repo, ranks = bot.activity, bot.ranks
    some = random.Random(guild).sample(list(MEMBERS), 5)
    for since, until in season_spans(bot, guild):
        for metric in METRICS:
            want = await repo.leaderboard(guild, metric, since, 0, 10_000, until)
            assert await ranks.page(guild, metric, since, 0, 10_000, until) == want, (since, until, metric)
            assert await ranks.count(guild, metric, since, until) == len(want)
            for member in (*some, 999):
                assert await ranks.rank(guild, member, metric, since, until) == await repo.rank(
                    guild, member, metric, since, until), (since, until, metric, member)
        for member in some:
            assert await ranks.member_counters(guild, member, since, until) == await repo.member_counters(
                guild, member, since, until), (since, until, member)
        for member, counters in await ranks.every_member(guild, since, until):
            assert counters == await repo.member_counters(guild, member, since, until)


async def start(bot: Bot, ranks: bool = True) -> None:
    """As on guild_available: the ranks start building, the voice sessions are reconciled."""
    for guild in GUILDS:
        if ranks:
            bot.ranks.ensure(guild)
        await bot.voice.reconcile(guild, {})


@pytest.mark.parametrize("seed", [1, 2])
async def test_ranks_equal_the_aggregation_after_random_traffic_restart_erase_restore(
        db, policy, tmp_path, monkeypatch, seed: int) -> None:
    monkeypatch.setattr(ranks_module, "CHUNK", 3)  # period boards built in many steps
    rng = random.Random(seed)
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock)
    await start(bot, ranks=False)
    await traffic(bot, rng, 150)  # history before the boards exist
    for guild in GUILDS:
        bot.ranks.ensure(guild)
    await traffic(bot, rng, 250)  # the builds run meanwhile (batches of 7 documents)
    for guild in GUILDS:
        await bot.ranks.wait_ready(guild)
        await assert_exact(bot, guild)
    await traffic(bot, rng, 200)  # period boards exist now and are kept current
    for guild in GUILDS:
        await assert_exact(bot, guild)

    # a restart: new process, boards read from MongoDB, traffic while they build; some weeks later,
    # so that the mirror starts after the first seasons
    clock.advance(21 * 86400)
    bot = Bot(db, policy, clock)
    await start(bot)
    await traffic(bot, rng, 150)
    for guild in GUILDS:
        await bot.ranks.wait_ready(guild)
        await assert_exact(bot, guild)

    # an erase, as /data erase does it
    backups = BackupService(db, tmp_path / "backups", policy)
    victim = max(MEMBERS, key=lambda m: (bot.ranks._ready[7].totals.get(m) or [0])[0])
    await bot.messages.wait_idle()
    async with bot.voice.forgetting(7, victim):
        await bot.activity.erase_member(7, victim)
    bot.ranks.forget_member(7, victim)
    await assert_exact(bot, 7)  # at once, before the rebuild
    bot.ranks.rebuild(7)
    await traffic(bot, rng, 100)
    await bot.ranks.wait_ready(7)
    await assert_exact(bot, 7)

    # a restore of a guild backup over newer counts, then a rebuild
    backup = await backups.create(now=clock.now(), guild_id=8, progress=NoProgress())
    await traffic(bot, rng, 150)
    await bot.voice.flush()
    await backups.restore(backup.path, drop_first=True, progress=NoProgress())
    bot.ranks.rebuild(8)
    await bot.ranks.wait_ready(8)
    await assert_exact(bot, 8)


async def test_a_write_the_build_already_read_is_not_counted_again(db, policy) -> None:
    """The note of a write can arrive after a build read its result (the write returned late, or an
    intent of a previous run is replayed): the guard sequence decides, as in MongoDB."""
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock)
    credits = [Credit(7, 1, "2026-03-01", {"messages": 5})]
    await bot.activity.add_messages(credits, 1000)
    bot.ranks.ensure(7)
    await bot.ranks.wait_ready(7)
    bot.ranks.note(credits, 1000, MESSAGE_GUARD)  # late note of the write the build read
    await bot.activity.add_messages(credits, 999)  # an older write: MongoDB refuses it
    bot.ranks.note(credits, 999, MESSAGE_GUARD)
    await assert_exact(bot, 7)
    assert await bot.ranks.page(7, "messages", None, 0, 10) == [(1, 5)]
    await bot.activity.add_messages(credits, 1001)
    bot.ranks.note(credits, 1001, MESSAGE_GUARD)
    await assert_exact(bot, 7)
    assert await bot.ranks.page(7, "messages", "2026-03-01", 0, 10) == [(1, 10)]


async def test_the_current_periods_boards_are_made_with_the_build(db, policy, monkeypatch) -> None:
    """The first `/ud` or `/top` of today, 7 or 30 days after a start answers from boards the build
    made: no board is made on first use."""
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock)
    await bot.activity.add_messages([Credit(7, 1, "2026-03-01", {"messages": 5})], 1)
    bot.ranks.ensure(7)
    await bot.ranks.wait_ready(7)
    made_on_use: list[Any] = []
    monkeypatch.setattr(ranks_module.GuildRanks, "_build_period",
                        lambda self, span: made_on_use.append(span))
    for period in ("today", "7d", "30d"):
        since = period_start_day(period, clock.now(), zone("UTC"))
        assert await bot.ranks.page(7, "messages", since, 0, 10) == [(1, 5)]
    assert made_on_use == []


async def test_a_guild_is_not_ready_until_built_nor_on_a_standby(db, policy) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    active = True
    activity = ActivityRepository(db, policy)
    ranks = Ranks(activity, clock, active=lambda: active)
    assert not ranks.ready(7)
    ranks.ensure(7)
    assert not ranks.ready(7)
    await ranks.wait_ready(7)
    assert ranks.ready(7) and ranks.covers(7, "2026-02-01") and not ranks.covers(7, "2026-01-01")
    active = False
    assert not ranks.ready(7)


async def test_a_write_to_a_day_older_than_the_mirror_reaches_the_seasons_covering_it(db, policy) -> None:
    """Day documents older than the mirror are summed once into a season's base; a write noted on
    such a day (a late voice credit, an intent replayed) makes the seasons covering it read again,
    also when it arrives while one is being read."""
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock)
    old = [Credit(7, 1, "2026-01-10", {"messages": 5}), Credit(7, 2, "2026-01-11", {"messages": 4})]
    await bot.activity.add_messages(old, 1000)
    bot.ranks.ensure(7)
    await bot.ranks.wait_ready(7)
    season, other = ("2026-01-01", None), ("2026-01-11", "2026-02-01")
    assert await bot.ranks.page(7, "messages", season[0], 0, 10) == [(1, 5), (2, 4)]
    assert await bot.ranks.page(7, "messages", other[0], 0, 10, other[1]) == [(2, 4)]

    late = [Credit(7, 2, "2026-01-10", {"messages": 3})]
    await bot.activity.add_messages(late, 1001)
    bot.ranks.note(late, 1001, MESSAGE_GUARD)
    assert await bot.ranks.page(7, "messages", season[0], 0, 10) == [(2, 7), (1, 5)]
    assert await bot.ranks.page(7, "messages", other[0], 0, 10, other[1]) == [(2, 4)]  # not its day

    # a write noted while the season is being read from MongoDB: the read starts over and sees it
    ready = bot.ranks._ready[7]
    ready.ranges.clear()
    reader, paused, go_on = ready.old_days, asyncio.Event(), asyncio.Event()

    async def slow_reader(since: str, until: str) -> Any:
        async for rows in reader(since, until):
            yield rows
        if not go_on.is_set():
            paused.set()
            await go_on.wait()

    ready.old_days = slow_reader
    reading = asyncio.ensure_future(bot.ranks.page(7, "messages", season[0], 0, 10))
    await paused.wait()
    again = [Credit(7, 1, "2026-01-12", {"messages": 10})]
    await bot.activity.add_messages(again, 1002)
    bot.ranks.note(again, 1002, MESSAGE_GUARD)
    go_on.set()
    assert await reading == [(1, 15), (2, 7)]
    for since, until in (season, other):
        for metric in METRICS:
            assert await bot.ranks.page(7, metric, since, 0, 10, until) == await bot.activity.leaderboard(
                7, metric, since, 0, 10, until)


async def test_active_days_yield_to_the_event_loop_every_chunk_of_members(monkeypatch) -> None:
    monkeypatch.setattr(ranks_module, "CHUNK", 10)
    guild = ranks_module.GuildRanks(7, "2026-02-01")
    guild.load({"member_id": m, "day": day, "messages": m % 3}
               for m in range(1, 101) for day in ("2026-02-27", "2026-03-01"))
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    found = await guild.active_days("2026-02-28", "2026-03-01", ActiveRule().active_counts)
    counter.cancel()
    assert found == {m: 1 for m in range(1, 101) if m % 3}  # the day before `since` is not counted
    assert turns >= 10  # the other task ran between chunks of 10 members
