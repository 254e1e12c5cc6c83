"""The invite snapshot (`invites`) and each guild's snapshot state (`invite_guilds`).

`invites`: one document per invite, `_id: "{guild_id}:{code}"`, with the uses Discord reported
last, `max_uses`, inviter id and name, channel, created/expiry times, and `status` "live" or
"removed" (a revoked or used-up invite stays, marked, so a join processed after the
INVITE_DELETE can still be attributed and history keeps its inviter).

`invite_guilds`: one document per guild (`_id: guild_id`): the vanity code and its uses, when the
snapshot was last stored (`snapshot_ms`, epoch milliseconds), whether the bot may read invites (`permission`:
"ok" | "missing"), and `stale` ("yes" when an invite fetch failed after the last good snapshot).

MongoDB is the only copy: there is no cache file and no second store. Every write is an
idempotent `$set` (plus `$max` for the uses of a freshly created invite) through `with_retry`.
Fixed facts (code, channel, created/expiry) are written once with `$setOnInsert`; times that
change are epoch milliseconds (`*_ms`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateMany, UpdateOne

from app.storage.retry import with_retry
from app.tracking.attribution import InviteUses, Snapshot
from app.wiring.clock import from_ms, to_ms
from repositories.base import Repository

LIVE = "live"
REMOVED = "removed"


@dataclass(frozen=True)
class StoredInvite:
    """An invite as stored: what the snapshot holds plus display fields."""

    code: str
    uses: int
    max_uses: int
    inviter_id: int | None
    inviter_name: str | None
    channel_id: int | None
    created_at: datetime | None
    expires_at: datetime | None

    def uses_entry(self) -> InviteUses:
        return InviteUses(
            self.code, self.uses, self.max_uses, self.inviter_id, self.inviter_name, self.expires_at
        )

    def fixed(self, guild_id: int) -> dict[str, Any]:
        """What never changes for a code: written once, when the document is created."""
        return {
            "guild_id": guild_id,
            "code": self.code,
            "max_uses": self.max_uses,
            "channel_id": self.channel_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    def current(self, now: datetime) -> dict[str, Any]:
        return {
            "uses": self.uses,
            "inviter_id": self.inviter_id,
            "inviter_name": self.inviter_name,
            "status": LIVE,
            "seen_ms": to_ms(now),
        }


def _time(ms: int | None) -> datetime | None:
    return from_ms(int(ms)) if ms is not None else None


def invite_key(guild_id: int, code: str) -> str:
    return f"{guild_id}:{code}"


def _from_doc(doc: dict[str, Any]) -> StoredInvite:
    return StoredInvite(
        code=doc["code"],
        uses=int(doc.get("uses") or 0),
        max_uses=int(doc.get("max_uses") or 0),
        inviter_id=doc.get("inviter_id"),
        inviter_name=doc.get("inviter_name"),
        channel_id=doc.get("channel_id"),
        created_at=doc.get("created_at"),
        expires_at=doc.get("expires_at"),
    )


class InviteSnapshotRepository(Repository):
    collection_name = "invites"
    indexes = (IndexModel([("guild_id", ASCENDING), ("status", ASCENDING)]),)

    async def live(self, guild_id: int) -> dict[str, StoredInvite]:
        """Every invite of the guild the snapshot holds as live, by code."""

        async def read() -> dict[str, StoredInvite]:
            cursor = self.collection.find({"guild_id": guild_id, "status": LIVE})
            return {doc["code"]: _from_doc(doc) async for doc in cursor}

        return await with_retry("read invite snapshot", read, self.policy)

    async def store(self, guild_id: int, invites: Iterable[StoredInvite], now: datetime) -> None:
        """Make the snapshot equal to `invites`: upsert each, mark every other live one removed."""
        listed = list(invites)
        ops: list[Any] = [_upsert(guild_id, inv, now) for inv in listed]
        ops.append(
            UpdateMany(
                {"guild_id": guild_id, "status": LIVE, "code": {"$nin": [inv.code for inv in listed]}},
                {"$set": {"status": REMOVED, "removed_ms": to_ms(now)}},
            )
        )
        await self._write("store invite snapshot", ops)

    async def set_uses(self, guild_id: int, invites: Iterable[StoredInvite], now: datetime) -> None:
        """Store the current uses of the given invites (those that changed on a join)."""
        await self._write("store invite uses", [_upsert(guild_id, inv, now) for inv in invites])

    async def created(self, guild_id: int, invite: StoredInvite, now: datetime) -> None:
        """INVITE_CREATE: add the invite; `$max` keeps uses a fetch already saw above the event's 0."""
        current = invite.current(now)
        uses = current.pop("uses")
        op = UpdateOne(
            {"_id": invite_key(guild_id, invite.code)},
            {"$setOnInsert": invite.fixed(guild_id), "$set": current, "$max": {"uses": uses}},
            upsert=True,
        )
        await self._write("store created invite", [op])

    async def import_missing(
        self, guild_id: int, invites: Iterable[StoredInvite], status: str, now: datetime
    ) -> None:
        """Invites from an old bot's cache: only codes the snapshot does not hold yet are added
        (`$setOnInsert` only), so an old file never overwrites newer uses (seed 001)."""
        ops: list[Any] = []
        for inv in invites:
            doc = {**inv.fixed(guild_id), **inv.current(now), "status": status, "imported": "legacy"}
            if status == REMOVED:
                doc["removed_ms"] = to_ms(now)
            ops.append(UpdateOne({"_id": invite_key(guild_id, inv.code)}, {"$setOnInsert": doc}, upsert=True))
        await self._write("import invites", ops)

    async def existing_codes(self, guild_id: int, codes: list[str]) -> set[str]:
        keys = [invite_key(guild_id, code) for code in codes]

        async def read() -> set[str]:
            return {doc["code"] async for doc in self.collection.find({"_id": {"$in": keys}}, {"code": 1})}

        return await with_retry("read invite codes", read, self.policy) if keys else set()

    async def removed(self, guild_id: int, code: str, now: datetime) -> None:
        """INVITE_DELETE: keep the document, marked removed."""
        op = UpdateOne(
            {"_id": invite_key(guild_id, code), "status": LIVE},
            {"$set": {"status": REMOVED, "removed_ms": to_ms(now)}},
        )
        await self._write("mark invite removed", [op])

    async def _write(self, what: str, ops: list[Any]) -> None:
        if ops:
            await with_retry(what, lambda: self.collection.bulk_write(ops, ordered=False), self.policy)


