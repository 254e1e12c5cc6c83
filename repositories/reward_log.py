"""Every activity-role change the bot made (`reward_log`): one document per grant or removal.

`_id: "{guild_id}:{member_id}:{role_id}:{action}:{at_ms}"` (action "granted" or "removed", `at_ms`
the moment the bot decided to ask Discord). Written before the request, as an intent
(`pending: true`, `$setOnInsert`), and confirmed (`$unset: pending`) once Discord accepted it, both
through the writer and for up to 50 changes in one write each: a retried write lands on the same
documents and changes nothing. A process killed between the two leaves the intents; the next
evaluation of the guild resolves them from what the member holds (`resolve`). `/data erase` deletes
the member's entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.storage.retry import with_retry
from app.storage.writes import Op
from app.wiring.clock import from_ms, to_ms
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


def intent(entry: RewardLogEntry) -> dict[str, Any]:
    return {"guild_id": entry.guild_id, "member_id": entry.member_id, "role_id": entry.role_id,
            "rule_id": entry.rule_id, "action": entry.action, "at_ms": to_ms(entry.at), "pending": True}


class RewardLogRepository(Repository):
    collection_name = "reward_log"
    indexes = (IndexModel([("guild_id", ASCENDING), ("member_id", ASCENDING)]),)

    async def intend(self, entries: Sequence[RewardLogEntry]) -> None:
        """Before asking Discord: the changes, marked pending."""
        ops = [Op("update_one", {"_id": log_key(entry)}, {"$setOnInsert": intent(entry)}, upsert=True)
               for entry in entries]
        await self.idempotent(ops, "record activity-role changes about to be made")

    async def pending(self, guild_id: int) -> list[RewardLogEntry]:
        """The guild's intents not confirmed: a process stopped between the request and the log."""
        async def read() -> list[RewardLogEntry]:
            cursor = self.collection.find({"guild_id": guild_id, "pending": True})
            return [RewardLogEntry(d["guild_id"], d["member_id"], d["role_id"], d["rule_id"], d["action"],
                                   from_ms(d["at_ms"])) async for d in cursor]

        return await with_retry("read pending activity-role changes", read, self.policy)

    async def resolve(self, *, made: list[str], not_made: list[str]) -> None:
        """Confirm the intents (by `log_key`) Discord made, and drop the ones it never made. No
        upsert: an intent erased meanwhile stays erased."""
        ops = [Op("update_one", {"_id": key, "pending": True}, {"$unset": {"pending": ""}}) for key in made]
        ops += [Op("delete_one", {"_id": key, "pending": True}) for key in not_made]
        await self.idempotent(ops, "resolve activity-role changes")

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
