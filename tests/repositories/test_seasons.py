"""SeasonRepository on the real test server: one document per season, names unique per guild."""

from __future__ import annotations

from datetime import UTC, datetime

from repositories.seasons import SeasonRepository, StoredSeason

AT = datetime(2026, 3, 10, 12, tzinfo=UTC)


async def test_a_season_is_stored_once_and_names_are_unique_per_guild(db, policy) -> None:
    repo = SeasonRepository(db, policy)
    await repo.ensure_indexes()
    spring = StoredSeason(1, "Spring", "2026-03-10", 101, AT)
    assert await repo.insert(spring) == spring
    assert await repo.insert(spring) == spring  # a retry: the same document, no second one
    other_admin = StoredSeason(1, "Other", "2026-03-10", 102, AT)
    assert await repo.insert(other_admin) == spring  # that day has its season: kept as it was
    assert await repo.insert(StoredSeason(1, " spring ", "2026-06-01", 101, AT)) is None  # name taken
    summer = StoredSeason(1, "Summer", "2026-06-01", 101, AT)
    assert await repo.insert(summer) == summer
    elsewhere = StoredSeason(2, "Spring", "2026-01-01", 9, AT)
    assert await repo.insert(elsewhere) == elsewhere  # another guild may use the name
    assert await repo.of_guild(1) == [spring, summer]
    doc = await db.seasons.find_one({"_id": "1:2026-06-01"})
    assert (doc["name_key"], doc["guild_id"], doc["started_by"]) == ("summer", 1, 101)
    assert await db.seasons.count_documents({}) == 3
