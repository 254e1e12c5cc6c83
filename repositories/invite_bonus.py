"""Bonus invites (`invite_bonus`): one document per guild member, `_id: "{guild_id}:{member_id}"`.

`bonus` is a flat counter changed only by guarded `$inc` (`apply_guarded`): every change carries
an operation id (the command's interaction id, or the reset/restore backup id), so a retried or
repeated change is applied exactly once.

A reset and its restore change the bonus with their own guard instead: a field per backup,
`reset_{backup_id}`, "taken" once the reset took the amount away and "given" once the restore gave it
back (`take_for_reset`, `give_back`). `last_op` remembers only the latest operation, so another
change in between would let a resumed reset take twice; the per-backup field never forgets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

from pymongo import ASCENDING, IndexModel

from app.storage.retry import GuardedUpdate, apply_guarded, with_retry
from repositories.base import Repository

GUARD = "last_op"
IMPORT_GUARD = "import_op"
TAKEN = "taken"
GIVEN = "given"


class BonusWatch(Protocol):
    """Told of every bonus write, after it returned or failed (`app.tracking.invite_boards`)."""

    def bonus_written(self, guild_id: int, member_id: int) -> None: ...


class NoWatch:
    def bonus_written(self, guild_id: int, member_id: int) -> None:
        pass


def bonus_key(guild_id: int, member_id: int) -> str:
    return f"{guild_id}:{member_id}"


def reset_field(backup_id: str) -> str:
    """The bonus document's field that records what the reset `backup_id` did to it."""
    return f"reset_{backup_id}"


class InviteBonusRepository(Repository):
    collection_name = "invite_bonus"
    watch: BonusWatch = NoWatch()
    indexes = (IndexModel([("guild_id", ASCENDING), ("member_id", ASCENDING)]),)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def add(self, guild_id: int, member_id: int, amount: int, op_id: str) -> None:
        """Add `amount` (may be negative) once under `op_id`."""
        key = bonus_key(guild_id, member_id)
        update = GuardedUpdate(
            key, {"$inc": {"bonus": amount}, "$set": {"guild_id": guild_id, "member_id": member_id}}
        )
        async with self._locks[key], self._watched(guild_id, member_id):  # one write in flight per document
            await apply_guarded(self.collection, [update], op_id, GUARD, self.policy, "add invite bonus")

    @contextlib.asynccontextmanager
    async def _watched(self, guild_id: int, member_id: int) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self.watch.bonus_written(guild_id, member_id)

    async def take_for_reset(self, guild_id: int, member_id: int, amount: int, backup_id: str) -> bool:
        """Take `amount` away for the reset `backup_id`, once ever (False: taken before, or the
        document is gone)."""
        field = reset_field(backup_id)
        return await self._reset_step(
            guild_id, member_id, {field: {"$exists": False}}, -amount, field, TAKEN, "reset invite bonus"
        )

    async def give_back(
        self, guild_id: int, member_id: int, amount: int, backup_id: str, *, legacy: bool = False
    ) -> bool:
        """Give back what the reset `backup_id` took, once ever (False: it took nothing here, or it
        was given back before). `legacy`: a reset from before the per-backup field (it took the
        bonus under `last_op`): given back unless given back before."""
        field = reset_field(backup_id)
        taken = {field: {"$exists": False}} if legacy else {field: TAKEN}
        return await self._reset_step(
            guild_id, member_id, taken, amount, field, GIVEN, "restore invite bonus"
        )

    async def _reset_step(
        self, guild_id: int, member_id: int, guard: dict[str, object], amount: int, field: str,
        to: str, what: str,
    ) -> bool:
        key = bonus_key(guild_id, member_id)
        async with self._locks[key], self._watched(guild_id, member_id):
            result = await with_retry(
                what,
                lambda: self.collection.update_one(
                    {"_id": key, **guard}, {"$inc": {"bonus": amount}, "$set": {field: to}}
                ),
                self.policy,
            )
        return bool(result.modified_count)

    async def import_bonus(self, guild_id: int, member_id: int, amount: int, op_id: str) -> None:
        """Add a bonus imported from an old bot, once under `op_id` (own guard field `import_op`)."""
        key = bonus_key(guild_id, member_id)
        update = GuardedUpdate(
            key, {"$inc": {"bonus": amount}, "$set": {"guild_id": guild_id, "member_id": member_id}}
        )
        async with self._locks[key], self._watched(guild_id, member_id):
            await apply_guarded(
                self.collection, [update], op_id, IMPORT_GUARD, self.policy, "import invite bonus"
            )

    async def imported(self, guild_id: int, op_ids: list[str]) -> set[str]:
        """Of `op_ids`, the imports already applied in the guild."""

        async def read() -> set[str]:
            query = {"guild_id": guild_id, IMPORT_GUARD: {"$in": op_ids}}
            return {doc[IMPORT_GUARD] async for doc in self.collection.find(query, {IMPORT_GUARD: 1})}

        return await with_retry("read imported bonuses", read, self.policy) if op_ids else set()

    async def has_imports(self, guild_id: int) -> bool:
        doc = await with_retry(
            "read imported bonuses",
            lambda: self.collection.find_one({"guild_id": guild_id, IMPORT_GUARD: {"$exists": True}}),
            self.policy,
        )
        return doc is not None

    async def get(self, guild_id: int, member_id: int) -> int:
        doc = await with_retry(
            "read invite bonus",
            lambda: self.collection.find_one({"_id": bonus_key(guild_id, member_id)}),
            self.policy,
        )
        return int((doc or {}).get("bonus") or 0)

    async def all(self, guild_id: int) -> dict[int, int]:
        """Non-zero bonus per member of the guild."""

        async def read() -> dict[int, int]:
            cursor = self.collection.find({"guild_id": guild_id, "bonus": {"$ne": 0}})
            return {int(doc["member_id"]): int(doc["bonus"]) async for doc in cursor}

        return await with_retry("read invite bonuses", read, self.policy)
