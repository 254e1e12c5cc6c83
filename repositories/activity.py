"""Activity counters (`activity`): one all-time document and one document per guild-local day.

`_id: "t:{guild}:{member}"` (kind "total") and `_id: "d:{guild}:{member}:{YYYY-MM-DD}"` (kind
"day") hold the same flat int counters (messages, voice_s, cam_on_s, cam_off_s, stream_s). Every
write adds to a member's total and day documents in ONE guarded unordered bulk write, so the two
never disagree. Message writes are guarded by `msg_seq`, voice writes by `voice_seq` (two writers,
each with an operation sequence that refuses every older write: see `app.storage.retry`). An
operation id that is a string (an intent or outbox entry left by a version before sequences) is
guarded as it was then, by `msg_op` / `voice_op`.

Channel history (issue 19) keeps two more kinds of document here, so that they are written in
the same bulk write as the counts they describe (one request: a crash cannot split them):
`_id: "c:{guild}:{channel}"` (kind "chan") holds `mark`, the highest message id accounted for in
the channel (`$max`); `_id: "f:{guild}:{channel}:{lo}:{n}"` (kind "fill") is one backfill range:
messages with `lo < id < hi` are counted from history, `at` is how far (`$max`), `done` 1 when
finished. Backfill pages are guarded by their own sequence field `fill_seq` (one writer: the
backfill), so live counting and backfill never refuse each other's writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from app.storage.retry import GuardedUpdate, OpId, with_retry
from app.storage.writes import Op
from app.tracking.voice import COUNTERS
from repositories.base import Repository

MESSAGE_GUARD = "msg_seq"
VOICE_GUARD = "voice_seq"
FILL_GUARD = "fill_seq"
LEGACY_GUARDS = {MESSAGE_GUARD: "msg_op", VOICE_GUARD: "voice_op"}
IMPORT_GUARD = "import_op"
METRICS = {"messages": "messages", "voice": "voice_s", "camera": "cam_on_s"}


def total_key(guild_id: int, member_id: int) -> str:
    return f"t:{guild_id}:{member_id}"


def day_key(guild_id: int, member_id: int, day: str) -> str:
    return f"d:{guild_id}:{member_id}:{day}"


@dataclass(frozen=True)
class Credit:
    """Amounts to add to one member's counters on one guild-local day (and to the total)."""

    guild_id: int
    member_id: int
    day: str
    amounts: Mapping[str, int]

    def to_document(self) -> dict[str, Any]:
        return {
            "guild_id": self.guild_id,
            "member_id": self.member_id,
            "day": self.day,
            "amounts": dict(self.amounts),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Credit:
        return cls(
            int(doc["guild_id"]),
            int(doc["member_id"]),
            str(doc["day"]),
            {k: int(v) for k, v in doc["amounts"].items()},
        )


def mark_key(guild_id: int, channel_id: int) -> str:
    return f"c:{guild_id}:{channel_id}"


@dataclass(frozen=True)
class ChannelMark:
    """The highest message id accounted for in a channel (`$max`: never moves back)."""

    guild_id: int
    channel_id: int
    message_id: int

    def update(self) -> GuardedUpdate:
        ident = {"kind": "chan", "guild_id": self.guild_id, "channel_id": self.channel_id}
        return GuardedUpdate(mark_key(self.guild_id, self.channel_id),
                             {"$max": {"mark": self.message_id}, "$set": ident})


@dataclass(frozen=True)
class FillRange:
    """A backfill range of one channel: messages with `lo < id < hi` (hi None: not fixed yet), counted
    through `at`. Every field is written with `$max`/`$min`/identical `$set`s, so writes commute."""

    key: str
    guild_id: int
    channel_id: int
    lo: int
    hi: int | None = None
    at: int = 0
    done: bool = False

    def update(self) -> GuardedUpdate:
        ident = {"kind": "fill", "guild_id": self.guild_id, "channel_id": self.channel_id, "lo": self.lo}
        update: dict[str, dict[str, Any]] = {"$set": ident, "$max": {"at": max(self.at, self.lo)}}
        if self.done:
            update["$max"]["done"] = 1
        if self.hi is not None:
            update["$min"] = {"hi": self.hi}
        return GuardedUpdate(self.key, update)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> FillRange:
        hi = doc.get("hi")
        return cls(str(doc["_id"]), int(doc["guild_id"]), int(doc["channel_id"]), int(doc["lo"]),
                   None if hi is None else int(hi), int(doc.get("at") or 0), bool(doc.get("done")))


@dataclass(frozen=True)
class Counters:
    messages: int = 0
    voice_s: int = 0
    cam_on_s: int = 0
    cam_off_s: int = 0
    stream_s: int = 0

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> Counters:
        doc = doc or {}
        return cls(**{name: int(doc.get(name) or 0) for name in COUNTERS})


def _merge(credits: Iterable[Credit]) -> list[GuardedUpdate]:
    """One update per document: amounts of the same member/day (and member total) summed.

    Every counter is in every `$inc` (0 when unchanged), so no document lacks a counter: `$sum` and
    `$project` over a missing field differ between MongoDB and nx-27017 (see test_mongo_semantics).
    """
    sums: dict[str, dict[str, int]] = {}
    identity: dict[str, dict[str, Any]] = {}
    for c in credits:
        amounts = {k: int(v) for k, v in c.amounts.items() if k in COUNTERS}
        if not any(amounts.values()):
            continue
        for key, ident in (
            (total_key(c.guild_id, c.member_id), {"kind": "total"}),
            (day_key(c.guild_id, c.member_id, c.day), {"kind": "day", "day": c.day}),
        ):
            target = sums.setdefault(key, dict.fromkeys(COUNTERS, 0))
            for name, value in amounts.items():
                target[name] = target.get(name, 0) + value
            identity[key] = {**ident, "guild_id": c.guild_id, "member_id": c.member_id}
    return [GuardedUpdate(key, {"$inc": sums[key], "$set": identity[key]}) for key in sums]


class ActivityRepository(Repository):
    collection_name = "activity"
    indexes = (
        IndexModel([("guild_id", ASCENDING), ("kind", ASCENDING), ("day", ASCENDING)]),
        IndexModel(
            [("guild_id", ASCENDING), ("member_id", ASCENDING), ("kind", ASCENDING), ("day", ASCENDING)]
        ),
        *(
            IndexModel([("guild_id", ASCENDING), ("kind", ASCENDING), (name, DESCENDING)])
            for name in COUNTERS
        ),
    )

    # ---- writes: every one through apply_guarded ------------------------------------------
    async def add_messages(self, credits: Iterable[Credit], op_id: OpId) -> None:
        """Add message counts exactly once under `op_id` (one writer: the message group commit)."""
        await self._apply(credits, op_id, MESSAGE_GUARD, "count messages")

    async def add_messages_marked(
        self, credits: Iterable[Credit], op_id: int, marks: Iterable[ChannelMark], ranges: Iterable[FillRange]
    ) -> None:
        """Live message counts with the channels' marks (and the backfill ranges they close), in one
        bulk write under `op_id` (guard `msg_seq`)."""
        items = [*_merge(credits), *(m.update() for m in marks), *(r.update() for r in ranges)]
        await self.guarded(items, op_id, MESSAGE_GUARD, "count messages")

    async def add_backfill(
        self, credits: Iterable[Credit], op_id: int, fill: FillRange, mark: ChannelMark | None
    ) -> None:
        """One backfill page: its counts and its range's progress (and, when the range is finished,
        the channel's mark), in one bulk write under `op_id` (guard `fill_seq`)."""
        items = [*_merge(credits), fill.update(), *([mark.update()] if mark is not None else [])]
        await self.guarded(items, op_id, FILL_GUARD, "count messages from history")

    async def channel_marks(self) -> tuple[dict[tuple[int, int], int], list[FillRange]]:
        """Every channel's mark, and the backfill ranges not finished yet."""

        async def read() -> tuple[dict[tuple[int, int], int], list[FillRange]]:
            marks = {(int(d["guild_id"]), int(d["channel_id"])): int(d["mark"])
                     async for d in self.collection.find({"kind": "chan"})}
            ranges = [FillRange.from_document(d) async for d in self.collection.find({"kind": "fill"})]
            return marks, [r for r in ranges if not r.done]

        return await with_retry("read channel marks", read, self.policy)

    async def add_voice(self, credits: Iterable[Credit], op_id: OpId) -> None:
        """Add voice seconds exactly once under `op_id` (callers keep one voice write per member)."""
        await self._apply(credits, op_id, VOICE_GUARD, "credit voice time")

    async def import_totals(
        self, guild_id: int, member_id: int, amounts: Mapping[str, int], op_id: str
    ) -> None:
        """Add totals imported from an old bot to the member's all-time document (no day document:
        the old bots kept no days), exactly once under `op_id` (own guard field `import_op`)."""
        inc = {name: int(amounts.get(name, 0)) for name in COUNTERS}
        ident = {"kind": "total", "guild_id": guild_id, "member_id": member_id}
        update = GuardedUpdate(total_key(guild_id, member_id), {"$inc": inc, "$set": ident})
        await self.guarded([update], op_id, IMPORT_GUARD, "import activity totals")

    async def imported(self, keys: list[str], op_ids: list[str]) -> set[str]:
        """Of the total documents `keys`, those already holding one of `op_ids` as their import."""
        query = {"_id": {"$in": keys}, IMPORT_GUARD: {"$in": op_ids}}

        async def read() -> set[str]:
            return {doc["_id"] async for doc in self.collection.find(query, {"_id": 1})}

        return await with_retry("read imported totals", read, self.policy) if keys else set()

    async def _apply(self, credits: Iterable[Credit], op_id: OpId, guard: str, what: str) -> None:
        field = guard if isinstance(op_id, int) else LEGACY_GUARDS[guard]
        await self.guarded(_merge(credits), op_id, field, what)

    # ---- erase on request (`/data erase`) ---------------------------------------------------
    def member_filter(self, guild_id: int, member_id: int) -> dict[str, Any]:
        """The member's own documents here (backed up, then deleted, by an erase)."""
        return {"guild_id": guild_id, "member_id": member_id}

    async def erase_member(self, guild_id: int, member_id: int) -> None:
        """Delete the member's own documents (idempotent: a replay deletes nothing more)."""
        await self.idempotent([Op("delete_many", self.member_filter(guild_id, member_id))],
                              f"erase a member's {self.collection_name}")

    # ---- reads ----------------------------------------------------------------------------
    async def member_counters(self, guild_id: int, member_id: int, since_day: str | None) -> Counters:
        """A member's counters since `since_day` (inclusive; None: all time)."""
        if since_day is None:
            doc = await with_retry(
                "read activity total",
                lambda: self.collection.find_one({"_id": total_key(guild_id, member_id)}),
                self.policy,
            )
            return Counters.from_document(doc)
        pipeline = [
            {
                "$match": {
                    "guild_id": guild_id,
                    "member_id": member_id,
                    "kind": "day",
                    "day": {"$gte": since_day},
                }
            },
            {"$group": {"_id": None, **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
        ]
        rows = await self.aggregate(pipeline, "read activity period")
        return Counters.from_document(rows[0] if rows else None)

    async def daily(self, guild_id: int, member_id: int, since_day: str) -> dict[str, Counters]:
        """Per day since `since_day`: the member's day documents (days without activity absent)."""
        query = {"guild_id": guild_id, "member_id": member_id, "kind": "day", "day": {"$gte": since_day}}

        async def read() -> dict[str, Counters]:
            return {doc["day"]: Counters.from_document(doc) async for doc in self.collection.find(query)}

        return await with_retry("read activity days", read, self.policy)

    async def leaderboard(
        self, guild_id: int, metric: str, since_day: str | None, skip: int, limit: int
    ) -> list[tuple[int, int]]:
        """(member_id, value) with value > 0, highest first, ties by member id."""
        field = METRICS[metric]
        pipeline = [
            *self._values(guild_id, field, since_day),
            {"$match": {"value": {"$gt": 0}}},
            {"$sort": {"value": -1, "member": 1}},
            {"$skip": skip},
            {"$limit": limit},
        ]
        rows = await self.aggregate(pipeline, "read leaderboard")
        return [(int(row["member"]), int(row["value"])) for row in rows]

    async def ranked_count(self, guild_id: int, metric: str, since_day: str | None) -> int:
        """How many members have a value > 0 (the leaderboard's length)."""
        return await self._count_above(guild_id, METRICS[metric], since_day, 0)

    async def rank(self, guild_id: int, member_id: int, metric: str, since_day: str | None) -> int | None:
        """1 + the number of members strictly ahead; None when the member has nothing."""
        field = METRICS[metric]
        own = getattr(await self.member_counters(guild_id, member_id, since_day), field)
        if own <= 0:
            return None
        return 1 + await self._count_above(guild_id, field, since_day, own)

    async def _count_above(self, guild_id: int, field: str, since_day: str | None, value: int) -> int:
        pipeline = [
            *self._values(guild_id, field, since_day),
            {"$match": {"value": {"$gt": value}}},
            {"$count": "n"},
        ]
        rows = await self.aggregate(pipeline, "count leaderboard")
        return int(rows[0]["n"]) if rows else 0

    @staticmethod
    def _values(guild_id: int, field: str, since_day: str | None) -> list[dict[str, Any]]:
        """Pipeline stages giving one row per member: {member: member_id, value}."""
        if since_day is None:
            return [
                {"$match": {"guild_id": guild_id, "kind": "total"}},
                {"$project": {"_id": 0, "member": "$member_id", "value": f"${field}"}},
            ]
        return [
            {"$match": {"guild_id": guild_id, "kind": "day", "day": {"$gte": since_day}}},
            {"$group": {"_id": "$member_id", "value": {"$sum": f"${field}"}}},
            {"$project": {"_id": 0, "member": "$_id", "value": 1}},
        ]

