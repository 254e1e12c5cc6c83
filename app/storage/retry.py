"""Bounded retries of transient MongoDB errors, and exactly-once guarded updates.

A write that failed with a network error may still have been applied by the server, so every
counting write carries an operation id. The update's filter says "only if this document's guard
field is not already this id" (`$nin: [id]`, which, unlike `$ne`, also matches a missing field on
nx-27017) and upserts; when the write was applied before, the filter does not
match, the upsert tries to insert an existing `_id` and the server answers DuplicateKeyError,
which here means "already applied". Callers keep one write in flight per document key and guard
field, so nothing else can move the guard in between.
"""

from __future__ import annotations

import logging
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
DUPLICATE_KEY = 11000
MAX_INSERT_RACES = 5


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: lost connections, timeouts, elections, RetryableWriteError."""
    if isinstance(exc, DuplicateKeyError | BulkWriteError):
        return False
    if isinstance(exc, AutoReconnect | ConnectionFailure):
        return True  # includes NetworkTimeout, NotPrimaryError, ServerSelectionTimeoutError
    if isinstance(exc, WriteConcernError | PyMongoError):
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
    """A fresh operation id for one logical write."""
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class GuardedUpdate:
    """One exactly-once update: the document `_id`, and the update operators to apply once."""

    key: Any
    update: Mapping[str, Mapping[str, Any]]


def _guarded_op(item: GuardedUpdate, guard_field: str, op_id: str) -> UpdateOne:
    update = {name: dict(fields) for name, fields in item.update.items()}
    update.setdefault("$set", {})[guard_field] = op_id
    return UpdateOne({"_id": item.key, guard_field: {"$nin": [op_id]}}, update, upsert=True)


async def _not_yet_applied(collection: Any, keys: Sequence[Any], guard_field: str, op_id: str) -> set[Any]:
    """Of documents whose guarded upsert hit a duplicate key, those where `op_id` did not land.

    A duplicate key means either "already applied" or "another writer inserted the document
    first"; the guard field tells which.
    """
    applied = set()
    async for doc in collection.find({"_id": {"$in": list(keys)}}, {guard_field: 1}):
        if doc.get(guard_field) == op_id:
            applied.add(doc["_id"])
    return {key for key in keys if key not in applied}


async def apply_guarded(
    collection: Any,
    items: Sequence[GuardedUpdate],
    op_id: str,
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
            try:
                await collection.bulk_write(ops, ordered=False)
                pending = []
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(err.get("code") != DUPLICATE_KEY for err in errors):
                    raise
                duplicated = [pending[err["index"]] for err in errors]
                again = await _not_yet_applied(collection, [i.key for i in duplicated], guard_field, op_id)
                pending = [item for item in duplicated if item.key in again]
        if pending:
            raise RuntimeError(f"{what}: {len(pending)} guarded upserts kept hitting duplicate keys")

    await with_retry(what, attempt, policy)
