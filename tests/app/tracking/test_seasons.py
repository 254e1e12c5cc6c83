"""Seasons: the days each covers, the current one, starting one in the guild's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.tracking.seasons import (
    Season,
    SeasonRefused,
    Seasons,
    current_of,
    day_start,
    default_name,
    with_ends,
)
from app.tracking.voice import zone
from app.wiring.clock import ManualClock
from repositories.guild_settings import GuildSettingsRepository
from repositories.seasons import SeasonRepository, StoredSeason

AT = datetime(2026, 3, 10, 12, tzinfo=UTC)


def stored(name: str, day: str) -> StoredSeason:
    return StoredSeason(1, name, day, 101, AT)


def test_each_season_ends_where_the_next_starts() -> None:
    seasons = with_ends([stored("B", "2026-03-01"), stored("A", "2026-01-01"), stored("C", "2026-03-11")])
    assert [(s.number, s.name, s.span, s.last_day) for s in seasons] == [
        (1, "A", ("2026-01-01", "2026-03-01"), "2026-02-28"),
        (2, "B", ("2026-03-01", "2026-03-11"), "2026-03-10"),
        (3, "C", ("2026-03-11", None), None),
    ]
    assert current_of(seasons, "2026-03-10") == seasons[1]  # C starts tomorrow: not current yet
    assert current_of(seasons, "2026-03-11") == seasons[2]
    assert current_of(seasons, "2025-12-31") is None and with_ends([]) == []
    assert default_name(seasons) == "Season 4"
    named_like_next = [*seasons, Season(4, "season 5", "2026-04-01", None, 1)]
    assert default_name(named_like_next) == "Season 6"


async def test_a_season_starts_at_midnight_of_the_guilds_day(db, policy) -> None:
    """At 02:00 UTC on 2026-03-10 it is still 2026-03-09 in New York: `today` is that day there."""
    clock = ManualClock(datetime(2026, 3, 10, 2, tzinfo=UTC))
    settings = GuildSettingsRepository(db, policy)
    await settings.set_fields(1, time_zone="America/New_York")
    repo = SeasonRepository(db, policy)
    await repo.ensure_indexes()
    seasons = Seasons(repo, settings, clock)
    assert await seasons.season_range(1) is None
    first, tz = await seasons.start(1, None, "today", 101)
    assert (first.name, first.start_day, tz.key) == ("Season 1", "2026-03-09", "America/New_York")
    assert day_start(first.start_day, tz) == datetime(2026, 3, 9, 4, tzinfo=UTC)  # EDT since 03-08: UTC-4
    assert await seasons.season_range(1) == ("2026-03-09", None)

    with pytest.raises(SeasonRefused, match="not after"):
        await seasons.start(1, "Again today", "today", 101)
    with pytest.raises(SeasonRefused, match="too long"):
        await seasons.start(1, "x" * 41, "tomorrow", 101)
    second, _ = await seasons.start(1, "  Spring  ", "tomorrow", 102)
    assert (second.name, second.start_day, second.started_by) == ("Spring", "2026-03-10", 102)
    assert await seasons.season_range(1) == ("2026-03-09", "2026-03-10")  # Season 1 until tomorrow
    with pytest.raises(SeasonRefused, match="next waiting"):
        await seasons.start(1, "Summer", "tomorrow", 101)
    clock.advance(86400)
    assert await seasons.season_range(1) == ("2026-03-10", None)
    assert (await seasons.named(1, "SPRING")) == second
    assert zone("America/New_York") == tz
