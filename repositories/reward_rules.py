"""Activity-role rules (`reward_rules`): one document per rule, `_id: "{guild_id}:{rule_id}"`.

Written by `/rewards add` and `/rewards remove` (cogs/rewards.py) through the writer (idempotent
`$set` on the deterministic key, kept in the outbox while MongoDB is away). `rule_id` is the
`/rewards add` interaction's id (a 64-bit snowflake): a retried write lands on the same document.
`status` is "active" or "removed"; a removed rule keeps its history. The meaning of the fields is
`app.tracking.rewards.RewardRule` (`reach` in messages or hours, `top`, or `active_days` with
`of_last`; the others null).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.storage.retry import with_retry
from app.storage.writes import Op
from app.tracking.rewards import RewardRule
from app.wiring.clock import to_ms
from repositories.base import Repository

log = logging.getLogger(__name__)
ACTIVE = "active"
REMOVED = "removed"


def rule_key(guild_id: int, rule_id: int) -> str:
    return f"{guild_id}:{rule_id}"


def _int_or_none(doc: dict[str, Any], name: str) -> int | None:
    return int(doc[name]) if doc.get(name) is not None else None


def rule_from_doc(doc: dict[str, Any]) -> RewardRule:
    return RewardRule(
        guild_id=int(doc["guild_id"]), rule_id=int(doc["rule_id"]), role_id=int(doc["role_id"]),
        metric=doc["metric"], period=doc.get("period"),
        reach=_int_or_none(doc, "reach"), top=_int_or_none(doc, "top"),
        active_days=_int_or_none(doc, "active_days"), of_last=_int_or_none(doc, "of_last"),
    )


class RewardRuleRepository(Repository):
    collection_name = "reward_rules"
    indexes = (IndexModel([("guild_id", ASCENDING), ("status", ASCENDING)]),)

    async def add(self, rule: RewardRule, by: int, now: datetime) -> None:
        fields = {
            "guild_id": rule.guild_id, "rule_id": rule.rule_id, "role_id": rule.role_id,
            "metric": rule.metric, "period": rule.period, "reach": rule.reach, "top": rule.top,
            "active_days": rule.active_days, "of_last": rule.of_last,
            "status": ACTIVE, "added_by": by, "added_ms": to_ms(now),
        }
        op = Op("update_one", {"_id": rule_key(rule.guild_id, rule.rule_id)}, {"$set": fields}, upsert=True)
        await self.idempotent([op], "add activity-role rule")

    async def remove(self, guild_id: int, rule_id: int, by: int, now: datetime) -> None:
        op = Op("update_one", {"_id": rule_key(guild_id, rule_id), "status": ACTIVE},
                {"$set": {"status": REMOVED, "removed_by": by, "removed_ms": to_ms(now)}})
        await self.idempotent([op], "remove activity-role rule")

    async def get(self, guild_id: int, rule_id: int) -> RewardRule | None:
        doc = await with_retry(
            "read activity-role rule",
            lambda: self.collection.find_one({"_id": rule_key(guild_id, rule_id), "status": ACTIVE}),
            self.policy,
        )
        return rule_from_doc(doc) if doc else None

    async def active(self, guild_id: int) -> list[RewardRule]:
        async def read() -> list[RewardRule]:
            cursor = self.collection.find({"guild_id": guild_id, "status": ACTIVE}).sort("rule_id", ASCENDING)
            return [rule_from_doc(doc) async for doc in cursor]

        return await with_retry("read activity-role rules", read, self.policy)