def _upsert(guild_id: int, invite: StoredInvite, now: datetime) -> UpdateOne:
    return UpdateOne(
        {"_id": invite_key(guild_id, invite.code)},
        {"$setOnInsert": invite.fixed(guild_id), "$set": invite.current(now)},
        upsert=True,
    )


@dataclass(frozen=True)
class GuildInviteState:
    guild_id: int
    snapshot_at: datetime | None = None
    vanity_code: str | None = None
    vanity_uses: int | None = None
    permission: str = "unknown"  # "ok" | "missing" | "unknown"
    failed_at: datetime | None = None
    stale: bool = False
    read_ms: int | None = None  # when the invite read the snapshot came from was answered (wall clock)
    # When the stored uses were read (the bot's clock); later than `snapshot_at` when the snapshot's
    # time was held back (a gateway gap): joins in between may already be in the uses.
    uses_at: datetime | None = None

    def snapshot(self, invites: dict[str, StoredInvite]) -> Snapshot:
        return Snapshot(
            invites={code: inv.uses_entry() for code, inv in invites.items()},
            vanity_code=self.vanity_code,
            vanity_uses=self.vanity_uses,
        )


class InviteGuildStateRepository(Repository):
    collection_name = "invite_guilds"

    async def get(self, guild_id: int) -> GuildInviteState:
        doc = await with_retry(
            "read invite state", lambda: self.collection.find_one({"_id": guild_id}), self.policy
        )
        if doc is None:
            return GuildInviteState(guild_id)
        return GuildInviteState(
            guild_id=guild_id,
            snapshot_at=_time(doc.get("snapshot_ms")),
            vanity_code=doc.get("vanity_code"),
            vanity_uses=doc.get("vanity_uses"),
            permission=doc.get("permission") or "unknown",
            failed_at=_time(doc.get("failed_ms")),
            stale=doc.get("stale") == "yes",
            read_ms=doc.get("read_ms"),
            uses_at=_time(doc.get("uses_ms")),
        )

    async def snapshot_stored(
        self, guild_id: int, now: datetime, vanity_code: str | None, vanity_uses: int | None,
        read_ms: int | None = None, uses_at: datetime | None = None,
    ) -> None:
        """A good snapshot was stored at `now` (from the read answered at `read_ms`, wall clock, at
        `uses_at` on the bot's clock): permission ok, no longer stale."""
        changes: dict[str, Any] = {
            "snapshot_ms": to_ms(now),
            "uses_ms": to_ms(uses_at or now),
            "vanity_code": vanity_code,
            "vanity_uses": vanity_uses,
            "permission": "ok",
            "stale": "no",
        }
        if read_ms is not None:
            changes["read_ms"] = read_ms
        await self._set(guild_id, changes, "store invite state")

    async def fetch_failed(self, guild_id: int, now: datetime, *, forbidden: bool) -> None:
        """The live invite list could not be read: the stored snapshot is stale from now on."""
        changes: dict[str, Any] = {"stale": "yes", "failed_ms": to_ms(now)}
        if forbidden:
            changes["permission"] = "missing"
        await self._set(guild_id, changes, "mark invite snapshot stale")

    async def _set(self, guild_id: int, changes: dict[str, Any], what: str) -> None:
        await with_retry(
            what,
            lambda: self.collection.update_one(
                {"_id": guild_id}, {"$set": {**changes, "guild_id": guild_id}}, upsert=True
            ),
            self.policy,
        )
