"""Streaks of active days and the weekly goal's progress: pure arithmetic on a member's day documents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.tracking.streaks import (
    ActiveRule,
    Part,
    Streak,
    habits,
    local_today,
    streak,
    week_progress,
    week_start,
)
from app.tracking.voice import zone
from repositories.activity import Counters
from repositories.goals import WeeklyGoal

TODAY = date(2026, 3, 11)  # a Wednesday
DEFAULT = ActiveRule()  # 1 message; voice not used


def day(back: int) -> str:
    return (TODAY - timedelta(days=back)).isoformat()


def messages(*backs: int, n: int = 1) -> dict[str, Counters]:
    return {day(b): Counters(messages=n) for b in backs}


def test_consecutive_days_ending_today_are_the_current_streak() -> None:
    assert streak(messages(0, 1, 2), TODAY, DEFAULT) == Streak(current=3, best=3, today_active=True)


def test_today_not_yet_active_does_not_break_the_streak_until_the_day_is_over() -> None:
    assert streak(messages(1, 2, 3), TODAY, DEFAULT) == Streak(current=3, best=3, today_active=False)


def test_a_missed_day_ends_the_streak() -> None:
    # active 2 and 3 days ago, not yesterday, not today: the streak is over, the best remains
    assert streak(messages(2, 3), TODAY, DEFAULT) == Streak(current=0, best=2, today_active=False)


def test_gaps_split_runs_and_the_best_is_the_longest_run_ever() -> None:
    days = messages(0, 1, 5, 6, 7, 8, 20, 21, 22)
    assert streak(days, TODAY, DEFAULT) == Streak(current=2, best=4, today_active=True)
    assert streak(messages(0, 2, 4, 6), TODAY, DEFAULT) == Streak(current=1, best=1, today_active=True)


def test_runs_across_month_and_year_ends_are_consecutive() -> None:
    days = {d: Counters(messages=1) for d in ("2025-12-30", "2025-12-31", "2026-01-01", "2026-02-28",
                                               "2026-03-01")}
    assert streak(days, date(2026, 3, 1), DEFAULT) == Streak(current=2, best=3, today_active=True)


def test_no_days_is_no_streak() -> None:
    assert streak({}, TODAY, DEFAULT) == Streak(0, 0, False)


def test_the_default_rule_counts_a_day_with_one_message_and_not_voice_alone() -> None:
    days = {day(0): Counters(voice_s=7200, cam_off_s=7200), day(1): Counters(messages=1)}
    assert streak(days, TODAY, DEFAULT) == Streak(current=1, best=1, today_active=False)


def test_the_minimums_messages_or_voice() -> None:
    days = {
        day(0): Counters(messages=2, voice_s=1799),  # neither: 3 messages, 30 minutes needed
        day(1): Counters(messages=3),  # enough messages
        day(2): Counters(voice_s=1800, cam_on_s=1800),  # enough voice
        day(3): Counters(messages=2, voice_s=1000),  # neither
    }
    rule = ActiveRule(min_messages=3, min_voice_s=1800)
    assert [rule.active(days[day(b)]) for b in range(4)] == [False, True, True, False]
    assert streak(days, TODAY, rule) == Streak(current=2, best=2, today_active=False)


def test_a_minimum_of_zero_takes_that_criterion_out() -> None:
    voice_only = ActiveRule(min_messages=0, min_voice_s=600)
    assert not voice_only.active(Counters(messages=500))
    assert voice_only.active(Counters(voice_s=600))
    messages_only = ActiveRule(min_messages=5, min_voice_s=0)
    assert not messages_only.active(Counters(messages=4, voice_s=86400))
    assert messages_only.active(Counters(messages=5))


def test_with_both_minimums_zero_any_activity_counts() -> None:
    anything = ActiveRule(min_messages=0, min_voice_s=0)
    assert anything.active(Counters(messages=1)) and anything.active(Counters(voice_s=1))
    assert not anything.active(Counters())  # an erased day (a tombstone) is not activity
    days = {day(0): Counters(voice_s=5), day(1): Counters(messages=1), day(2): Counters()}
    assert streak(days, TODAY, anything) == Streak(current=2, best=2, today_active=True)


def test_days_after_today_are_not_part_of_a_streak() -> None:
    # a guild that moved to a zone further west can hold a day that has not begun here yet
    days = messages(1, 2) | {(TODAY + timedelta(days=1)).isoformat(): Counters(messages=1)}
    assert streak(days, TODAY, DEFAULT) == Streak(current=2, best=2, today_active=False)


def test_an_unreadable_day_is_left_out() -> None:
    days = messages(0, 1) | {"not-a-day": Counters(messages=9)}
    assert streak(days, TODAY, DEFAULT) == Streak(current=2, best=2, today_active=True)


@pytest.mark.parametrize(("now", "time_zone", "today"), [
    (datetime(2026, 3, 11, 23, 30, tzinfo=UTC), "UTC", date(2026, 3, 11)),
    (datetime(2026, 3, 11, 23, 30, tzinfo=UTC), "Europe/Berlin", date(2026, 3, 12)),  # 00:30 there
    (datetime(2026, 3, 11, 2, 0, tzinfo=UTC), "America/Los_Angeles", date(2026, 3, 10)),  # 19:00 there
    (datetime(2026, 3, 11, 14, 59, tzinfo=UTC), "Asia/Tokyo", date(2026, 3, 11)),
    (datetime(2026, 3, 11, 15, 0, tzinfo=UTC), "Asia/Tokyo", date(2026, 3, 12)),
])
def test_today_is_the_guild_local_date(now: datetime, time_zone: str, today: date) -> None:
    assert local_today(now, zone(time_zone)) == today


def test_the_time_zone_decides_whether_a_streak_still_holds() -> None:
    """Active on the 10th and 11th (guild-local days). At 23:30 UTC on the 11th a UTC guild is still
    on the 11th (active: 2 days); a Berlin guild is on the 12th (not yet active: still 2 days, up to
    yesterday); in Los Angeles it is the 11th's afternoon. At 00:30 UTC on the 13th, Berlin's 12th
    is over without activity: the streak is broken there, and still holds where it is the 12th."""
    days = {"2026-03-10": Counters(messages=1), "2026-03-11": Counters(messages=4)}
    late = datetime(2026, 3, 11, 23, 30, tzinfo=UTC)
    for name, today_active in (("UTC", True), ("Europe/Berlin", False), ("America/Los_Angeles", True)):
        result = streak(days, local_today(late, zone(name)), DEFAULT)
        assert (result.current, result.today_active) == (2, today_active), name
    two_days_on = datetime(2026, 3, 13, 0, 30, tzinfo=UTC)
    assert streak(days, local_today(two_days_on, zone("Europe/Berlin")), DEFAULT).current == 0
    assert streak(days, local_today(two_days_on, zone("America/New_York")), DEFAULT).current == 2


@given(st.sets(st.integers(min_value=0, max_value=60)))
def test_the_streaks_match_a_day_by_day_count(backs: set[int]) -> None:
    result = streak(messages(*backs), TODAY, DEFAULT)
    start = 0 if 0 in backs else 1
    current = 0
    while start + current in backs:
        current += 1
    best = run = 0
    for b in range(61, -1, -1):
        run = run + 1 if b in backs else 0
        best = max(best, run)
    assert (result.current, result.best, result.today_active) == (current, best, 0 in backs)


# ---- the weekly goal ---------------------------------------------------------------------------
def test_the_week_starts_on_monday() -> None:
    assert week_start(date(2026, 3, 11)) == date(2026, 3, 9)  # Wednesday -> Monday
    assert week_start(date(2026, 3, 9)) == date(2026, 3, 9)  # Monday itself
    assert week_start(date(2026, 3, 15)) == date(2026, 3, 9)  # Sunday: still that week
    assert week_start(date(2026, 3, 1)) == date(2026, 2, 23)  # across a month's end


def test_progress_sums_this_weeks_days_only() -> None:
    days = {
        "2026-03-08": Counters(messages=50, voice_s=36000),  # Sunday: last week
        "2026-03-09": Counters(messages=5, voice_s=3600),  # Monday
        "2026-03-11": Counters(messages=7, voice_s=7500),  # today
        "2026-03-12": Counters(messages=99),  # after today: not yet
    }
    week = week_progress(days, TODAY, WeeklyGoal(messages=20, voice_s=5 * 3600))
    assert week is not None and week.since == date(2026, 3, 9)
    assert week.messages == Part(12, 20) and week.messages.percent == 60
    assert week.voice == Part(11100, 18000) and week.voice.percent == 61  # 3h 05m of 5h, rounded down
    assert week.percent == 60  # the mean of 60 and 61, rounded down


def test_a_goal_with_one_target_has_only_that_part() -> None:
    days = {"2026-03-10": Counters(messages=3, voice_s=600)}
    week = week_progress(days, TODAY, WeeklyGoal(voice_s=3600))
    assert week is not None and week.messages is None and week.voice == Part(600, 3600)
    assert week.percent == 16


def test_a_target_passed_shows_past_100_but_counts_100_towards_the_whole() -> None:
    days = {"2026-03-10": Counters(messages=30, voice_s=0)}
    week = week_progress(days, TODAY, WeeklyGoal(messages=20, voice_s=3600))
    assert week is not None and week.messages is not None and week.voice is not None
    assert (week.messages.percent, week.messages.reached) == (150, True)
    assert (week.voice.percent, week.voice.reached) == (0, False)
    assert week.percent == 50
    assert not Part(19, 20).reached and Part(199, 200).percent == 99  # never 100% before it is reached


def test_no_goal_is_no_progress() -> None:
    assert week_progress(messages(0), TODAY, WeeklyGoal()) is None
    result = habits(messages(0, 1), TODAY, DEFAULT, WeeklyGoal())
    assert result.week is None and result.streak == Streak(2, 2, True) and result.rule == DEFAULT


def test_the_week_is_the_guild_local_one() -> None:
    """Sunday 23:30 UTC is already Monday in Berlin: a new week there, with nothing done yet."""
    days = {"2026-03-15": Counters(messages=8)}  # Sunday
    now = datetime(2026, 3, 15, 23, 30, tzinfo=UTC)
    goal = WeeklyGoal(messages=10)
    utc = week_progress(days, local_today(now, zone("UTC")), goal)
    berlin = week_progress(days, local_today(now, zone("Europe/Berlin")), goal)
    assert utc is not None and utc.messages == Part(8, 10) and utc.since == date(2026, 3, 9)
    assert berlin is not None and berlin.messages == Part(0, 10) and berlin.since == date(2026, 3, 16)
