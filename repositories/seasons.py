"""Seasons (`seasons`): one document per season of a guild, `_id: "{guild_id}:{start_day}"`.

Written by `/season start` (cogs/seasons.py), straight to MongoDB. A season is a range of the
guild's days (`start_day`, "YYYY-MM-DD" in the guild's time zone, to the next season's start day,
exclusive; the latest season is open): its figures are the sums of the `activity` day documents of
those days, so nothing about counting changes and nothing is ever deleted. The insert is an upsert
with `$setOnInsert` on the deterministic `_id`: a retried command (or a second admin starting a
season the same day) finds the document there and changes nothing. Names are unique per guild,
case-insensitively: a unique index on `(guild_id, name_key)` refuses a second season of the name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from app.storage.retry import with_retry
from repositories.base import Repository

log = logging.getLogger(__name__)


def season_key(guild_id: int, start_day: str) -> str:
    return f"{guild_id}:{start_day}"


def name_key(name: str) -> str:
    """What makes two names the same: case and surrounding spaces left out."""
    return name.strip().casefold()


@dataclass(frozen=True)
class StoredSeason:
    guild_id: int
    name: str
    start_day: str
    started_by: int
    created_at: datetime

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> StoredSeason:
        return cls(int(doc["guild_id"]), str(doc["name"]), str(doc["start_day"]), int(doc["started_by"]),
                   doc["created_at"])


class SeasonRepository(Repository):
    collection_name = "seasons"
    indexes = (
        IndexModel([("guild_id", ASCENDING), ("start_day", ASCENDING)]),
        IndexModel([("guild_id", ASCENDING), ("name_key", ASCENDING)], unique=True),
    )

    async def insert(self, season: StoredSeason) -> StoredSeason | None:
        """Store `season` unless the guild has one starting that day already; the season stored on
        that day afterwards (the one given, or the one there before). None: the name is taken."""
        key = season_key(season.guild_id, season.start_day)
        fields = {"guild_id": season.guild_id, "name": season.name, "name_key": name_key(season.name),
                  "start_day": season.start_day, "started_by": season.started_by,
                  "created_at": season.created_at}

        async def write() -> None:
            try:
                await self.collection.update_one({"_id": key}, {"$setOnInsert": fields}, upsert=True)
            except DuplicateKeyError:  # the name is taken, or a concurrent start of that day won
                log.info("season %s of guild %s not inserted: a duplicate key", key, season.guild_id)

        await with_retry("start a season", write, self.policy)
        doc = await with_retry("read a season", lambda: self.collection.find_one({"_id": key}), self.policy)
        return StoredSeason.from_document(doc) if doc else None

    async def of_guild(self, guild_id: int) -> list[StoredSeason]:
        """The guild's seasons, oldest first (a handful: one query on `(guild_id, start_day)`)."""

        async def read() -> list[StoredSeason]:
            cursor = self.collection.find({"guild_id": guild_id}).sort("start_day", ASCENDING)
            return [StoredSeason.from_document(doc) async for doc in cursor]

        return await with_retry("read seasons", read, self.policy)
