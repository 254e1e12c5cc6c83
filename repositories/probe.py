"""The startup probe's collection: one document per bot instance, written with journaling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import WriteConcern

from repositories.base import Repository


class ProbeRepository(Repository):
    collection_name = "_probe"

    def __init__(self, db: Any, policy: Any = None) -> None:
        super().__init__(db, policy)
        self.journaled = self.collection.with_options(write_concern=WriteConcern(w=1, j=True))

    async def write_and_read(self, instance: str, token: str, at: datetime) -> dict[str, Any] | None:
        """Write the probe token with j=true, then read it back; the caller checks the token."""
        await self.journaled.update_one(
            {"_id": instance}, {"$set": {"token": token, "at_ms": int(at.timestamp() * 1000)}}, upsert=True
        )
        return await self.collection.find_one({"_id": instance})
