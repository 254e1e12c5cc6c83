"""The channel table in memory against a from-scratch aggregation of the channel-day documents,
after random traffic written by the real group commit (with lost replies: the same batch sent
again) and backfill pages (replayed, and older ones MongoDB refuses), across a build that runs during
the traffic, a rebuild from MongoDB (a restart) and a guild restore."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.operations.backups import BackupService, NoProgress
from app.storage.retry import OpSequence
from app.tracking.channel_stats import ChannelStats
from app.tracking.message_counter import MessageCounter
from app.wiring.clock import ManualClock
from repositories.activity import (
    CHANNEL_DAY,
    FILL_GUARD,
    MESSAGE_GUARD,
    ActivityRepository,
    ChannelCount,
    Credit,
    FillRange,
)

GUILDS = (7, 8)
CHANNELS = (10, 11, 12, 13, 2**62 + 1)
MEMBERS = range(1, 9)


class Bot:
    """The group commit and a backfill writer wired to the channel table as `cogs/activity.py` does."""

    def __init__(self, db: Any, policy: Any, clock: ManualClock, seq: OpSequence, rng: random.Random) -> None:
        self.activity = ActivityRepository(db, policy)
        self.stats = ChannelStats(self.activity, clock, batch=3)
        self.clock, self.seq, self.rng = clock, seq, rng
        self.pages: list[tuple[list[Credit], int, FillRange, list[ChannelCount]]] = []
        self.messages = MessageCounter(
            self.lossy_write, retry_delay=0.001, next_seq=seq.next,
            on_channels_written=lambda c, op: self.stats.note(c, op, MESSAGE_GUARD))

    async def lossy_write(self, credits: Iterable[Credit], op_id: int, *, channels: Any = ()) -> None:
        """Sometimes the reply is lost after MongoDB applied the batch: it is sent again."""
        await self.activity.add_messages(list(credits), op_id, list(channels))
        if self.rng.random() < 0.2:
            raise ConnectionError("reply lost")

    def today(self) -> str:
        return self.clock.now().astimezone(UTC).date().isoformat()

    async def page(self, guild: int) -> None:
        """A backfill page (guard `fill_seq`) of days back to 40 ago, noted once written."""
        channel, op_id = self.rng.choice(CHANNELS), self.seq.next()
        counts = [ChannelCount(guild, channel, (self.clock.now() - timedelta(days=back)).date().isoformat(),
                               self.rng.randint(1, 30)) for back in self.rng.sample(range(40), 3)]
        credits = [Credit(guild, self.rng.choice(MEMBERS), c.day, {"messages": c.messages}) for c in counts]
        fill = FillRange(f"f:{guild}:{channel}:0:{op_id}", guild, channel, 0)
        await self.activity.add_backfill(credits, op_id, fill, None, counts)
        self.stats.note(counts, op_id, FILL_GUARD)
        self.pages.append((credits, op_id, fill, counts))

    async def replay(self) -> None:
        """A page written again (an outbox replay) or an older one arriving late: MongoDB refuses
        both (the guard holds it or a newer one), and the note must change nothing either."""
        credits, op_id, fill, counts = self.rng.choice(self.pages)
        await self.activity.add_backfill(credits, op_id, fill, None, counts)
        self.stats.note(counts, op_id, FILL_GUARD)


async def traffic(bot: Bot, steps: int) -> None:
    rng = bot.rng
    for _ in range(steps):
        roll, guild = rng.random(), rng.choice(GUILDS)
        if roll < 0.6:
            for _ in range(rng.randint(1, 4)):
                bot.messages.add(guild, rng.choice(MEMBERS), bot.today(), channel_id=rng.choice(CHANNELS))
        elif roll < 0.75:
            await bot.page(guild)
        elif roll < 0.85 and bot.pages:
            await bot.replay()
        else:
            bot.clock.advance(rng.choice([3600, 9 * 3600, 26 * 3600]))
        await asyncio.sleep(0)
    await bot.messages.wait_idle()


async def from_scratch(bot: Bot, guild: int, since: str, until: str) -> dict[int, int]:
    found: Counter[int] = Counter()
    async for doc in bot.activity.collection.find({"guild_id": guild, "kind": CHANNEL_DAY}):
        if since <= doc["day"] <= until:
            found[doc["channel_id"]] += doc["messages"]
    return {c: n for c, n in found.items() if n}


async def assert_exact(bot: Bot, guild: int) -> None:
    today = bot.clock.now().astimezone(UTC).date()
    for back in (0, 6, 29):
        since, until = (today - timedelta(days=back)).isoformat(), today.isoformat()
        assert bot.stats.covers(guild, since)
        want = await from_scratch(bot, guild, since, until)
        assert await bot.activity.channel_totals(guild, since, until) == want
        assert bot.stats.totals(guild, since, until) == want, (guild, back)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_channel_table_equals_the_aggregation_after_random_traffic_retries_and_a_rebuild(
        db, policy, tmp_path, seed: int) -> None:
    rng, seq = random.Random(seed), OpSequence(1)
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock, seq, rng)
    await traffic(bot, 120)  # history before the table exists
    for guild in GUILDS:
        bot.stats.ensure(guild)
    await traffic(bot, 200)  # the builds run meanwhile (batches of 3 documents)
    for guild in GUILDS:
        await bot.stats.wait_ready(guild)
        await assert_exact(bot, guild)
    await traffic(bot, 150)
    for guild in GUILDS:
        await assert_exact(bot, guild)

    restarted = Bot(db, policy, clock, seq, rng)  # a new process: the table read from MongoDB
    restarted.pages = bot.pages
    for guild in GUILDS:
        restarted.stats.ensure(guild)
    await traffic(restarted, 150)
    for guild in GUILDS:
        await restarted.stats.wait_ready(guild)
        await assert_exact(restarted, guild)
    assert restarted.messages.writes > 0 and len(restarted.pages) > 0

    # a guild backup holds the channel-day documents: restored over newer counts, then read again
    backup = await BackupService(db, tmp_path / "backups", policy).create(now=clock.now(), guild_id=8,
                                                                         progress=NoProgress())
    before = await from_scratch(restarted, 8, "2000-01-01", "2999-12-31")
    await traffic(restarted, 100)
    await BackupService(db, tmp_path / "backups", policy).restore(backup.path, drop_first=True,
                                                                  progress=NoProgress())
    assert await from_scratch(restarted, 8, "2000-01-01", "2999-12-31") == before
    restarted.stats.rebuild(8)
    await restarted.stats.wait_ready(8)
    await assert_exact(restarted, 8)


async def test_a_write_the_build_already_read_is_not_counted_again(db, policy) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    activity = ActivityRepository(db, policy)
    stats = ChannelStats(activity, clock)
    counts = [ChannelCount(7, 10, "2026-03-01", 5)]
    credits = [Credit(7, 1, "2026-03-01", {"messages": 5})]
    await activity.add_messages(credits, 1000, counts)
    stats.ensure(7)
    await stats.wait_ready(7)
    stats.note(counts, 1000, MESSAGE_GUARD)  # the late note of a write the build read
    stats.note(counts, 999, MESSAGE_GUARD)  # an older write (MongoDB refused it)
    assert stats.totals(7, "2026-03-01", "2026-03-01") == {10: 5}
    stats.note(counts, 999, FILL_GUARD)  # the backfill's guard is another one
    stats.note(counts, 1001, MESSAGE_GUARD)
    assert stats.totals(7, "2026-03-01", "2026-03-01") == {10: 15}
    assert stats.totals(7, "2026-03-02", "2026-03-31") == {}


async def test_a_guild_is_not_covered_until_built_nor_on_a_standby_nor_before_the_kept_days(
        db, policy) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    active = True
    stats = ChannelStats(ActivityRepository(db, policy), clock, active=lambda: active)
    assert not stats.covers(7, "2026-02-28")
    stats.ensure(7)
    await stats.wait_ready(7)
    assert stats.covers(7, "2026-01-29") and not stats.covers(7, "2026-01-28")  # 32 days kept
    active = False
    assert not stats.covers(7, "2026-02-28")
