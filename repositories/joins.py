"""Member joins (`joins`): one document per join, and every invite count derived from them.

`_id: "{guild_id}:{member_id}:{joined_at_ms}"` (Discord's join time), so the live path and the
downtime reconciliation produce the same key for the same join and a retried or repeated write
lands on the same document. Fields:

- `guild_id`, `member_id`, `member_name`, `joined_at`, `account_created_at`, `recorded_at`
- `source`: invite | vanity | downtime | unknown | ambiguous; `code`, `inviter_id`,
  `inviter_name`, `candidates` (codes whose uses went up when it could not be decided),
  `reason` ("" or why it is unknown: missing_permissions, fetch_failed, no_snapshot,
  joined_while_offline, no_invite_use), `hint` (no invite use rose and the guild is in Server
  Discovery or has its widget on: discovery | widget | discovery_or_widget; never a credit)
- `awaiting`: "snapshot" while the invite list could not be read (settled by the next good fetch)
- `counted`: "first" (the member's first recorded join here) or "rejoin"
- `credit_to`: the inviter credited (first joins attributed to an invite with an inviter), else 0
- `fake_reason`: "" | young_account | self_invite | left_quickly | repeat_joiner (the last two
  only when the guild turned those rules on)
- `stay`: "open" | "closed", `left_ms`; `member_status`: "present" | "left" (kept equal on all
  of a member's joins, so the credited first join knows whether the member is still here) and
  `status_ms`, the version of that status: a join's `joined_ms` for "present", the ended join's
  `joined_ms + 1` for "left". A status update applies only to documents with an older version,
  so a join record replayed (or landing late) after the member's leave never marks them present
  again, and a late leave never hides a later rejoin.
- `reset_id`: "" or the backup id of the reset that cleared it
- `converted_by`: the staff member credited with this member's conversion (0 none), `conversion_ms`
- `imported`: "legacy" on joins imported from an old bot's join history (`scripts.import_legacy`)

Times fixed at insert are datetimes; times set later are epoch milliseconds (`*_ms`), and so is
`joined_ms`, the copy of `joined_at` that ranges and sorts use.

Counts are never stored: regular / fake / left per inviter are aggregations over these
documents, so no retried write can double one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne

from app.storage.retry import with_retry
from app.storage.writes import Op
from app.wiring.clock import from_ms, to_ms
from repositories.base import Repository, in_batches

FIRST = "first"
REJOIN = "rejoin"
ATTRIBUTED_SOURCES = ("invite", "vanity", "downtime")
FAKE_REASONS = ("young_account", "self_invite", "left_quickly", "repeat_joiner")
BATCH = 500
FIGURE_FIELDS = ("member_id", "credit_to", "reset_id", "fake_reason", "member_status", "joined_ms",
                 "joined_at", "code", "left_ms")
STAY_FIELDS = ("member_id", "credit_to", "code", "member_status", "joined_ms", "joined_at", "left_ms")


class JoinWatch(Protocol):
    """Told of every write of this repository, after it returned or failed (the in-memory invite
    boards read those documents back: `app.tracking.invite_boards`)."""

    def keys_written(self, keys: Iterable[str]) -> None: ...

    def member_written(self, guild_id: int, member_id: int) -> None: ...


class NoWatch:
    def keys_written(self, keys: Iterable[str]) -> None:
        pass

    def member_written(self, guild_id: int, member_id: int) -> None:
        pass


def join_key(guild_id: int, member_id: int, joined_at: datetime) -> str:
    return f"{guild_id}:{member_id}:{to_ms(joined_at)}"


@dataclass(frozen=True)
class Attribution:
    source: str
    code: str | None = None
    inviter_id: int | None = None
    inviter_name: str | None = None
    candidates: tuple[str, ...] = ()
    reason: str = ""
    awaiting: str = ""
    hint: str = ""  # a join without an invite use: discovery | widget | discovery_or_widget | ""

    def fields(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "code": self.code,
            "inviter_id": self.inviter_id,
            "inviter_name": self.inviter_name,
            "candidates": list(self.candidates),
            "reason": self.reason,
            "awaiting": self.awaiting,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class JoinRecord:
    guild_id: int
    member_id: int
    member_name: str
    joined_at: datetime
    account_created_at: datetime
    attribution: Attribution
    counted: str
    fake_reason: str
    recorded_at: datetime

    @property
    def key(self) -> str:
        return join_key(self.guild_id, self.member_id, self.joined_at)

    @property
    def credit_to(self) -> int:
        return credit_for(self.counted, self.attribution)

    def document(self) -> dict[str, Any]:
        return {
            "guild_id": self.guild_id,
            "member_id": self.member_id,
            "member_name": self.member_name,
            "joined_at": self.joined_at,
            "joined_ms": to_ms(self.joined_at),
            "account_created_at": self.account_created_at,
            "recorded_at": self.recorded_at,
            **self.attribution.fields(),
            "counted": self.counted,
            "credit_to": self.credit_to,
            "fake_reason": self.fake_reason,
            "stay": "open",
            "left_ms": None,
            "member_status": "present",
            "status_ms": to_ms(self.joined_at),
            "reset_id": "",
            "converted_by": 0,
            "conversion_ms": None,
        }


def _with_joined_ms(doc: dict[str, Any]) -> dict[str, Any]:
    """`joined_ms` as the figures read it: the stored copy, else `joined_at` (older documents)."""
    if doc.get("joined_ms") is None:
        doc["joined_ms"] = to_ms(doc["joined_at"])
    return doc


def credit_for(counted: str, attribution: Attribution) -> int:
    if counted != FIRST or attribution.source not in ATTRIBUTED_SOURCES:
        return 0
    return int(attribution.inviter_id or 0)


@dataclass
class InviterCounts:
    regular: int = 0
    left: int = 0
    fake: int = 0


@dataclass(frozen=True)
class StoredJoin:
    key: str
    member_id: int
    member_name: str
    joined_at: datetime
    account_created_at: datetime | None
    source: str
    code: str | None
    inviter_id: int | None
    inviter_name: str | None
    candidates: tuple[str, ...]
    reason: str
    counted: str
    fake_reason: str
    member_status: str
    left_at: datetime | None
    converted_by: int
    hint: str = ""
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StoredJoin:
        return cls(
            key=doc["_id"],
            member_id=doc["member_id"],
            member_name=doc.get("member_name") or str(doc["member_id"]),
            joined_at=doc["joined_at"],
            account_created_at=doc.get("account_created_at"),
            source=doc.get("source") or "unknown",
            code=doc.get("code"),
            inviter_id=doc.get("inviter_id"),
            inviter_name=doc.get("inviter_name"),
            candidates=tuple(doc.get("candidates") or ()),
            reason=doc.get("reason") or "",
            counted=doc.get("counted") or FIRST,
            fake_reason=doc.get("fake_reason") or "",
            member_status=doc.get("member_status") or "present",
            left_at=from_ms(doc["left_ms"]) if doc.get("left_ms") is not None else None,
            converted_by=int(doc.get("converted_by") or 0),
            hint=doc.get("hint") or "",
            raw=doc,
        )


class JoinRepository(Repository):
    collection_name = "joins"
    watch: JoinWatch = NoWatch()
    indexes = (
        IndexModel([("guild_id", ASCENDING), ("member_id", ASCENDING), ("joined_ms", ASCENDING)]),
        IndexModel([("guild_id", ASCENDING), ("credit_to", ASCENDING), ("joined_ms", ASCENDING)]),
        IndexModel([("guild_id", ASCENDING), ("code", ASCENDING)]),
        IndexModel([("guild_id", ASCENDING), ("awaiting", ASCENDING)]),
        # `/server stats`: the joins and the leaves of a period, read by guild and time range
        IndexModel([("guild_id", ASCENDING), ("joined_ms", ASCENDING)]),
        IndexModel([("guild_id", ASCENDING), ("left_ms", ASCENDING)]),
    )

    # ---- writes ---------------------------------------------------------------------------------
    async def record(self, join: JoinRecord) -> None:
        """Store a join once (`$setOnInsert`: a repeat keeps the first), and mark the member present
        (unless a leave after this join is recorded: see `mark_present`)."""
        try:
            await with_retry(
                "record join",
                lambda: self.collection.update_one(
                    {"_id": join.key}, {"$setOnInsert": join.document()}, upsert=True
                ),
                self.policy,
            )
        finally:
            self.watch.keys_written([join.key])
        await self.mark_present(join.guild_id, join.member_id, join.joined_at)

    async def mark_present(self, guild_id: int, member_id: int, joined_at: datetime) -> None:
        """The member is here since the join at `joined_at` (idempotent; refused once a leave
        after that join, or a later join, is recorded)."""
        await self._set_member_status(guild_id, member_id, "present", to_ms(joined_at))

    async def import_legacy(self, documents: dict[str, dict[str, Any]]) -> None:
        """Insert joins imported from an old bot, each once (`$setOnInsert` on its key): a repeat
        import, or a join the bot recorded itself under the same key, is left as it is."""
        ops = [UpdateOne({"_id": key}, {"$setOnInsert": doc}, upsert=True) for key, doc in documents.items()]
        try:
            for start in range(0, len(ops), BATCH):
                chunk = ops[start : start + BATCH]
                await with_retry(
                    "import joins",
                    lambda chunk=chunk: self.collection.bulk_write(chunk, ordered=False),
                    self.policy,
                )
        finally:
            self.watch.keys_written(documents)

    async def known_members(self, guild_id: int, member_ids: list[int]) -> dict[int, str]:
        """Of `member_ids`, those with a join the bot recorded itself (not imported), with the
        member_status of their latest such join."""

        async def read() -> dict[int, str]:
            query = {"guild_id": guild_id, "member_id": {"$in": member_ids}, "imported": {"$ne": "legacy"}}
            fields = {"member_id": 1, "member_status": 1}
            cursor = self.collection.find(query, fields).sort("joined_ms", ASCENDING)
            return {int(doc["member_id"]): doc.get("member_status") or "present" async for doc in cursor}

        return await with_retry("read known members", read, self.policy) if member_ids else {}

    async def has_imports(self, guild_id: int) -> bool:
        doc = await with_retry(
            "read imported joins",
            lambda: self.collection.find_one({"guild_id": guild_id, "imported": "legacy"}),
            self.policy,
        )
        return doc is not None

    async def settle_awaiting(
        self, key: str, attribution: Attribution, credit_to: int, fake_reason: str
    ) -> None:
        """A join recorded while invites could not be read gets its outcome (only once)."""
        changes = {**attribution.fields(), "credit_to": credit_to, "fake_reason": fake_reason}
        try:
            await with_retry(
                "settle join",
                lambda: self.collection.update_one({"_id": key, "awaiting": "snapshot"}, {"$set": changes}),
                self.policy,
            )
        finally:
            self.watch.keys_written([key])

    async def left(
        self, guild_id: int, member_id: int, now: datetime, *, joined_before: datetime | None = None
    ) -> int:
        """The member left at `now`: close the open stay, mark all their joins `left`. Returns stays
        closed. With `joined_before` (a leave taken up again from the invite journal), a stay that
        began after it is a later rejoin and stays open."""
        match: dict[str, Any] = {"guild_id": guild_id, "member_id": member_id, "stay": "open"}
        if joined_before is not None:
            match["joined_ms"] = {"$lte": to_ms(joined_before)}
        try:
            result = await with_retry(
                "record leave",
                lambda: self.collection.update_many(
                    match,
                    {"$set": {"stay": "closed", "left_ms": to_ms(now)}},
                ),
                self.policy,
            )
        finally:
            self.watch.member_written(guild_id, member_id)
        latest = await self.latest_for_member(guild_id, member_id)
        if latest is not None:  # the leave ends the latest join: its version is just after it
            joined_ms = int(latest.raw.get("joined_ms") or to_ms(latest.joined_at))  # as stored
            await self._set_member_status(guild_id, member_id, "left", joined_ms + 1)
        return int(result.modified_count)

    async def mark_fake(self, key: str, reason: str) -> bool:
        """Mark a join fake after the fact (a rule decided at the leave), only if it is not yet."""
        try:
            result = await with_retry(
                "mark join fake",
                lambda: self.collection.update_one(
                    {"_id": key, "fake_reason": ""}, {"$set": {"fake_reason": reason}}
                ),
                self.policy,
            )
        finally:
            self.watch.keys_written([key])
        return bool(result.modified_count)

    async def mark_converted(self, key: str, staff_id: int, now: datetime) -> bool:
        """Credit `staff_id` with the conversion of this join's member, once (guarded filter)."""
        result = await with_retry(
            "record conversion",
            lambda: self.collection.update_one(
                {"_id": key, "converted_by": 0},
                {"$set": {"converted_by": staff_id, "conversion_ms": to_ms(now)}},
            ),
            self.policy,
        )
        return bool(result.modified_count)

    async def mark_reset(self, keys: list[str], backup_id: str) -> int:
        return await self._move_reset(keys, "", backup_id, "reset joins")

    async def unmark_reset(self, keys: list[str], backup_id: str) -> int:
        return await self._move_reset(keys, backup_id, "", "restore joins")

    async def _move_reset(self, keys: list[str], frm: str, to: str, what: str) -> int:
        changed = 0
        try:
            for start in range(0, len(keys), BATCH):
                chunk = keys[start : start + BATCH]
                result = await with_retry(
                    what,
                    lambda chunk=chunk: self.collection.update_many(
                        {"_id": {"$in": chunk}, "reset_id": frm}, {"$set": {"reset_id": to}}
                    ),
                    self.policy,
                )
                changed += int(result.modified_count)
        finally:
            self.watch.keys_written(keys)
        return changed

    async def _set_member_status(self, guild_id: int, member_id: int, status: str, version: int) -> None:
        """Set the status on the member's joins whose status is older than `version` (documents
        from before versions count as oldest)."""
        older = {"$or": [{"status_ms": {"$lt": version}}, {"status_ms": {"$exists": False}}]}
        try:
            await with_retry(
                "update member status",
                lambda: self.collection.update_many(
                    {"$and": [{"guild_id": guild_id, "member_id": member_id}, older]},
                    {"$set": {"member_status": status, "status_ms": version}},
                ),
                self.policy,
            )
        finally:
            self.watch.member_written(guild_id, member_id)

    # ---- reads ----------------------------------------------------------------------------------
    async def existing_keys(self, keys: list[str]) -> set[str]:
        async def read() -> set[str]:
            cursor = self.collection.find({"_id": {"$in": keys}}, {"_id": 1})
            return {doc["_id"] async for doc in cursor}

        return await with_retry("read join keys", read, self.policy) if keys else set()

    async def recorded_since(self, guild_id: int, since: datetime) -> bool:
        """Whether any join in the guild is recorded with a join time at or after `since`."""
        query = {"guild_id": guild_id, "joined_ms": {"$gte": to_ms(since)}}
        doc = await with_retry("read joins since", lambda: self.collection.find_one(query, {"_id": 1}),
                               self.policy)
        return doc is not None

    async def members_with_joins(self, guild_id: int, member_ids: list[int]) -> set[int]:
        """Of `member_ids`, those with any recorded join in the guild (so a new one is a rejoin)."""

        async def read() -> set[int]:
            cursor = self.collection.find(
                {"guild_id": guild_id, "member_id": {"$in": member_ids}}, {"member_id": 1}
            )
            return {doc["member_id"] async for doc in cursor}

        return await with_retry("read earlier joins", read, self.policy) if member_ids else set()

    async def open_member_ids(self, guild_id: int) -> set[int]:
        """Members with an open stay (joined, no leave recorded)."""

        async def read() -> set[int]:
            cursor = self.collection.find({"guild_id": guild_id, "stay": "open"}, {"member_id": 1})
            return {doc["member_id"] async for doc in cursor}

        return await with_retry("read open stays", read, self.policy)

    async def awaiting(self, guild_id: int) -> list[StoredJoin]:
        return await self._find({"guild_id": guild_id, "awaiting": "snapshot"}, [("joined_ms", ASCENDING)])

    async def by_keys(self, keys: list[str]) -> list[StoredJoin]:
        return await self._find({"_id": {"$in": keys}}, None) if keys else []

    async def get(self, key: str) -> StoredJoin | None:
        found = await self._find({"_id": key}, None, 1)
        return found[0] if found else None

    async def latest_for_member(self, guild_id: int, member_id: int) -> StoredJoin | None:
        found = await self._find(
            {"guild_id": guild_id, "member_id": member_id}, [("joined_ms", DESCENDING)], 1
        )
        return found[0] if found else None

    async def first_for_member(self, guild_id: int, member_id: int) -> StoredJoin | None:
        found = await self._find(
            {"guild_id": guild_id, "member_id": member_id, "counted": FIRST}, [("joined_ms", ASCENDING)], 1
        )
        return found[0] if found else None

    async def brought_in_by(self, guild_id: int, inviter_id: int, limit: int) -> list[StoredJoin]:
        """The latest members credited to `inviter_id` (not reset), newest first."""
        query = {"guild_id": guild_id, "credit_to": inviter_id, "reset_id": ""}
        return await self._find(query, [("joined_ms", DESCENDING)], limit)

    async def resettable(self, guild_id: int, inviter_id: int | None) -> list[dict[str, Any]]:
        """The joins a reset clears: credited ones not yet reset (of one inviter, or the guild)."""
        query: dict[str, Any] = {"guild_id": guild_id, "credit_to": {"$gt": 0}, "reset_id": ""}
        if inviter_id is not None:
            query["credit_to"] = inviter_id

        async def read() -> list[dict[str, Any]]:
            return [doc async for doc in self.collection.find(query)]

        return await with_retry("read joins to reset", read, self.policy)

    async def counts(
        self, guild_id: int, *, since: datetime | None = None, inviter_id: int | None = None
    ) -> dict[int, InviterCounts]:
        """regular / fake / left per credited inviter, from the join documents (resets excluded)."""
        base: dict[str, Any] = {"guild_id": guild_id, "credit_to": {"$gt": 0}, "reset_id": ""}
        if inviter_id is not None:
            base["credit_to"] = inviter_id
        if since is not None:
            base["joined_ms"] = {"$gte": to_ms(since)}
        regular = await self._count_by(base, "credit_to")
        fake = await self._count_by({**base, "fake_reason": {"$in": list(FAKE_REASONS)}}, "credit_to")
        left = await self._count_by({**base, "fake_reason": "", "member_status": "left"}, "credit_to")
        result: dict[int, InviterCounts] = {}
        for target, source in (("regular", regular), ("fake", fake), ("left", left)):
            for inviter, n in source.items():
                setattr(result.setdefault(int(inviter), InviterCounts()), target, n)
        return result

    async def credited_stays(self, guild_id: int, *, inviter_id: int | None = None,
                             code: str | None = None) -> list[dict[str, Any]]:
        """The credited joins (not reset) of the guild, of one inviter and/or one code, with what
        retention needs: `credit_to`, `code`, `member_id`, `joined_ms`, `member_status`, `left_ms`.
        One find (on nx-27017 a pass over the guild's joins): retention's read until the invite
        boards are built."""
        query: dict[str, Any] = {"guild_id": guild_id, "credit_to": {"$gt": 0}, "reset_id": ""}
        if inviter_id is not None:
            query["credit_to"] = inviter_id
        if code is not None:
            query["code"] = code

        async def read() -> list[dict[str, Any]]:
            cursor = self.collection.find(query, dict.fromkeys(STAY_FIELDS, 1), batch_size=BATCH)
            return [_with_joined_ms(doc) async for doc in cursor]

        return await with_retry("read credited joins", read, self.policy)

    async def code_counts(self, guild_id: int, codes: list[str]) -> dict[str, int]:
        """Members brought in (first joins, not reset) per code."""
        if not codes:
            return {}
        query = {
            "guild_id": guild_id,
            "code": {"$in": codes},
            "counted": FIRST,
            "reset_id": "",
            "source": {"$in": list(ATTRIBUTED_SOURCES)},
        }
        return {str(k): v for k, v in (await self._count_by(query, "code")).items()}

    async def unconverted(self, guild_id: int, codes: list[str]) -> list[StoredJoin]:
        """First joins attributed to one of `codes` whose member is not converted yet."""
        if not codes:
            return []
        query = {
            "guild_id": guild_id,
            "code": {"$in": codes},
            "counted": FIRST,
            "converted_by": 0,
            "source": {"$in": list(ATTRIBUTED_SOURCES)},
        }
        return await self._find(query, [("joined_ms", ASCENDING)])

    async def conversion_counts(self, guild_id: int) -> dict[int, int]:
        query = {"guild_id": guild_id, "converted_by": {"$gt": 0}, "reset_id": ""}
        return {int(k): v for k, v in (await self._count_by(query, "converted_by")).items()}

    async def _count_by(self, match: dict[str, Any], key: str) -> dict[Any, int]:
        pipeline = [{"$match": match}, {"$group": {"_id": f"${key}", "n": {"$sum": 1}}}]

        rows = await self.aggregate(pipeline, f"count joins by {key}")
        return {doc["_id"]: int(doc["n"]) for doc in rows}

    # ---- erase on request (`/data erase`) ---------------------------------------------------
    def member_filter(self, guild_id: int, member_id: int) -> dict[str, Any]:
        """The member's joins as the one who joined (not those they brought in: those are other
        members' records and keep the inviter id)."""
        return {"guild_id": guild_id, "member_id": member_id}

    async def erase_member(self, guild_id: int, member_id: int) -> None:
        """Delete the member's own joins (idempotent)."""
        try:
            await self.idempotent([Op("delete_many", self.member_filter(guild_id, member_id))],
                                  "erase a member's joins")
        finally:
            self.watch.member_written(guild_id, member_id)

    # ---- for the invite boards in memory (app.tracking.invite_boards) ----------------------------
    async def scan_figures(self, guild_id: int, batch: int = BATCH) -> AsyncIterator[list[dict[str, Any]]]:
        """Every join document of the guild, the fields the figures use, in lists of up to `batch`.
        One pass, no retry: a failed pass is started over."""
        fields = dict.fromkeys(FIGURE_FIELDS, 1)
        cursor = self.collection.find({"guild_id": guild_id}, fields, batch_size=batch)
        async for rows in in_batches(cursor, batch):
            yield rows

    # ---- for `/server stats` (app.tracking.server_stats) --------------------------------------
    async def moves(self, guild_id: int, start_ms: int,
                    end_ms: int) -> tuple[list[int], set[tuple[int, int]]]:
        """The guild's joins and leaves in `start_ms <= t < end_ms`: the join time of every join, and
        (member, leave time) of every leave. A leave closes every open stay of the member with the
        same `left_ms`, so it is one pair however many stays it closed. Two reads bounded by the
        period (indexes `{guild_id, joined_ms}` and `{guild_id, left_ms}`); `left_ms` null (a stay
        still open) is never in a numeric range."""
        joined_query = {"guild_id": guild_id, "joined_ms": {"$gte": start_ms, "$lt": end_ms}}
        left_query = {"guild_id": guild_id, "left_ms": {"$gte": start_ms, "$lt": end_ms}}

        async def read() -> tuple[list[int], set[tuple[int, int]]]:
            joined = [int(doc["joined_ms"]) async for doc in
                      self.collection.find(joined_query, {"joined_ms": 1}, batch_size=BATCH)]
            left = {(int(doc["member_id"]), int(doc["left_ms"])) async for doc in
                    self.collection.find(left_query, {"member_id": 1, "left_ms": 1}, batch_size=BATCH)}
            return joined, left

        return await with_retry("read joins and leaves", read, self.policy)

    # ---- for the CSV export (app.operations.export) ------------------------------------------
    async def scan_joins(self, guild_id: int, since: datetime | None,
                         batch: int = BATCH) -> AsyncIterator[list[StoredJoin]]:
        """The guild's joins from `since` on (None: all), oldest first, in lists of up to `batch`,
        read through one cursor (never all at once). One pass, no retry."""
        query: dict[str, Any] = {"guild_id": guild_id}
        if since is not None:
            query["joined_ms"] = {"$gte": to_ms(since)}
        order = [("joined_ms", ASCENDING), ("_id", ASCENDING)]
        cursor = self.collection.find(query, batch_size=batch).sort(order)
        async for docs in in_batches(cursor, batch):
            yield [StoredJoin.from_doc(doc) for doc in docs]

    async def latest_names(self, guild_id: int, member_ids: set[int]) -> dict[int, str]:
        """Of `member_ids`, the name each had at their latest join (one pass over the guild's joins)."""
        if not member_ids:
            return {}
        latest: dict[int, tuple[int, str]] = {}
        fields = {"member_id": 1, "member_name": 1, "joined_ms": 1}
        async for doc in self.collection.find({"guild_id": guild_id}, fields, batch_size=BATCH):
            member, name = int(doc["member_id"]), doc.get("member_name")
            joined = int(doc.get("joined_ms") or 0)
            if member in member_ids and name and joined >= latest.get(member, (-1, ""))[0]:
                latest[member] = (joined, str(name))
        return {member: name for member, (_, name) in latest.items()}

    async def figure_docs(self, keys: list[str], batch: int = BATCH) -> dict[str, dict[str, Any]]:
        """The documents of `keys` that exist (by `_id`), the fields the figures use."""
        found: dict[str, dict[str, Any]] = {}
        fields = dict.fromkeys(FIGURE_FIELDS, 1)
        for start in range(0, len(keys), batch):
            chunk = keys[start: start + batch]

            async def read(chunk: list[str] = chunk) -> list[dict[str, Any]]:
                return [doc async for doc in self.collection.find({"_id": {"$in": chunk}}, fields)]

            for doc in await with_retry("read joins back", read, self.policy):
                found[doc["_id"]] = doc
        return found

    async def _find(
        self, query: dict[str, Any], sort: list[tuple[str, int]] | None, limit: int = 0
    ) -> list[StoredJoin]:
        async def read() -> list[StoredJoin]:
            cursor = self.collection.find(query)
            if sort:
                cursor = cursor.sort(sort)
            if limit:
                cursor = cursor.limit(limit)
            return [StoredJoin.from_doc(doc) async for doc in cursor]

        return await with_retry("read joins", read, self.policy)
