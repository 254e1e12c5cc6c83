"""The directory of open voice sessions (`voice_sessions`): one entry per member with a session,
`_id: "{guild}:{member}"`, fields `guild_id`, `member_id`, `seq`.

The session's state itself (channel, checkpoint, flags) lives in the member's all-time activity
document (`voice_open`, see `repositories.activity`), so one guarded update there credits the time
and moves the checkpoint. The directory only says which all-time documents to read at a start
without scanning `activity` (nx-27017 answers every query but a lookup by `_id` with a full scan):
an entry is written before the session's first write (the unit's first step) and deleted after its
last (the unit's last step), each guarded by the operation sequence `seq` (`guard_filter`), so a
late, older request never deletes a newer entry or brings back a deleted one.

Shape before (issue 16): the entry held the state itself (channel_id, checkpoint, opened_at, flags,
and while a credit was being applied the intent pending_op/pending/closing). Such an entry is still
read (`Entry.legacy`), its intent applied (`finish`), and converted at the guild's next reconcile
(`entry_convert`); `SessionWrite`/`record` write that shape (kept for tests of the migration).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.storage.retry import OpId, guard_filter, with_retry
from app.storage.writes import Op
from app.tracking.voice import VoiceFlags
from repositories.activity import Credit
from repositories.base import Repository

LEGACY_FIELDS = ("channel_id", "checkpoint", "opened_at", "camera", "stream", "afk", "deaf_excluded",
                 "pending_op", "pending", "closing")
READ_BATCH = 1000


def session_key(guild_id: int, member_id: int) -> str:
    return f"{guild_id}:{member_id}"


@dataclass(frozen=True)
class Intent:
    """Credits not yet confirmed applied, under one op id."""

    op_id: OpId
    credits: tuple[Credit, ...]
    closing: bool = False


@dataclass(frozen=True, slots=True)
class VoiceSession:
    guild_id: int
    member_id: int
    channel_id: int
    checkpoint: int
    opened_at: int
    flags: VoiceFlags = field(default_factory=VoiceFlags)
    intent: Intent | None = None

    @property
    def key(self) -> str:
        return session_key(self.guild_id, self.member_id)

    def state_fields(self) -> dict[str, Any]:
        return {"guild_id": self.guild_id, "member_id": self.member_id, **self.open_fields()}

    def open_fields(self) -> dict[str, Any]:
        """The state kept in the all-time document's `voice_open` (ints only)."""
        return {"channel_id": self.channel_id, "checkpoint": self.checkpoint, "opened_at": self.opened_at,
                **self.flags.to_document()}

    @classmethod
    def from_open(cls, guild_id: int, member_id: int, doc: dict[str, Any]) -> VoiceSession:
        return cls(guild_id, member_id, int(doc["channel_id"]), int(doc["checkpoint"]),
                   int(doc.get("opened_at", doc["checkpoint"])), VoiceFlags.from_document(doc))

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> VoiceSession:
        intent = None
        if doc.get("pending_op"):
            intent = Intent(doc["pending_op"],
                            tuple(Credit.from_document(c) for c in doc.get("pending") or []),
                            bool(doc.get("closing", 0)))
        return cls(int(doc["guild_id"]), int(doc["member_id"]), int(doc["channel_id"]),
                   int(doc["checkpoint"]), int(doc.get("opened_at", doc["checkpoint"])),
                   VoiceFlags.from_document(doc), intent)


@dataclass(frozen=True)
class SessionWrite:
    """The next state of one session: `session` (None: closed) with the intent to record, if any,
    written under the operation sequence `seq` (set when the batch is committed)."""

    key: str
    session: VoiceSession | None
    intent: Intent | None = None
    seq: int = 0

    def operation(self) -> Op:
        if self.seq <= 0:
            raise ValueError("a session write needs its operation sequence")
        where = guard_filter(self.key, "seq", self.seq)
        if self.intent is None:
            if self.session is None:
                return Op("delete_one", where)
            return Op("update_one", where,
                      {"$set": {**self.session.state_fields(), "seq": self.seq},
                       "$unset": {"pending_op": "", "pending": "", "closing": ""}},
                      upsert=True, superseded_ok=True)
        fields_: dict[str, Any] = {
            "pending_op": self.intent.op_id,
            "pending": [c.to_document() for c in self.intent.credits],
            "closing": int(self.intent.closing),
            "seq": self.seq,
        }
        if self.session is not None:
            fields_.update(self.session.state_fields())
        return Op("update_one", where, {"$set": fields_}, upsert=self.session is not None,
                  superseded_ok=self.session is not None)


