"""Every MongoDB write of the bot goes through a `Writer`: directly while MongoDB answers quickly,
through the durable outbox (a local SQLite log) otherwise.

A unit of work is a list of `Write`s applied in order: guarded exactly-once updates
(`apply_guarded`) and idempotent updates (`$set`/`$unset`/`$max`...). Replaying a unit that was
partly or wholly applied before therefore changes nothing twice. While the outbox holds anything,
new units queue behind it, so the order of writes to a document never changes.

Write-ahead bound: a unit is either acknowledged by MongoDB or fsynced in the outbox within
`spill_after` seconds of its submission (0.15 s by default), whatever MongoDB is doing: a unit
not acknowledged by then is appended to the outbox while its attempt goes on in the background.
The attempt is never abandoned while it runs: the drain waits for it before replaying its entry,
so no request of the bot's own is left on the wire to land after newer writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import bson
from pymongo import DeleteMany, DeleteOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from app.storage.database import ping_ms
from app.storage.outbox import Entry, Outbox
from app.storage.retry import (
    DUPLICATE_KEY,
    GuardedUpdate,
    OpId,
    OutcomeUnknown,
    RetryPolicy,
    apply_guarded,
    is_transient,
    refusal_text,
    refused_for_good,
    with_retry,
)
from app.wiring.clock import Clock, SystemClock, to_ms

log = logging.getLogger(__name__)
DRAIN_BATCH = 200
PING_DEADLINE_SECONDS = 2.0
SPILL_AFTER_SECONDS = 0.15


class WriterStopped(RuntimeError):
    """The writer and its outbox are closed: nothing can be kept any more."""


class WriteRefused(PyMongoError):
    """MongoDB refused a unit for good (`refused_for_good`): the same unit would be refused at every
    attempt. Carries the unit, so a caller that cannot answer anyone (a tracker) can keep it aside
    with `Writer.set_aside` instead of retrying it forever."""

    def __init__(self, what: str, writes: Sequence[Write], error: BaseException) -> None:
        super().__init__(f"{what}: refused by MongoDB ({refusal_text(error)})")
        self.what = what
        self.writes = tuple(writes)
        self.error = error


OpKind = Literal["update_one", "update_many", "delete_one", "delete_many"]
_PYMONGO_OPS = {"update_one": UpdateOne, "update_many": UpdateMany, "delete_one": DeleteOne,
                "delete_many": DeleteMany}


@dataclass(frozen=True)
class Op:
    """One idempotent operation of a bulk write (applying it twice leaves the same result).

    `superseded_ok`: the filter carries a sequence guard (`guard_filter`) and the operation upserts,
    so a duplicate key means a newer state is stored already: the operation is done, not refused.
    """

    kind: OpKind
    filter: Mapping[str, Any]
    update: Mapping[str, Any] | None = None
    upsert: bool = False
    superseded_ok: bool = False

    def to_pymongo(self) -> UpdateOne | UpdateMany | DeleteOne | DeleteMany:
        if self.kind.startswith("delete"):
            return _PYMONGO_OPS[self.kind](dict(self.filter))
        return _PYMONGO_OPS[self.kind](dict(self.filter), dict(self.update or {}), upsert=self.upsert)

    def to_document(self) -> dict[str, Any]:
        return {"k": self.kind, "f": dict(self.filter), "u": dict(self.update or {}), "upsert": self.upsert,
                "sup": self.superseded_ok}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Op:
        return cls(doc["k"], doc["f"], doc["u"] or None, bool(doc["upsert"]), bool(doc.get("sup", False)))


@dataclass(frozen=True)
class Write:
    """One step of a unit of work on one collection: guarded updates, or idempotent operations."""

    collection: str
    kind: Literal["guarded", "bulk"]
    items: tuple[GuardedUpdate, ...] = ()
    op_id: OpId = ""
    guard: str = ""
    ops: tuple[Op, ...] = field(default_factory=tuple)

    @classmethod
    def guarded(cls, collection: str, items: Sequence[GuardedUpdate], op_id: OpId, guard: str) -> Write:
        """Counting updates applied exactly once under `op_id` (see `apply_guarded`)."""
        return cls(collection, "guarded", items=tuple(items), op_id=op_id, guard=guard)

    @classmethod
    def bulk(cls, collection: str, ops: Sequence[Op]) -> Write:
        """Idempotent operations, in one unordered bulk write."""
        return cls(collection, "bulk", ops=tuple(ops))

    @classmethod
    def idempotent(cls, collection: str, filter: Mapping[str, Any], update: Mapping[str, Any],
                   upsert: bool = False) -> Write:
        return cls.bulk(collection, [Op("update_one", filter, update, upsert)])

    def to_document(self) -> dict[str, Any]:
        if self.kind == "guarded":
            return {"c": self.collection, "k": "g", "op": self.op_id, "guard": self.guard,
                    "items": [{"key": i.key, "update": dict(i.update)} for i in self.items]}
        return {"c": self.collection, "k": "b", "ops": [op.to_document() for op in self.ops]}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Write:
        if doc["k"] == "g":
            items = tuple(GuardedUpdate(i["key"], i["update"]) for i in doc["items"])
            return cls.guarded(doc["c"], items, doc["op"], doc["guard"])
        return cls.bulk(doc["c"], [Op.from_document(op) for op in doc["ops"]])


def encode(writes: Sequence[Write]) -> bytes:
    return bson.encode({"writes": [w.to_document() for w in writes]})


def decode(body: bytes) -> list[Write]:
    return [Write.from_document(doc) for doc in bson.decode(body)["writes"]]


async def execute(db: Any, writes: Sequence[Write], policy: RetryPolicy, what: str) -> None:
    """Apply the writes in order, each with bounded retries of transient errors."""
    for write in writes:
        collection = db[write.collection]
        if write.kind == "guarded":
            await apply_guarded(collection, write.items, write.op_id, write.guard, policy, what)
        elif write.ops:
            await with_retry(what, lambda c=collection, o=write.ops: _bulk(c, o, what), policy)


async def _bulk(collection: Any, ops: Sequence[Op], what: str) -> None:
    """One unordered bulk write. A duplicate key on a sequence-guarded op means "superseded" (done);
    a write-concern error means "outcome unknown" (retried); anything else refused is raised."""
    try:
        await collection.bulk_write([op.to_pymongo() for op in ops], ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise OutcomeUnknown(f"{what}: write concern not satisfied") from exc
        refused = [err for err in exc.details.get("writeErrors", [])
                   if not (err.get("code") == DUPLICATE_KEY and ops[err["index"]].superseded_ok)]
        if refused:
            raise


def is_outage(exc: BaseException) -> bool:
    """MongoDB did not answer (as opposed to refusing a write): worth keeping the write for later."""
    return is_transient(exc) or (isinstance(exc, PyMongoError) and "connection" in str(exc).lower())


class Writer:
    """Applies units of writes; keeps them in the outbox (and replays them) while MongoDB is away."""

    def __init__(self, db: Any, policy: RetryPolicy, outbox: Outbox | None = None,
                 clock: Clock | None = None, drain_policy: RetryPolicy | None = None,
                 on_submit: Callable[[], object] | None = None,
                 spill_after: float = SPILL_AFTER_SECONDS) -> None:
        self.db = db
        self.spill_after = spill_after
        self.policy = policy
        self.outbox = outbox
        self.clock = clock or SystemClock()
        # Replays retry briefly, then the drain loop backs off on its own schedule.
        self.drain_policy = drain_policy or RetryPolicy(attempts=2, max_seconds=2, initial_wait=0.05,
                                                        max_wait=0.5)
        self.on_submit = on_submit
        self._lock = asyncio.Lock()
        self._queued = False
        self._drainer: asyncio.Task[None] | None = None
        self._stopped = False
        self._down = asyncio.Event()  # set while MongoDB is known to be away
        # Attempts still running whose unit was spilled to the outbox meanwhile, by outbox entry id.
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self.spilled = 0
        self.replayed = 0
        self.queued_total = 0
        self.writes_total = 0
        self.failures_total = 0
        self.drained = asyncio.Event()
        self.drained.set()
        # What a previous run left in the outbox: state rebuilt from MongoDB must wait for it.
        self._backlog_last_id = 0
        self.backlog_replayed = asyncio.Event()
        self.backlog_replayed.set()

    @property
    def draining(self) -> bool:
        return self._queued

    async def start(self) -> None:
        """Replay what a previous run left in the outbox before anything new is written."""
        if self.outbox is not None and self.outbox.depth > 0:
            log.warning("outbox holds %d unsaved writes from before the restart; replaying them first",
                        self.outbox.depth)
            self._backlog_last_id = await self.outbox.last_id()
            self.backlog_replayed.clear()
            self._queued = True
            self.drained.clear()
            self._start_drainer()

    async def submit(self, writes: Sequence[Write], what: str) -> None:
        """Apply `writes` now, or keep them durably for replay. Returns within about `spill_after`
        seconds (plus an fsync) when an outbox is configured, and never raises because MongoDB is
        away or slow (without an outbox, the error propagates)."""
        self.writes_total += 1
        if self.on_submit is not None:
            self.on_submit()
        if self.outbox is None:
            await execute(self.db, writes, self.policy, what)
            return
        async with self._lock:
            if self._queued or self._stopped:
                await self._enqueue(writes, what)
                return
        attempt = asyncio.create_task(execute(self.db, writes, self.policy, what), name=f"write: {what}")
        if not await self._settles(attempt):
            await self._spill(attempt, writes, what)
            return
        try:
            attempt.result()
        except Exception as exc:
            if refused_for_good(exc):
                raise WriteRefused(what, writes, exc) from exc
            if not is_outage(exc):
                raise
            self.failures_total += 1
            log.error("%s: MongoDB unavailable after retries (%s); keeping it in the outbox", what,
                      type(exc).__name__)
            async with self._lock:
                await self._enqueue(writes, what)

    async def set_aside(self, refused: WriteRefused, detail: str) -> int | None:
        """Keep a unit MongoDB refused for good in the outbox's `dead` table, for the operator, with
        one error log line; returns its id (None without an outbox, or when it cannot be written:
        the caller then still holds the unit)."""
        reason = refusal_text(refused.error)
        if self.outbox is None or self.outbox.closed:
            return None
        try:
            entry_id = await self.outbox.set_aside(refused.what, encode(refused.writes),
                                                   to_ms(self.clock.now()), reason)
        except Exception:
            log.exception("%s: refused by MongoDB (%s) and could not be kept aside", refused.what, reason)
            return None
        self.failures_total += 1
        log.error("%s refused by MongoDB for good (%s): %s kept aside in %s, table dead, entry %d; "
                  "not retried (see docs/outbox.md, 'Refused writes')",
                  refused.what, reason, detail, self.outbox.path, entry_id)
        return entry_id

    async def _settles(self, attempt: asyncio.Task[None]) -> bool:
        """True when the attempt finished within `spill_after` and before MongoDB was found down."""
        down = asyncio.ensure_future(self._down.wait())
        try:
            await asyncio.wait({attempt, down}, timeout=self.spill_after,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
        return attempt.done()

    async def _spill(self, attempt: asyncio.Task[None], writes: Sequence[Write], what: str) -> None:
        """The unit is not acknowledged in time: make it durable in the outbox, and let its attempt
        go on; the drain waits for the attempt before it replays the entry (see `_replay`)."""
        async with self._lock:
            entry_id = await self._enqueue(writes, what)
            self._inflight[entry_id] = attempt
        self.spilled += 1
        if self.spilled == 1 or self.spilled % 1000 == 0:
            log.warning("%s: MongoDB did not acknowledge within %.2fs; kept in the outbox while the "
                        "write goes on (%d so far)", what, self.spill_after, self.spilled)

    async def _enqueue(self, writes: Sequence[Write], what: str) -> int:
        assert self.outbox is not None
        if self.outbox.closed:
            raise WriterStopped(f"{what}: the outbox is closed; the write cannot be kept")
        entry_id = await self.outbox.append(what, encode(writes), to_ms(self.clock.now()))
        self.queued_total += 1
        if not self._queued:
            self._queued = True
            self.drained.clear()
        self._down.set()
        self._start_drainer()
        return entry_id

    def _start_drainer(self) -> None:
        if self._stopped:
            return  # the next start replays what is left
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="outbox-drain")

    def mark_down(self, reason: str) -> None:
        """MongoDB is known to be away (a failed ping): new writes go to the outbox at once instead
        of waiting through retries in memory, where a crash would lose them."""
        if self.outbox is None or self._queued or self._stopped:
            return
        log.error("MongoDB is not answering (%s): writes are kept in the outbox until it is back", reason)
        self._queued = True
        self._down.set()
        self.drained.clear()
        self._start_drainer()

    async def _answers(self) -> bool:
        return await ping_ms(self.db, PING_DEADLINE_SECONDS) is not None

    async def _drain(self) -> None:
        assert self.outbox is not None
        delay = 0.2
        while True:
            entries = await self.outbox.peek(DRAIN_BATCH)
            if entries:
                done = await self._replay(entries)
            else:
                done = await self._answers() and await self._finish_if_empty()
                if done:
                    return
            if done:
                delay = 0.2
                continue
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)

    async def _finish_if_empty(self) -> bool:
        assert self.outbox is not None
        async with self._lock:
            if await self.outbox.peek(1):
                return False
            self._queued = False
            self._down.clear()
            self.drained.set()
        log.info("outbox drained: MongoDB has every write")
        return True

    async def _replay(self, entries: list[Entry]) -> bool:
        """Replay in order; True when all went through, False at the first outage."""
        assert self.outbox is not None
        for entry in entries:
            if await self._attempt_succeeded(entry.id):
                await self.outbox.delete(entry.id)
                self.replayed += 1  # acknowledged: it leaves the outbox like a replayed entry
                if entry.id >= self._backlog_last_id:
                    self.backlog_replayed.set()
                continue
            try:
                writes = decode(entry.body)
                await asyncio.sleep(0)  # decoding a unit and encoding its first write: one step each
                await execute(self.db, writes, self.drain_policy, f"replay {entry.what}")
            except Exception as exc:
                if is_outage(exc):
                    return False
                reason = refusal_text(exc) if isinstance(exc, PyMongoError) else str(exc)
                log.error("outbox entry %d (%s) refused by MongoDB: %s; kept aside for review in %s, "
                          "table dead", entry.id, entry.what, reason, self.outbox.path)
                await self.outbox.bury(entry, reason)
            else:
                await self.outbox.delete(entry.id)
                self.replayed += 1
            if entry.id >= self._backlog_last_id:
                self.backlog_replayed.set()
        return True

    async def _attempt_succeeded(self, entry_id: int) -> bool:
        """For a spilled entry whose first attempt was still running: wait for it; True when it was
        acknowledged (the entry is done), False when it failed (the entry is replayed)."""
        attempt = self._inflight.pop(entry_id, None)
        if attempt is None:
            return False
        await asyncio.wait({attempt})
        return not attempt.cancelled() and attempt.exception() is None

    async def catch_up(self, since: float) -> None:
        """For a producer that batches (the message group commit): while units queue in the outbox,
        wait until the drain has replayed them all or until `spill_after` after `since` (loop time:
        when the oldest event of the producer's next unit arrived). The unit then holds what came
        meanwhile instead of being one more small entry to replay, and no event waits longer than
        it would have waited for a write that spilled. Returns at once while nothing is queued."""
        if not self._queued or self._stopped:
            return
        wait = since + self.spill_after - asyncio.get_running_loop().time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), wait)

    async def wait_backlog(self) -> None:
        """Until every write a previous run left in the outbox is in MongoDB (at once when none)."""
        await self.backlog_replayed.wait()

    async def wait_drained(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.drained.wait(), timeout)

    async def stop(self) -> None:
        """Stop replaying and stop attempts still running (their units are in the outbox already).
        Units submitted from now on are only appended to the outbox, for the next start."""
        self._stopped = True
        tasks = list(self._inflight.values())
        if self._drainer is not None and not self._drainer.done():
            tasks.append(self._drainer)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
