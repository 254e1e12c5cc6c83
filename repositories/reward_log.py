"""Every activity-role change the bot made (`reward_log`): one document per grant or removal.

`_id: "{guild_id}:{member_id}:{role_id}:{action}:{at_ms}"` (action "granted" or "removed", `at_ms`
the moment Discord accepted it), written with `$setOnInsert` through the writer: a retried write
lands on the same document and changes nothing. `/data erase` deletes the member's entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.storage.retry import with_retry
from app.storage.writes import Op
from app.wiring.clock import to_ms
from repositories.base import Repository

GRANTED = "granted"
REMOVED = "removed"


@dataclass(frozen=True)
class RewardLogEntry:
    guild_id: int
    member_id: int
    role_id: int
    rule_id: int
    action: str  # GRANTED or REMOVED
    at: datetime


def log_key(entry: RewardLogEntry) -> str:
    return f"{entry.guild_id}:{entry.member_id}:{entry.role_id}:{entry.action}:{to_ms(entry.at)}"


class RewardLogRepository(Repository):
    collection_name = "reward_log"
    indexes = (IndexModel([("guild_id", ASCENDING), ("member_id", ASCENDING)]),)

    async def record(self, entry: RewardLogEntry) -> None:
        doc = {"guild_id": entry.guild_id, "member_id": entry.member_id, "role_id": entry.role_id,
               "rule_id": entry.rule_id, "action": entry.action, "at_ms": to_ms(entry.at)}
        op = Op("update_one", {"_id": log_key(entry)}, {"$setOnInsert": doc}, upsert=True)
        await self.idempotent([op], "record activity-role change")

    # ---- erase on request (`/data erase`) ---------------------------------------------------
    def member_filter(self, guild_id: int, member_id: int) -> dict[str, Any]:
        return {"guild_id": guild_id, "member_id": member_id}

    async def erase_member(self, guild_id: int, member_id: int) -> None:
        op = Op("delete_many", self.member_filter(guild_id, member_id))
        await self.idempotent([op], f"erase a member's {self.collection_name}")

    async def of_guild(self, guild_id: int) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            cursor = self.collection.find({"guild_id": guild_id}).sort("at_ms", ASCENDING)
            return [doc async for doc in cursor]

        return await with_retry("read activity-role log", read, self.policy)