@dataclass(frozen=True)
class Entry:
    """A directory entry; `legacy`: the session of an entry in the shape before (state inside)."""

    guild_id: int
    member_id: int
    seq: int
    legacy: VoiceSession | None = None

    @property
    def key(self) -> str:
        return session_key(self.guild_id, self.member_id)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Entry:
        seq = doc.get("seq")
        legacy = VoiceSession.from_document(doc) if "checkpoint" in doc else None
        return cls(int(doc["guild_id"]), int(doc["member_id"]), seq if isinstance(seq, int) else 0, legacy)


def entry_upsert(guild_id: int, member_id: int, seq: int) -> Op:
    """List a session before its first write (refused where a newer entry is stored)."""
    return Op("update_one", guard_filter(session_key(guild_id, member_id), "seq", seq),
              {"$set": {"guild_id": guild_id, "member_id": member_id, "seq": seq}},
              upsert=True, superseded_ok=True)


def entry_convert(key: str, seq: int) -> Op:
    """Turn an entry of the shape before into a plain entry (its state is in `activity` now)."""
    return Op("update_one", guard_filter(key, "seq", seq),
              {"$set": {"seq": seq}, "$unset": dict.fromkeys(LEGACY_FIELDS, "")})


def entry_delete(key: str, seq: int) -> Op:
    """Unlist a session after its last write (only an entry older than `seq`)."""
    return Op("delete_one", guard_filter(key, "seq", seq))


class VoiceSessionRepository(Repository):
    collection_name = "voice_sessions"
    indexes = (IndexModel([("guild_id", ASCENDING)]),)

    async def entries(self, guild_id: int) -> list[Entry]:
        """The guild's entries, read in batches (one event-loop turn between batches)."""
        async def read() -> list[Entry]:
            found: list[Entry] = []
            cursor = self.collection.find({"guild_id": guild_id}, batch_size=READ_BATCH)
            async for doc in cursor:
                found.append(Entry.from_document(doc))
                if len(found) % READ_BATCH == 0:
                    await asyncio.sleep(0)
            return found

        return await with_retry("read voice session entries", read, self.policy)

    async def record(self, writes: Sequence[SessionWrite]) -> None:
        """Store each session's next state (and intent) in one unordered bulk write; idempotent."""
        await self.idempotent([w.operation() for w in writes], "record voice sessions")

    async def finish(self, op_id: OpId, keep: Iterable[str], close: Iterable[str]) -> None:
        """The intent `op_id` is applied: clear it on sessions that continue, delete those that close."""
        keep, close = list(keep), list(close)
        ops = []
        if keep:
            ops.append(Op("update_many", {"_id": {"$in": keep}, "pending_op": op_id},
                          {"$unset": {"pending_op": "", "pending": "", "closing": ""}}))
        if close:
            ops.append(Op("delete_many", {"_id": {"$in": close}, "pending_op": op_id}))
        await self.idempotent(ops, "finish voice intents")

    # ---- erase on request (`/data erase`) ---------------------------------------------------
    def member_filter(self, guild_id: int, member_id: int) -> dict[str, Any]:
        """The member's own documents here (backed up, then deleted, by an erase)."""
        return {"guild_id": guild_id, "member_id": member_id}

    async def erase_member(self, guild_id: int, member_id: int) -> None:
        """Delete the member's own documents (idempotent: a replay deletes nothing more)."""
        await self.idempotent([Op("delete_many", self.member_filter(guild_id, member_id))],
                              f"erase a member's {self.collection_name}")

    async def for_guild(self, guild_id: int) -> list[VoiceSession]:
        async def read() -> list[VoiceSession]:
            return [VoiceSession.from_document(d) async for d in self.collection.find({"guild_id": guild_id})]

        return await with_retry("read voice sessions", read, self.policy)

    async def count(self) -> int:
        return await with_retry("count voice sessions", lambda: self.collection.count_documents({}),
                                self.policy)
