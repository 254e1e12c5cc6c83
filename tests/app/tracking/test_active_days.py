"""`/ud`'s streak from the ranks in memory (the mirrored days, and the active days before the mirror)
against the same streak from a read of the member's day documents, after random traffic over four
months, a rebuild (a restart), a late write to a day before the mirror, a rule change and an erase."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from app.tracking.ranks import Ranks
from app.tracking.streaks import STREAK_DAYS, ActiveRule, streak, week_progress
from app.tracking.voice import zone
from app.wiring.clock import ManualClock
from repositories.activity import MESSAGE_GUARD, Credit
from repositories.goals import WeeklyGoal
from tests.app.tracking.test_ranks import GUILDS, MEMBERS, Bot, start, traffic

RULES = (ActiveRule(1, 0), ActiveRule(3, 600))
GOAL = WeeklyGoal(messages=5, voice_s=3600)


def today(bot: Bot) -> date:
    return bot.clock.now().astimezone(zone("UTC")).date()


async def assert_same_streaks(bot: Bot, rule: ActiveRule) -> int:
    """Every member's streak and week from memory equal the ones from MongoDB; the number of
    members whose active days before the mirror were used."""
    used = 0
    day = today(bot)
    first = day - timedelta(days=STREAK_DAYS - 1)
    for guild in GUILDS:
        for member in (*MEMBERS, 999):
            known = bot.ranks.streak_days(guild, member, first, rule)
            assert known is not None, (guild, member)
            days, earlier = known
            stored = await bot.activity.days_between(guild, member, first, day)
            assert streak(days, day, rule, earlier) == streak(stored, day, rule), (guild, member)
            assert week_progress(days, day, GOAL) == week_progress(stored, day, GOAL)
            used += bool(earlier)
    return used


@pytest.mark.parametrize("seed", [1, 2])
async def test_streaks_from_memory_equal_the_stored_days(db, policy, seed: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock)
    await start(bot, ranks=False)
    for _ in range(50):  # four months: most days end up before the mirror of a later build
        await traffic(bot, rng, 12)
        for _ in range(2):
            clock.advance(26 * 3600)
            await bot.voice.flush()
    for rule in RULES:
        bot.ranks = Ranks(bot.activity, clock, batch=7, rule_of=lambda _guild, rule=rule: _async(rule))
        for guild in GUILDS:
            bot.ranks.ensure(guild)
            await bot.ranks.wait_ready(guild)
        assert await assert_same_streaks(bot, rule) > 0  # some streak reached before the mirror

    # kept current: more traffic (noted to the ranks as it is written) stays equal
    await traffic(bot, rng, 60)
    assert await assert_same_streaks(bot, RULES[-1]) > 0

    # a write to a day before the mirror (a late request, or a backfill): that member is read from
    # MongoDB until the next build; the others stay in memory
    old_day = (today(bot) - timedelta(days=60)).isoformat()
    credits = [Credit(GUILDS[0], 1, old_day, {"messages": 9})]
    await bot.activity.add_messages(credits, 10**15)
    bot.ranks.note(credits, 10**15, MESSAGE_GUARD)
    first = today(bot) - timedelta(days=STREAK_DAYS - 1)
    assert bot.ranks.streak_days(GUILDS[0], 1, first, RULES[-1]) is None
    assert bot.ranks.streak_days(GUILDS[0], 2, first, RULES[-1]) is not None

    # another rule than the build's (the settings changed): read from MongoDB
    assert bot.ranks.streak_days(GUILDS[0], 2, first, RULES[0]) is None

    # a rebuild reads the late write: equal again, from memory
    for guild in GUILDS:
        bot.ranks.rebuild(guild)
        await bot.ranks.wait_ready(guild)
    await assert_same_streaks(bot, RULES[-1])

    # an erase: the member is off at once (their documents become tombstones: no active day)
    bot.ranks.forget_member(GUILDS[0], 2)
    assert bot.ranks.streak_days(GUILDS[0], 2, first, RULES[-1]) == ({}, [])


async def test_without_a_rule_or_before_the_build_the_days_are_read_from_mongodb(db, policy) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    bot = Bot(db, policy, clock)  # the ranks of `Bot` have no rule: no active days kept
    await start(bot, ranks=False)
    first = today(bot) - timedelta(days=STREAK_DAYS - 1)
    assert bot.ranks.streak_days(GUILDS[0], 1, first, RULES[0]) is None  # not built
    bot.ranks.ensure(GUILDS[0])
    await bot.ranks.wait_ready(GUILDS[0])
    assert bot.ranks.streak_days(GUILDS[0], 1, first, RULES[0]) is None


async def _async(rule: ActiveRule) -> ActiveRule:
    return rule
