"""Open voice sessions (`voice_sessions`): one document per member in voice, `_id: "{guild}:{member}"`.

Fields: guild_id, member_id, channel_id, checkpoint (epoch ms up to which time is credited),
opened_at (epoch ms), flags camera/stream/afk/deaf_excluded (ints 0/1), and while a credit is
being applied: pending_op (the operation sequence) and pending (the credits, a list of
subdocuments) plus closing (1 when the session ends once the credit is applied); `seq`, the
operation sequence of the last state written: a state write carries its own sequence and is
refused where a newer one is stored, so a late request never puts back an older checkpoint.

The session write and the counter write live in two collections without a transaction, so the
session document records the intent first (new checkpoint + pending credits in one `$set`), the
guarded counter write follows with the same op id, then the intent is cleared. A crash in between
leaves the intent, which is applied again on start: guarded, so exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.storage.retry import OpId, guard_filter, with_retry
from app.storage.writes import Op
from app.tracking.voice import VoiceFlags
from repositories.activity import Credit
from repositories.base import Repository


def session_key(guild_id: int, member_id: int) -> str:
    return f"{guild_id}:{member_id}"


@dataclass(frozen=True)
class Intent:
    """Credits not yet confirmed applied, under one op id."""

    op_id: OpId
    credits: tuple[Credit, ...]
    closing: bool = False


@dataclass(frozen=True)
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
        return {"guild_id": self.guild_id, "member_id": self.member_id, "channel_id": self.channel_id,
                "checkpoint": self.checkpoint, "opened_at": self.opened_at, **self.flags.to_document()}

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


class VoiceSessionRepository(Repository):
    collection_name = "voice_sessions"
    indexes = (IndexModel([("guild_id", ASCENDING)]),)

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
