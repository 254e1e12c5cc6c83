"""Activity counters (`activity`): one all-time document and one document per guild-local day.

`_id: "t:{guild}:{member}"` (kind "total") and `_id: "d:{guild}:{member}:{YYYY-MM-DD}"` (kind
"day") hold the same flat int counters (messages, voice_s, cam_on_s, cam_off_s, stream_s). Every
write adds to a member's total and day documents in ONE guarded unordered bulk write, so the two
never disagree. Message writes are guarded by `msg_seq`, voice writes by `voice_seq` (two writers,
each with an operation sequence that refuses every older write: see `app.storage.retry`). An
operation id that is a string (an intent or outbox entry left by a version before sequences) is
guarded as it was then, by `msg_op` / `voice_op`.

Voice sessions: the all-time document also holds the member's open voice session (`voice_open`:
channel_id, checkpoint, opened_at, flags; absent when none) and the day credits of the last voice
operation applied to it (`voice_last: {op, days: [{day, amounts}]}`), so ONE guarded update credits
the total and moves the checkpoint; the day documents follow in the next write of the same unit,
under the same sequence. `voice_last` is their write-ahead: a crash between the two leaves it, and
the next start applies the days still missing (`voice_states`, `days_missing`, `add_voice_days`).

Channel history (issue 19) keeps two more kinds of document here, so that they are written in
the same bulk write as the counts they describe (one request: a crash cannot split them):
`_id: "c:{guild}:{channel}"` (kind "chan") holds `mark`, the highest message id accounted for in
the channel (`$max`); `_id: "f:{guild}:{channel}:{lo}:{n}"` (kind "fill") is one backfill range:
messages with `lo < id < hi` are counted from history, `at` is how far (`$max`), `done` 1 when
finished. Backfill pages are guarded by their own sequence field `fill_seq` (one writer: the
backfill), so live counting and backfill never refuse each other's writes.

Per-channel message counts: `_id: "c:{guild}:{channel}:{YYYY-MM-DD}"` (kind "chday": `guild_id`,
`channel_id`, `day`, `messages`; no member) count the messages of one channel on one guild-local
day (a thread's under its parent channel). They are `$inc`ed in the same guarded bulk write as the
members' counts of the same messages (`msg_seq` live, `fill_seq` from history), so they are
refused, retried and replayed exactly like them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from app.storage.retry import GuardedUpdate, OpId, guard_holds, with_retry
from app.storage.writes import Op, Write
from app.tracking.voice import COUNTERS
from repositories.base import Repository, in_batches

MESSAGE_GUARD = "msg_seq"
VOICE_GUARD = "voice_seq"
FILL_GUARD = "fill_seq"
LEGACY_GUARDS = {MESSAGE_GUARD: "msg_op", VOICE_GUARD: "voice_op"}
IMPORT_GUARD = "import_op"
CHANNEL_DAY = "chday"  # kind of a channel's messages on one day (never matched by "total"/"day" queries)
METRICS = {"messages": "messages", "voice": "voice_s", "camera": "cam_on_s", "streaming": "stream_s"}
READ_CHUNK = 500  # documents read by `_id` per query (and handled per event-loop turn)


def day_range(since_day: str, until_day: str | None) -> dict[str, str]:
    """The filter on `day` of the days from `since_day` (inclusive) to `until_day` (exclusive; None:
    no end). Day strings `YYYY-MM-DD` compare as the days do."""
    return {"$gte": since_day} if until_day is None else {"$gte": since_day, "$lt": until_day}


def total_key(guild_id: int, member_id: int) -> str:
    return f"t:{guild_id}:{member_id}"


def day_key(guild_id: int, member_id: int, day: str) -> str:
    return f"d:{guild_id}:{member_id}:{day}"


@dataclass(frozen=True, slots=True)
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


def channel_day_key(guild_id: int, channel_id: int, day: str) -> str:
    return f"c:{guild_id}:{channel_id}:{day}"


@dataclass(frozen=True)
class ChannelCount:
    """Messages to add to one channel's count on one guild-local day (a thread's: its parent's)."""

    guild_id: int
    channel_id: int
    day: str
    messages: int

    def to_document(self) -> dict[str, Any]:
        return {"guild_id": self.guild_id, "channel_id": self.channel_id, "day": self.day,
                "messages": self.messages}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ChannelCount:
        return cls(int(doc["guild_id"]), int(doc["channel_id"]), str(doc["day"]), int(doc["messages"]))


