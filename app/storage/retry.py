"""Bounded retries of transient MongoDB errors, and exactly-once guarded updates.

A write that failed with a network error may still have been applied by the server, and a request
abandoned by the bot (a cancelled coroutine, a socket timeout) can still reach the server seconds
later, after a replay and after newer writes. So every counting write carries an operation id and
its update is guarded by it:

- live writes use an operation *sequence* (`next_op_seq()`: an int that only grows, across
  restarts too). The filter says "only if this document's guard field is older than this
  sequence" (`$lt`, or the field missing), so a replay *and every older operation* is refused;
- imports use a deterministic string id per source record, refused only when it is the last one
  applied (`$nin: [id]`, which, unlike `$ne`, also matches a missing field on nx-27017).

The update upserts; when the filter does not match, the upsert tries to insert an existing `_id`
and the server answers DuplicateKeyError, which here means "already applied, or superseded by a
newer operation". Callers keep one write in flight per document key and guard field and write in
order, so a refused operation was applied before.

An error that leaves the outcome unknown (a cut connection, a timeout, a write-concern error on
failover) is retried under the same guard; only a real refusal is permanent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pymongo import UpdateOne
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
OpId = int | str  # int: an operation sequence (refuses every older one); str: an id (refuses itself)
DUPLICATE_KEY = 11000
MAX_INSERT_RACES = 5


class OutcomeUnknown(PyMongoError):
    """The server answered, but did not confirm the write with the required write concern (a
    `writeConcernError`, e.g. a failover or a replication timeout): it may have applied, and may
    still be rolled back. Retried under the same guard, never taken as applied or as refused."""


def write_concern_failed(exc: BulkWriteError) -> bool:
    """A bulk write whose only trouble is its write concern (no write was refused)."""
    return bool(exc.details.get("writeConcernErrors")) and not exc.details.get("writeErrors")


# Server error codes that mean "not now" rather than "not this": not primary, shutting down,
# interrupted by a state change, network, time limits, lock and write conflicts (pymongo's retryable
# codes and the transient write conflicts). A write error with any other code is MongoDB's answer
# about that document, the same at every attempt (see `refused_for_good`).
TRANSIENT_CODES = frozenset({
    6, 7, 24, 46, 50, 64, 89, 91, 112, 134, 189, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
})


def refused_for_good(exc: BaseException) -> bool:
    """True when MongoDB answered and refused the write itself, so the same write will be refused
    again at every attempt: e.g. an `$inc` past the int64 range ("Failed to apply $inc operations to
    current value ((NumberLong)...)", code 2 BadValue), an `$inc` of a non-numeric field (code 14),
    a validation or size error. A write whose outcome is unknown (timeouts, cut connections,
    write-concern errors, elections) is never refused for good: it is retried under its guard."""
    if is_transient(exc) or not isinstance(exc, PyMongoError):
        return False
    if isinstance(exc, BulkWriteError):
        if exc.details.get("writeConcernErrors"):
            return False  # what was applied may still be rolled back: the outcome is unknown
        errors = exc.details.get("writeErrors") or []
        return bool(errors) and all(err.get("code") not in TRANSIENT_CODES for err in errors)
    code = getattr(exc, "code", None)
    return isinstance(exc, OperationFailure) and code is not None and code not in TRANSIENT_CODES


def refusal_text(exc: BaseException) -> str:
    """MongoDB's reason for a refused write, in one short line (the first write error)."""
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or [{}]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"code {first.get('code')}: {str(first.get('errmsg', ''))[:300]}{more}"
    return f"code {getattr(exc, 'code', None)}: {str(exc)[:300]}"


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: lost connections, timeouts, elections, RetryableWriteError,
    and every write whose outcome is unknown (write-concern errors)."""
    if isinstance(exc, DuplicateKeyError):
        return False
    if isinstance(exc, BulkWriteError):
        return write_concern_failed(exc)
    if isinstance(exc, AutoReconnect | ConnectionFailure | OutcomeUnknown | WriteConcernError):
        return True  # includes NetworkTimeout, NotPrimaryError, ServerSelectionTimeoutError
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("RetryableWriteError")
    return False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    max_seconds: float = 10.0
    initial_wait: float = 0.05
    max_wait: float = 2.0
    on_retry: Callable[[], object] | None = field(default=None, compare=False)  # e.g. a metric


def _log_attempt(what: str, policy: RetryPolicy) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        if policy.on_retry is not None:
            policy.on_retry()
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (attempt %d): %s; retrying in %.2fs",
            what,
            state.attempt_number,
            type(exc).__name__ if exc else "?",
            state.next_action.sleep if state.next_action else 0.0,
        )

    return before_sleep


async def with_retry(what: str, call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run `call` until it succeeds, retrying transient errors only, within the policy's bounds."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        wait=wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait),
        before_sleep=_log_attempt(what, policy),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


def new_op_id(prefix: str = "") -> str:
    """A fresh, unordered operation id (for tests and one-off writes; live counting uses sequences)."""
    return f"{prefix}{uuid.uuid4().hex}"


TERM_BITS = 41  # sequences per lease term: 2^41 (about 2.2e12); terms up to 2^22


class OpSequence:
    """Operation sequences that only grow: `(term << 41) + n`, where the term is the lease's
    fencing token (`app.storage.lease`), which grows at every take-over and restart, so a process
    continues above everything its predecessors wrote, whatever the clocks say. Thread-safe."""

    def __init__(self, term: int = 0) -> None:
        self.term = term
        self._n = 0
        self._lock = threading.Lock()

    def begin(self, term: int) -> None:
        """A new lease term: every sequence from now on is above those of every earlier term."""
        with self._lock:
            if term < self.term:
                raise ValueError(f"lease term {term} is older than the current {self.term}")
            if term > self.term:
                self.term, self._n = term, 0

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return (self.term << TERM_BITS) + self._n


_UNFENCED = OpSequence()  # term 0: for code that runs without a lease (tests, tools)


def next_op_seq() -> int:
    """A sequence of term 0 (no lease): the default for trackers built without the bot's sequence."""
    return _UNFENCED.next()


def guard_filter(key: Any, guard_field: str, op_id: OpId) -> dict[str, Any]:
    """The filter on document `key` that lets `op_id` through only where it was neither applied
    nor superseded. (`$and`, not `_id` beside `$or`: nx-27017 ignores an `_id` next to `$or`.)"""
    if isinstance(op_id, int):
        newer = {"$or": [{guard_field: {"$lt": op_id}}, {guard_field: {"$exists": False}}]}
        return {"$and": [{"_id": key}, newer]}
    return {"_id": key, guard_field: {"$nin": [op_id]}}


def guard_holds(stored: Any, op_id: OpId) -> bool:
    """True when a document whose guard field holds `stored` has `op_id` applied (or a newer one)."""
    if isinstance(op_id, int):
        return isinstance(stored, int) and stored >= op_id
    return stored == op_id


@dataclass(frozen=True)
class GuardedUpdate:
    """One exactly-once update: the document `_id`, and the update operators to apply once."""

    key: Any
    update: Mapping[str, Mapping[str, Any]]


def _guarded_op(item: GuardedUpdate, guard_field: str, op_id: OpId) -> UpdateOne:
    update = {name: dict(fields) for name, fields in item.update.items()}
    update.setdefault("$set", {})[guard_field] = op_id
    return UpdateOne(guard_filter(item.key, guard_field, op_id), update, upsert=True)


async def _not_yet_applied(collection: Any, keys: Sequence[Any], guard_field: str, op_id: OpId) -> set[Any]:
    """Of documents whose guarded upsert hit a duplicate key, those where `op_id` did not land.

    A duplicate key means either "already applied" or "another writer inserted the document
    first"; the guard field tells which.
    """
    applied = set()
    async for doc in collection.find({"_id": {"$in": list(keys)}}, {guard_field: 1}):
        if guard_holds(doc.get(guard_field), op_id):
            applied.add(doc["_id"])
    return {key for key in keys if key not in applied}


async def apply_guarded(
    collection: Any,
    items: Sequence[GuardedUpdate],
    op_id: OpId,
    guard_field: str,
    policy: RetryPolicy,
    what: str,
) -> None:
    """Apply each update exactly once under `op_id`, in one unordered bulk write, retrying safely."""
    pending = list(items)

    async def attempt() -> None:
        nonlocal pending
        for _ in range(MAX_INSERT_RACES):
            if not pending:
                return
            ops = [_guarded_op(item, guard_field, op_id) for item in pending]
            await asyncio.sleep(0)  # building the ops and encoding them: one bounded step each
            try:
                await collection.bulk_write(ops, ordered=False)
                pending = []
            except BulkWriteError as exc:
                if exc.details.get("writeConcernErrors"):
                    raise OutcomeUnknown(f"{what}: write concern not satisfied") from exc
                errors = exc.details.get("writeErrors", [])
                if any(err.get("code") != DUPLICATE_KEY for err in errors):
                    raise
                duplicated = [pending[err["index"]] for err in errors]
                again = await _not_yet_applied(collection, [i.key for i in duplicated], guard_field, op_id)
                pending = [item for item in duplicated if item.key in again]
        if pending:
            raise RuntimeError(f"{what}: {len(pending)} guarded upserts kept hitting duplicate keys")

    await with_retry(what, attempt, policy)
