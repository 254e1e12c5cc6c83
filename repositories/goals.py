"""Weekly goals (`weekly_goals`): one document per member who set one, `_id: "{guild_id}:{member_id}"`.

Written by `/goal set` and `/goal clear` (cogs/goals.py), straight to MongoDB (a restart a moment
later finds it). A member sets their own goal: `messages` a week, `voice_s` (seconds) a week, or
both. Each write is an upsert guarded by a sequence in `goal_seq` (the command's interaction id: a
snowflake, which grows with time), so a retried write changes nothing twice and a request that
reaches MongoDB late never overwrites a newer goal. Clearing unsets the targets and keeps the
document with its guard, for the same reason; a document without targets is no goal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from app.storage.retry import guard_filter, with_retry
from app.storage.writes import Op
from app.wiring.clock import to_ms
from repositories.base import Repository

log = logging.getLogger(__name__)
GOAL_GUARD = "goal_seq"
TARGETS = ("messages", "voice_s")


def goal_key(guild_id: int, member_id: int) -> str:
    return f"{guild_id}:{member_id}"


@dataclass(frozen=True)
class WeeklyGoal:
    messages: int | None = None  # messages a week
    voice_s: int | None = None  # seconds of voice a week

    @property
    def empty(self) -> bool:
        return not self.messages and not self.voice_s

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> WeeklyGoal:
        doc = doc or {}
        values = {name: int(doc[name]) if doc.get(name) else None for name in TARGETS}
        return cls(**values)


class GoalRepository(Repository):
    collection_name = "weekly_goals"
    indexes = (IndexModel([("guild_id", ASCENDING), ("member_id", ASCENDING)]),)

    async def get(self, guild_id: int, member_id: int) -> WeeklyGoal:
        doc = await with_retry(
            "read weekly goal",
            lambda: self.collection.find_one({"_id": goal_key(guild_id, member_id)}),
            self.policy,
        )
        return WeeklyGoal.from_document(doc)

    async def set(self, guild_id: int, member_id: int, *, seq: int, now: datetime,
                  messages: int | None = None, voice_s: int | None = None) -> WeeklyGoal:
        """Set the targets given (the others stay as they were); the goal as stored afterwards."""
        targets = {name: value for name, value in (("messages", messages), ("voice_s", voice_s))
                   if value is not None}
        await self._write(guild_id, member_id, seq, now, {"$set": targets}, upsert=True)
        return await self.get(guild_id, member_id)

    async def clear(self, guild_id: int, member_id: int, *, seq: int, now: datetime) -> None:
        """No goal any more (the document and its guard stay, without targets)."""
        await self._write(guild_id, member_id, seq, now, {"$unset": dict.fromkeys(TARGETS, "")},
                          upsert=False)

    async def _write(self, guild_id: int, member_id: int, seq: int, now: datetime,
                     update: dict[str, dict[str, Any]], *, upsert: bool) -> None:
        key = goal_key(guild_id, member_id)
        fields = {"guild_id": guild_id, "member_id": member_id, GOAL_GUARD: seq, "updated_ms": to_ms(now)}
        update = {**update, "$set": {**update.get("$set", {}), **fields}}

        async def write() -> None:
            try:
                await self.collection.update_one(guard_filter(key, GOAL_GUARD, seq), update, upsert=upsert)
            except DuplicateKeyError:  # applied already (a retry), or a newer goal is stored
                log.info("weekly goal %s: write %s already applied or superseded", key, seq)

        await with_retry("write weekly goal", write, self.policy)

    # ---- erase on request (`/data erase`) ---------------------------------------------------
    def member_filter(self, guild_id: int, member_id: int) -> dict[str, Any]:
        """The member's goal, when it has a target (a cleared one holds nothing of theirs but ids)."""
        has_target = [{name: {"$exists": True}} for name in TARGETS]
        return {"guild_id": guild_id, "member_id": member_id, "$or": has_target}

    async def erase_member(self, guild_id: int, member_id: int) -> None:
        """Clear the member's goal, keeping the guard (a late `/goal set` of theirs is refused)."""
        cleared = {"$unset": dict.fromkeys(TARGETS, "")}
        await self.idempotent([Op("update_many", {"guild_id": guild_id, "member_id": member_id}, cleared)],
                              f"erase a member's {self.collection_name}")
