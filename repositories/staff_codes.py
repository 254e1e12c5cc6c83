"""Staff invite codes (`staff_codes`): one document per staff member, `_id: "{guild_id}:{member_id}"`.

Written the moment an admin runs `/invites-admin staff add`, straight to MongoDB (idempotent `$set`),
so a restart a minute later finds it (seed 001). `status` is "active" or "removed"; a removed
entry keeps its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.storage.retry import with_retry
from app.wiring.clock import from_ms, to_ms
from repositories.base import Repository

ACTIVE = "active"
REMOVED = "removed"


@dataclass(frozen=True)
class StaffCode:
    guild_id: int
    member_id: int
    member_name: str
    code: str
    added_at: datetime | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StaffCode:
        return cls(
            guild_id=doc["guild_id"],
            member_id=doc["member_id"],
            member_name=doc.get("member_name") or str(doc["member_id"]),
            code=doc["code"],
            added_at=from_ms(doc["added_ms"]) if doc.get("added_ms") is not None else None,
        )


def staff_key(guild_id: int, member_id: int) -> str:
    return f"{guild_id}:{member_id}"


class StaffCodeRepository(Repository):
    collection_name = "staff_codes"
    indexes = (IndexModel([("guild_id", ASCENDING), ("code", ASCENDING)]),)

    async def assign(
        self, guild_id: int, member_id: int, member_name: str, code: str, by: int, now: datetime
    ) -> None:
        changes = {
            "guild_id": guild_id,
            "member_id": member_id,
            "member_name": member_name,
            "code": code,
            "status": ACTIVE,
            "added_ms": to_ms(now),
            "added_by": by,
        }
        await with_retry(
            "assign staff code",
            lambda: self.collection.update_one(
                {"_id": staff_key(guild_id, member_id)}, {"$set": changes}, upsert=True
            ),
            self.policy,
        )

    async def remove(self, guild_id: int, member_id: int, now: datetime) -> bool:
        result = await with_retry(
            "remove staff code",
            lambda: self.collection.update_one(
                {"_id": staff_key(guild_id, member_id), "status": ACTIVE},
                {"$set": {"status": REMOVED, "removed_ms": to_ms(now)}},
            ),
            self.policy,
        )
        return bool(result.modified_count)

    async def active(self, guild_id: int) -> list[StaffCode]:
        async def read() -> list[StaffCode]:
            query = {"guild_id": guild_id, "status": ACTIVE}
            cursor = self.collection.find(query).sort("added_ms", ASCENDING)
            return [StaffCode.from_doc(doc) async for doc in cursor]

        return await with_retry("read staff codes", read, self.policy)

    async def by_code(self, guild_id: int, code: str) -> StaffCode | None:
        if not isinstance(code, str):  # a dict here would become a query operator
            raise TypeError(f"an invite code is a string, not {type(code).__name__}")
        doc = await with_retry(
            "read staff code",
            lambda: self.collection.find_one({"guild_id": guild_id, "code": code, "status": ACTIVE}),
            self.policy,
        )
        return StaffCode.from_doc(doc) if doc else None