def channel_updates(counts: Iterable[ChannelCount]) -> list[GuardedUpdate]:
    """One `$inc` per channel-day document (counts of the same channel and day summed)."""
    sums: dict[tuple[int, int, str], int] = {}
    for c in counts:
        if c.messages:
            key = (c.guild_id, c.channel_id, c.day)
            sums[key] = sums.get(key, 0) + int(c.messages)
    return [GuardedUpdate(channel_day_key(g, ch, day),
                          {"$inc": {"messages": n},
                           "$set": {"kind": CHANNEL_DAY, "guild_id": g, "channel_id": ch, "day": day}})
            for (g, ch, day), n in sums.items()]


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


@dataclass(frozen=True, slots=True)
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


def _day_updates(credits: Iterable[Credit]) -> list[GuardedUpdate]:
    return [u for u in _merge(credits) if u.update["$set"]["kind"] == "day"]


@dataclass(frozen=True, slots=True)
class VoiceTotal:
    """One member's voice write to the all-time document: the credits (all of one member) and the
    session after it (`open`: the `voice_open` fields; None: no session any more)."""

    guild_id: int
    member_id: int
    credits: tuple[Credit, ...]
    open: Mapping[str, int] | None


@dataclass(frozen=True)
class VoiceState:
    """What an all-time document holds about voice: the guard, the open session, the last days."""

    member_id: int
    voice_seq: int
    open: Mapping[str, Any] | None
    last_op: int | None
    last_days: tuple[Credit, ...]


