"""Backups taken by `/invites-admin reset` (`invite_backups`), restorable on purpose only.

A reset first copies everything it clears here, then clears. One header document per backup
(`_id`: the backup id, `kind: "header"`, guild, member reset or 0 for the whole guild, who, when,
`status`: saving -> saved -> applied, and -> restoring -> restored from any of those) and one item
document per copied join (`kind: "join"`, the join document as it was) or bonus (`kind: "bonus"`,
the amount taken away). Items are written once (`$setOnInsert` on `{backup_id}:{kind}:{key}`) and
never change, so a repeated copy adds only what is missing.

One document per guild lists the resets and restores in flight (`_id: "inflight:{guild_id}"`,
`kind: "inflight"`, one field per backup id holding its start in epoch ms): it is written before a
header and cleared after the last step, so one read by `_id` finds an operation a crash interrupted.

Restoring does not write the copies back over the live collections (that is how seed 001 lost a
staff entry): it undoes exactly this reset's marks and bonus changes, so anything newer stays.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne

from app.storage.retry import with_retry
from app.wiring.clock import to_ms
from repositories.base import Repository

BACKUP_ID = re.compile(r"^ib-[0-9a-f]{12}$")
BATCH = 500
# How a reset took bonuses away: "backup" = a per-backup field on the bonus document
# (`InviteBonusRepository.take_for_reset`); "legacy" = headers written before that existed
# (the `last_op` guard), whose bonuses carry no per-backup field.
BONUS_GUARD = "backup"
LEGACY_BONUS_GUARD = "legacy"


def new_backup_id() -> str:
    return f"ib-{uuid.uuid4().hex[:12]}"


def valid_backup_id(value: str) -> bool:
    return bool(BACKUP_ID.fullmatch(value))


@dataclass(frozen=True)
class BackupHeader:
    backup_id: str
    guild_id: int
    member_id: int  # 0: the whole guild
    created_at: datetime
    created_by: int
    status: str
    joins: int
    bonus_members: int
    bonus_guard: str = BONUS_GUARD


def inflight_key(guild_id: int) -> str:
    return f"inflight:{guild_id}"


class InviteBackupRepository(Repository):
    collection_name = "invite_backups"
    indexes = (IndexModel([("backup_id", ASCENDING), ("kind", ASCENDING)]),)

    async def begin(self, header: BackupHeader) -> None:
        doc = {
            "kind": "header",
            "backup_id": header.backup_id,
            "guild_id": header.guild_id,
            "member_id": header.member_id,
            "created_at": header.created_at,
            "created_by": header.created_by,
            "status": "saving",
            "joins": header.joins,
            "bonus_members": header.bonus_members,
            "bonus_guard": BONUS_GUARD,
        }
        await with_retry(
            "begin invite backup",
            lambda: self.collection.update_one({"_id": header.backup_id}, {"$setOnInsert": doc}, upsert=True),
            self.policy,
        )

    async def add_items(self, backup_id: str, joins: list[dict[str, Any]], bonuses: dict[int, int]) -> None:
        ops = [
            UpdateOne(
                {"_id": f"{backup_id}:join:{doc['_id']}"},
                {"$setOnInsert": {"kind": "join", "backup_id": backup_id, "join_id": doc["_id"], "doc": doc}},
                upsert=True,
            )
            for doc in joins
        ]
        ops += [
            UpdateOne(
                {"_id": f"{backup_id}:bonus:{member_id}"},
                {
                    "$setOnInsert": {
                        "kind": "bonus",
                        "backup_id": backup_id,
                        "member_id": member_id,
                        "bonus": amount,
                    }
                },
                upsert=True,
            )
            for member_id, amount in bonuses.items()
        ]
        for start in range(0, len(ops), BATCH):
            chunk = ops[start : start + BATCH]
            await with_retry(
                "store invite backup",
                lambda chunk=chunk: self.collection.bulk_write(chunk, ordered=False),
                self.policy,
            )

    async def move(
        self, backup_id: str, frm: str, to: str, now: datetime, counts: tuple[int, int] | None = None
    ) -> bool:
        """Advance the header's status from `frm` to `to` (False when it was not at `frm`, which a
        retry of an applied move also sees: read the header to know where it is). `counts`: the
        joins and bonus members the backup holds, set with the move."""
        changes: dict[str, Any] = {"status": to, f"{to}_ms": to_ms(now)}
        if counts is not None:
            changes["joins"], changes["bonus_members"] = counts
        result = await with_retry(
            "update invite backup status",
            lambda: self.collection.update_one({"_id": backup_id, "status": frm}, {"$set": changes}),
            self.policy,
        )
        return bool(result.modified_count)

    # ---- operations in flight ------------------------------------------------------------------
    async def start_flight(self, guild_id: int, backup_id: str, now: datetime) -> None:
        """Note a reset or restore of `backup_id` as in flight in the guild (before its first step)."""
        _check_id(backup_id)
        await with_retry(
            "note invite reset in flight",
            lambda: self.collection.update_one(
                {"_id": inflight_key(guild_id)},
                {"$set": {"kind": "inflight", "guild_id": guild_id, backup_id: to_ms(now)}},
                upsert=True,
            ),
            self.policy,
        )

    async def end_flight(self, guild_id: int, backup_id: str) -> None:
        """The reset or restore of `backup_id` is done (after its last step)."""
        _check_id(backup_id)
        await with_retry(
            "clear invite reset in flight",
            lambda: self.collection.update_one({"_id": inflight_key(guild_id)}, {"$unset": {backup_id: ""}}),
            self.policy,
        )

    async def in_flight(self, guild_id: int) -> list[str]:
        """The backup ids of the guild's resets and restores started and not done, oldest first."""
        doc = await with_retry(
            "read invite resets in flight",
            lambda: self.collection.find_one({"_id": inflight_key(guild_id)}),
            self.policy,
        )
        started = {key: value for key, value in (doc or {}).items() if valid_backup_id(key)}
        return sorted(started, key=lambda key: (started[key], key))

    async def header(self, backup_id: str) -> BackupHeader | None:
        if not isinstance(backup_id, str):  # a dict here would become a query operator
            raise TypeError(f"a backup id is a string, not {type(backup_id).__name__}")
        doc = await with_retry(
            "read invite backup",
            lambda: self.collection.find_one({"_id": backup_id, "kind": "header"}),
            self.policy,
        )
        return None if doc is None else _header(doc)

    async def recent(self, guild_id: int, limit: int) -> list[BackupHeader]:
        """The guild's `limit` newest backups, newest first (for autocomplete; a guild keeps few:
        one per reset, so they are sorted here rather than by a sort the server may not index)."""

        query = {"guild_id": guild_id, "kind": "header"}

        async def read() -> list[BackupHeader]:
            return [_header(doc) async for doc in self.collection.find(query)]

        headers = await with_retry("list invite backups", read, self.policy)
        return sorted(headers, key=lambda h: (h.created_at, h.backup_id), reverse=True)[:limit]

    async def items(self, backup_id: str) -> tuple[list[str], dict[int, int]]:
        """The join ids and the bonus amounts this backup holds."""

        async def read() -> tuple[list[str], dict[int, int]]:
            joins: list[str] = []
            bonuses: dict[int, int] = {}
            query = {"backup_id": backup_id, "kind": {"$in": ["join", "bonus"]}}
            async for doc in self.collection.find(query):
                if doc["kind"] == "join":
                    joins.append(doc["join_id"])
                else:
                    bonuses[int(doc["member_id"])] = int(doc["bonus"])
            return joins, bonuses

        return await with_retry("read invite backup items", read, self.policy)


def _header(doc: dict[str, Any]) -> BackupHeader:
    return BackupHeader(
        backup_id=doc["_id"],
        guild_id=doc["guild_id"],
        member_id=int(doc.get("member_id") or 0),
        created_at=doc["created_at"],
        created_by=doc.get("created_by") or 0,
        status=doc.get("status") or "saving",
        joins=int(doc.get("joins") or 0),
        bonus_members=int(doc.get("bonus_members") or 0),
        bonus_guard=doc.get("bonus_guard") or LEGACY_BONUS_GUARD,
    )


def _check_id(backup_id: str) -> None:
    """A backup id becomes a field name in the in-flight document: only the strict pattern."""
    if not isinstance(backup_id, str) or not valid_backup_id(backup_id):
        raise ValueError(f"not a backup id: {backup_id!r}")
