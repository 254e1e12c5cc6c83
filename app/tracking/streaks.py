"""Streaks of active days and a week's progress towards a weekly goal, from a member's day documents.

Pure: the caller passes the member's day documents of the last `STREAK_DAYS` days, keyed by
`YYYY-MM-DD`, with the guild-local date of today (`local_today`); the ranks in memory may instead
give the days they mirror plus the active days before them (`earlier`, see `app.tracking.ranks`).

- A day is *active* when the member reached the guild's minimum (`ActiveRule`): at least
  `min_messages` messages OR at least `min_voice_s` seconds of voice, where a minimum of 0 takes
  that criterion out; with both 0, any message or voice time makes the day active.
- The *current* streak is the run of consecutive active days ending today when today is active,
  else ending yesterday: a day is not over before midnight in the guild's time zone, so a streak
  is not broken before then. The *best* streak is the longest run ever (the current one included).
- The week starts on Monday (guild-local); its progress sums the days from Monday to today.

Days are the day documents' own keys: the guild-local day when the activity was counted. A guild
that changes its time zone keeps its older days as they were; a day after today (possible right
after a change to a zone further west) is not part of any streak yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from repositories.activity import Counters
from repositories.goals import WeeklyGoal
from repositories.guild_settings import GuildConfig

log = logging.getLogger(__name__)
ONE_DAY = timedelta(days=1)
STREAK_DAYS = 366  # the days a streak is counted over, today included


def local_today(now: datetime, tz: ZoneInfo) -> date:
    """The guild-local date of the instant `now` (timezone-aware)."""
    return now.astimezone(tz).date()


@dataclass(frozen=True)
class ActiveRule:
    """What makes a day active (the guild settings `streak_min_messages`, `streak_min_voice_minutes`)."""

    min_messages: int = 1
    min_voice_s: int = 0

    def active(self, day: Counters) -> bool:
        return self.active_counts(day.messages, day.voice_s)

    def active_counts(self, messages: int, voice_s: int) -> bool:
        """`active` from a day's two counts (the ranks' mirror checks thousands of days per turn)."""
        if not self.min_messages and not self.min_voice_s:
            return messages > 0 or voice_s > 0
        by_messages = bool(self.min_messages) and messages >= self.min_messages
        by_voice = bool(self.min_voice_s) and voice_s >= self.min_voice_s
        return by_messages or by_voice


def active_rule(config: GuildConfig) -> ActiveRule:
    """The guild's rule for an active day."""
    return ActiveRule(config.streak_min_messages, config.streak_min_voice_minutes * 60)


@dataclass(frozen=True)
class Streak:
    current: int  # consecutive active days ending today (or yesterday while today is not active)
    best: int  # the longest run ever
    today_active: bool


def _dates(days: Iterable[str]) -> list[date]:
    parsed = []
    for day in days:
        try:
            parsed.append(date.fromisoformat(day))
        except (TypeError, ValueError):
            log.warning("day document with an unreadable day %r left out of the streak", day)
    return parsed


def streak(days: Mapping[str, Counters], today: date, rule: ActiveRule,
           earlier: Iterable[date] = ()) -> Streak:
    """The current and best streak of active days, from the member's day documents `days` and the
    days `earlier` known to be active under `rule` (their documents left out of `days`)."""
    active = {d for d in _dates(day for day, counters in days.items() if rule.active(counters))
              if d <= today}
    active.update(d for d in earlier if d <= today)
    best = run = 0
    previous: date | None = None
    for day in sorted(active):
        run = run + 1 if previous is not None and day - previous == ONE_DAY else 1
        best = max(best, run)
        previous = day
    current = 0
    day = today if today in active else today - ONE_DAY
    while day in active:
        current += 1
        day -= ONE_DAY
    return Streak(current, best, today in active)


def week_start(today: date) -> date:
    """The Monday of the week `today` is in."""
    return today - timedelta(days=today.weekday())


@dataclass(frozen=True)
class Part:
    """One target of a weekly goal: how much of it this week so far."""

    done: int
    target: int

    @property
    def percent(self) -> int:
        """Whole percent reached, rounded down (100 only when reached; may pass 100)."""
        return self.done * 100 // self.target

    @property
    def reached(self) -> bool:
        return self.done >= self.target


@dataclass(frozen=True)
class WeekProgress:
    since: date  # the Monday the week started on
    messages: Part | None  # None: no messages target
    voice: Part | None  # seconds; None: no voice target

    @property
    def percent(self) -> int:
        """The whole goal: the mean of its targets' percents, each counted up to 100."""
        parts = [p for p in (self.messages, self.voice) if p is not None]
        return sum(min(p.percent, 100) for p in parts) // len(parts) if parts else 0


def week_progress(days: Mapping[str, Counters], today: date, goal: WeeklyGoal) -> WeekProgress | None:
    """This week's progress towards `goal` (None: no goal), from Monday through today."""
    if goal.empty:
        return None
    since = week_start(today)
    week = [c for d, c in days.items() if since.isoformat() <= d <= today.isoformat()]
    messages = sum(c.messages for c in week)
    voice_s = sum(c.voice_s for c in week)
    return WeekProgress(
        since,
        Part(messages, goal.messages) if goal.messages else None,
        Part(voice_s, goal.voice_s) if goal.voice_s else None,
    )


@dataclass(frozen=True)
class Habits:
    """What `/ud` shows beside the period's numbers: the streaks, and this week's goal progress."""

    streak: Streak
    rule: ActiveRule
    week: WeekProgress | None  # None: the member set no goal


def habits(days: Mapping[str, Counters], today: date, rule: ActiveRule, goal: WeeklyGoal,
           earlier: Iterable[date] = ()) -> Habits:
    """Streaks and this week's progress from the member's day documents (and the active days
    `earlier` than them, see `streak`)."""
    return Habits(streak(days, today, rule, earlier), rule, week_progress(days, today, goal))