def voice_updates(items: Iterable[VoiceTotal], seq: int) -> tuple[list[GuardedUpdate], list[GuardedUpdate]]:
    """Per member: the update of the all-time document (credit, session state, the day credits as
    `voice_last`) and the updates of the day documents, for operation `seq` (guard added later)."""
    totals: list[GuardedUpdate] = []
    days: list[GuardedUpdate] = []
    for item in items:
        inc = dict.fromkeys(COUNTERS, 0)
        by_day: dict[str, dict[str, int]] = {}
        for c in item.credits:
            day = by_day.setdefault(c.day, dict.fromkeys(COUNTERS, 0))
            for name, value in c.amounts.items():
                if name in inc:
                    inc[name] += int(value)
                    day[name] += int(value)
        last = []
        for name, amounts in by_day.items():
            if any(amounts.values()):
                last.append({"day": name, "amounts": {k: v for k, v in amounts.items() if k != "messages"}})
                ident = {"kind": "day", "day": name, "guild_id": item.guild_id, "member_id": item.member_id}
                days.append(GuardedUpdate(day_key(item.guild_id, item.member_id, name),
                                          {"$inc": amounts, "$set": ident}))
        fields: dict[str, Any] = {"kind": "total", "guild_id": item.guild_id, "member_id": item.member_id,
                                  "voice_last": {"op": seq, "days": last}}
        update: dict[str, Any] = {"$inc": inc, "$set": fields}
        if item.open is None:
            update["$unset"] = {"voice_open": ""}
        else:
            fields["voice_open"] = dict(item.open)
        totals.append(GuardedUpdate(total_key(item.guild_id, item.member_id), update))
    return totals, days


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
    async def add_messages(self, credits: Iterable[Credit], op_id: OpId,
                           channels: Iterable[ChannelCount] = ()) -> None:
        """Add message counts (and the channels' counts of the same messages) exactly once under
        `op_id` (one writer: the message group commit)."""
        field = MESSAGE_GUARD if isinstance(op_id, int) else LEGACY_GUARDS[MESSAGE_GUARD]
        await self.guarded([*_merge(credits), *channel_updates(channels)], op_id, field, "count messages")

    async def add_messages_marked(
        self, credits: Iterable[Credit], op_id: int, marks: Iterable[ChannelMark],
        ranges: Iterable[FillRange], channels: Iterable[ChannelCount] = (),
    ) -> None:
        """Live message counts, the channels' counts of the same messages and the channels' marks (and
        the backfill ranges they close), in one bulk write under `op_id` (guard `msg_seq`)."""
        items = [*_merge(credits), *channel_updates(channels), *(m.update() for m in marks),
                 *(r.update() for r in ranges)]
        await self.guarded(items, op_id, MESSAGE_GUARD, "count messages")

    async def add_backfill(
        self, credits: Iterable[Credit], op_id: int, fill: FillRange, mark: ChannelMark | None,
        channels: Iterable[ChannelCount] = (),
    ) -> None:
        """One backfill page: its counts (members' and channel's) and its range's progress (and, when
        the range is finished, the channel's mark), in one bulk write under `op_id` (guard `fill_seq`)."""
        items = [*_merge(credits), *channel_updates(channels), fill.update(),
                 *([mark.update()] if mark is not None else [])]
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

    def voice_writes(self, totals: list[GuardedUpdate], days: list[GuardedUpdate], seq: int) -> list[Write]:
        """The writes of one voice unit (see `voice_updates`): the all-time documents, then the day
        documents, each guarded by `voice_seq` under `seq`. They must be applied in this order (a
        `Writer` unit is)."""
        writes = [Write.guarded(self.collection_name, totals, seq, VOICE_GUARD)]
        if days:
            writes.append(Write.guarded(self.collection_name, days, seq, VOICE_GUARD))
        return writes

    async def add_voice_days(self, credits: Iterable[Credit], op_id: int) -> None:
        """Apply the day documents of a voice operation whose all-time write landed (exactly once)."""
        await self.guarded(_day_updates(credits), op_id, VOICE_GUARD, "credit voice days")

    async def voice_states(self, guild_id: int, member_ids: Iterable[int]) -> dict[int, VoiceState]:
        """The voice fields of these members' all-time documents (read by `_id`, in batches)."""
        keys = [total_key(guild_id, m) for m in member_ids]
        fields = {"member_id": 1, VOICE_GUARD: 1, "voice_open": 1, "voice_last": 1}
        found: dict[int, VoiceState] = {}
        for i in range(0, len(keys), READ_CHUNK):
            chunk = keys[i:i + READ_CHUNK]

            async def read(chunk: list[str] = chunk) -> list[dict[str, Any]]:
                return await self.collection.find({"_id": {"$in": chunk}}, fields).to_list(None)

            for doc in await with_retry("read voice states", read, self.policy):
                state = _voice_state(guild_id, doc)
                found[state.member_id] = state
            await asyncio.sleep(0)
        return found

    async def days_missing(self, credits: Iterable[Credit], op_id: int) -> list[Credit]:
        """Of the day credits of operation `op_id`, those whose day document does not hold it yet."""
        credits = list(credits)
        keys = [day_key(c.guild_id, c.member_id, c.day) for c in credits]
        held: set[str] = set()
        for i in range(0, len(keys), READ_CHUNK):
            chunk = keys[i:i + READ_CHUNK]

            async def read(chunk: list[str] = chunk) -> list[dict[str, Any]]:
                return await self.collection.find({"_id": {"$in": chunk}}, {VOICE_GUARD: 1}).to_list(None)

            for doc in await with_retry("read voice days", read, self.policy):
                if guard_holds(doc.get(VOICE_GUARD), op_id):
                    held.add(doc["_id"])
            await asyncio.sleep(0)
        return [c for c, key in zip(credits, keys, strict=True) if key not in held]

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
        """The member's own documents here that hold data (backed up, then emptied, by an erase):
        not the tombstones an earlier erase left, unless counted into again since."""
        holds_data = [{"erased": {"$exists": False}}, {"voice_open": {"$exists": True}},
                      *({name: {"$gt": 0}} for name in COUNTERS)]
        return {"guild_id": guild_id, "member_id": member_id, "$or": holds_data}

    async def erase_member(self, guild_id: int, member_id: int) -> None:
        """Empty the member's documents, leaving tombstones (idempotent: a replay changes nothing).

        A tombstone keeps its `_id`, guild, member, day and write guards, with every counter 0 and
        no voice session: a write of the member still in flight (a request the network held, whose
        retry was acknowledged before the erase) then meets its guard and is refused. Deleting the
        documents would take the guards with them, and such a write would count again."""
        emptied = {"$set": {**dict.fromkeys(COUNTERS, 0), "erased": True},
                   "$unset": {"voice_open": "", "voice_last": ""}}
        await self.idempotent([Op("update_many", {"guild_id": guild_id, "member_id": member_id}, emptied)],
                              f"erase a member's {self.collection_name}")

    # ---- reads ----------------------------------------------------------------------------
    async def member_counters(self, guild_id: int, member_id: int, since_day: str | None,
                              until_day: str | None = None) -> Counters:
        """A member's counters since `since_day` (inclusive; None: all time), before `until_day`
        (exclusive; None: no end)."""
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
                    "day": day_range(since_day, until_day),
                }
            },
            {"$group": {"_id": None, **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
        ]
        rows = await self.aggregate(pipeline, "read activity period")
        return Counters.from_document(rows[0] if rows else None)

    async def totals_of(self, guild_id: int, member_ids: Iterable[int]) -> dict[int, Counters]:
        """The all-time counters of these members (read by `_id`, in batches; a member without a
        document has none: zeros). For the medians of `/invites retention` until the ranks are built."""
        members = sorted(set(member_ids))
        keys = [total_key(guild_id, m) for m in members]
        fields = {name: 1 for name in (*COUNTERS, "member_id")}
        found = dict.fromkeys(members, Counters())
        for i in range(0, len(keys), READ_CHUNK):
            chunk = keys[i:i + READ_CHUNK]

            async def read(chunk: list[str] = chunk) -> list[dict[str, Any]]:
                return await self.collection.find({"_id": {"$in": chunk}}, fields).to_list(None)

            for doc in await with_retry("read activity totals", read, self.policy):
                found[int(doc["member_id"])] = Counters.from_document(doc)
            await asyncio.sleep(0)
        return found

    async def scan(
        self, guild_id: int, since_day: str, batch: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every all-time document of the guild, then its day documents from `since_day` on, in
        lists of up to `batch` (counters, member, day and both guard sequences only). For the
        in-memory ranks (`app.tracking.ranks`); one pass, no retry: a failed pass is started over."""
        fields = {name: 1 for name in (*COUNTERS, "member_id", "day", MESSAGE_GUARD, VOICE_GUARD)}
        for query in ({"guild_id": guild_id, "kind": "total"},
                      {"guild_id": guild_id, "kind": "day", "day": {"$gte": since_day}}):
            async for rows in in_batches(self.collection.find(query, fields, batch_size=batch), batch):
                yield rows

    async def scan_days(
        self, guild_id: int, since_day: str, until_day: str, batch: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The guild's day documents of the days from `since_day` (inclusive) to `until_day`
        (exclusive), in lists of up to `batch` (counters, member and day only; index `{guild_id,
        kind, day}`). For the ranks in memory (`app.tracking.ranks`): a season's board reaching
        before the days mirrored, and the active days before the mirror; one pass, no retry: a
        failed pass is started over."""
        fields = {name: 1 for name in (*COUNTERS, "member_id", "day")}
        query = {"guild_id": guild_id, "kind": "day", "day": day_range(since_day, until_day)}
        async for rows in in_batches(self.collection.find(query, fields, batch_size=batch), batch):
            yield rows

    async def member_totals(self, guild_id: int, since_day: str | None) -> list[tuple[int, Counters]]:
        """Every member's counters since `since_day` (inclusive; None: all time), members with only
        zeros left out. For the CSV export when the ranks in memory are not built."""
        if since_day is None:
            fields = {name: 1 for name in (*COUNTERS, "member_id")}

            async def read() -> list[dict[str, Any]]:
                query = {"guild_id": guild_id, "kind": "total"}
                return [doc async for doc in self.collection.find(query, fields, batch_size=1000)]

            rows = await with_retry("read activity totals", read, self.policy)
        else:
            pipeline = [
                {"$match": {"guild_id": guild_id, "kind": "day", "day": {"$gte": since_day}}},
                {"$group": {"_id": "$member_id", **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
                {"$project": {"member_id": "$_id", **dict.fromkeys(COUNTERS, 1)}},
            ]
            rows = await self.aggregate(pipeline, "read activity period totals")
        totals = [(int(row["member_id"]), Counters.from_document(row)) for row in rows]
        return [(member, counters) for member, counters in totals if counters != Counters()]

    async def guild_days(self, guild_id: int, since_day: str, until_day: str) -> dict[str, Counters]:
        """Per day from `since_day` to `until_day` (inclusive): the sum of every member's day
        document (days without activity absent). One aggregation over the guild's day documents of
        those days (index `{guild_id, kind, day}`): it reads the period's member-days, not the
        guild's history. For `/server stats` when the ranks in memory are not built."""
        pipeline = [
            {"$match": {"guild_id": guild_id, "kind": "day", "day": {"$gte": since_day, "$lte": until_day}}},
            {"$group": {"_id": "$day", **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
        ]
        rows = await self.aggregate(pipeline, "read a guild's days")
        return {str(row["_id"]): Counters.from_document(row) for row in rows}

    async def channel_scan(
        self, guild_id: int, since_day: str, batch: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The guild's channel-day documents from `since_day` on, in lists of up to `batch` (channel,
        day, messages and both message guard sequences). For `app.tracking.channel_stats`; one pass,
        no retry: a failed pass is started over."""
        fields = {"channel_id": 1, "day": 1, "messages": 1, MESSAGE_GUARD: 1, FILL_GUARD: 1}
        query = {"guild_id": guild_id, "kind": CHANNEL_DAY, "day": {"$gte": since_day}}
        async for rows in in_batches(self.collection.find(query, fields, batch_size=batch), batch):
            yield rows

    async def channel_totals(self, guild_id: int, since_day: str | None,
                             until_day: str | None = None) -> dict[int, int]:
        """Messages per channel from `since_day` to `until_day` (inclusive; None: no bound; channels
        without any absent). One aggregation over the period's channel-day documents (index
        `{guild_id, kind, day}`). For `/server stats` until the guild's channel table is built, and
        the CSV export."""
        match: dict[str, Any] = {"guild_id": guild_id, "kind": CHANNEL_DAY}
        days = {op: day for op, day in (("$gte", since_day), ("$lte", until_day)) if day is not None}
        if days:
            match["day"] = days
        pipeline = [
            {"$match": match},
            {"$group": {"_id": "$channel_id", "messages": {"$sum": "$messages"}}},
        ]
        rows = await self.aggregate(pipeline, "read a guild's channels")
        return {int(row["_id"]): int(row["messages"]) for row in rows if int(row["messages"] or 0) > 0}

    async def days_between(
        self, guild_id: int, member_id: int, first: date, last: date
    ) -> dict[str, Counters]:
        """The member's day documents from `first` to `last` (inclusive; days without activity absent),
        read by `_id` (the keys are known), in batches: a lookup, not a query, on any server (the
        embedded database answers other queries with a scan of the collection)."""
        span = (last - first).days + 1
        keys = [day_key(guild_id, member_id, (first + timedelta(days=i)).isoformat()) for i in range(span)]
        fields = {name: 1 for name in (*COUNTERS, "day")}
        found: dict[str, Counters] = {}
        for chunk in (keys[i:i + READ_CHUNK] for i in range(0, len(keys), READ_CHUNK)):

            async def read(chunk: list[str] = chunk) -> list[dict[str, Any]]:
                return await self.collection.find({"_id": {"$in": chunk}}, fields).to_list(None)

            for doc in await with_retry("read a member's days", read, self.policy):
                found[str(doc["day"])] = Counters.from_document(doc)
        return found

    async def daily(self, guild_id: int, member_id: int, since_day: str | None) -> dict[str, Counters]:
        """Per day since `since_day` (None: every day): the member's day documents (days without
        activity absent). One query on the `(guild_id, member_id, kind, day)` index."""
        query: dict[str, Any] = {"guild_id": guild_id, "member_id": member_id, "kind": "day"}
        if since_day is not None:
            query["day"] = {"$gte": since_day}
        fields = {name: 1 for name in (*COUNTERS, "day")}

        async def read() -> dict[str, Counters]:
            cursor = self.collection.find(query, fields)
            return {doc["day"]: Counters.from_document(doc) async for doc in cursor}

        return await with_retry("read activity days", read, self.policy)

    async def leaderboard(
        self, guild_id: int, metric: str, since_day: str | None, skip: int, limit: int,
        until_day: str | None = None,
    ) -> list[tuple[int, int]]:
        """(member_id, value) with value > 0, highest first, ties by member id."""
        field = METRICS[metric]
        pipeline = [
            *self._values(guild_id, field, since_day, until_day),
            {"$match": {"value": {"$gt": 0}}},
            {"$sort": {"value": -1, "member": 1}},
            {"$skip": skip},
            {"$limit": limit},
        ]
        rows = await self.aggregate(pipeline, "read leaderboard")
        return [(int(row["member"]), int(row["value"])) for row in rows]

    async def ranked_count(self, guild_id: int, metric: str, since_day: str | None,
                           until_day: str | None = None) -> int:
        """How many members have a value > 0 (the leaderboard's length)."""
        return await self._count_above(guild_id, METRICS[metric], since_day, 0, until_day)

    async def rank(self, guild_id: int, member_id: int, metric: str, since_day: str | None,
                   until_day: str | None = None) -> int | None:
        """1 + the number of members strictly ahead; None when the member has nothing."""
        field = METRICS[metric]
        own = getattr(await self.member_counters(guild_id, member_id, since_day, until_day), field)
        if own <= 0:
            return None
        return 1 + await self._count_above(guild_id, field, since_day, own, until_day)

    async def _count_above(self, guild_id: int, field: str, since_day: str | None, value: int,
                           until_day: str | None = None) -> int:
        pipeline = [
            *self._values(guild_id, field, since_day, until_day),
            {"$match": {"value": {"$gt": value}}},
            {"$count": "n"},
        ]
        rows = await self.aggregate(pipeline, "count leaderboard")
        return int(rows[0]["n"]) if rows else 0

    @staticmethod
    def _values(guild_id: int, field: str, since_day: str | None,
                until_day: str | None = None) -> list[dict[str, Any]]:
        """Pipeline stages giving one row per member: {member: member_id, value}."""
        if since_day is None:
            return [
                {"$match": {"guild_id": guild_id, "kind": "total"}},
                {"$project": {"_id": 0, "member": "$member_id", "value": f"${field}"}},
            ]
        return [
            {"$match": {"guild_id": guild_id, "kind": "day", "day": day_range(since_day, until_day)}},
            {"$group": {"_id": "$member_id", "value": {"$sum": f"${field}"}}},
            {"$project": {"_id": 0, "member": "$_id", "value": 1}},
        ]



def _voice_state(guild_id: int, doc: Mapping[str, Any]) -> VoiceState:
    member_id = int(doc["member_id"])
    seq = doc.get(VOICE_GUARD)
    last = doc.get("voice_last") or {}
    op = last.get("op")
    days = tuple(Credit(guild_id, member_id, str(d["day"]), {k: int(v) for k, v in d["amounts"].items()})
                 for d in last.get("days") or [])
    return VoiceState(member_id, seq if isinstance(seq, int) else 0, doc.get("voice_open"),
                      op if isinstance(op, int) else None, days)
