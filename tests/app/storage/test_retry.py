import asyncio

import pymongo.common
import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from app.storage.database import make_client
from app.storage.retry import (
    GuardedUpdate,
    RetryPolicy,
    apply_guarded,
    is_transient,
    new_op_id,
    next_op_seq,
    refused_for_good,
    with_retry,
)
from app.storage.writes import Op, Write, execute
from scripts.faultproxy import FaultPlan

FAST = RetryPolicy(attempts=4, max_seconds=5, initial_wait=0.001, max_wait=0.01)


@pytest.mark.parametrize(
    "exc",
    [AutoReconnect("x"), NetworkTimeout("x"), NotPrimaryError("x"), ServerSelectionTimeoutError("x")],
)
def test_transient_errors_are_retried(exc):
    assert is_transient(exc)


def test_labelled_retryable_write_error_is_transient():
    exc = OperationFailure("x", code=91, details={"errorLabels": ["RetryableWriteError"]})
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [DuplicateKeyError("dup", 11000), WriteError("bad", 121), OperationFailure("x", 2), ValueError("x")],
)
def test_permanent_errors_are_not_retried(exc):
    assert not is_transient(exc)


async def test_with_retry_retries_transient_then_succeeds(caplog):
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise AutoReconnect("connection closed")
        return "ok"

    assert await with_retry("flaky write", flaky, FAST) == "ok"
    assert len(calls) == 3
    attempts = [r for r in caplog.records if "flaky write failed" in r.getMessage()]
    assert len(attempts) == 2, "each failed attempt is logged"


async def test_with_retry_is_bounded():
    calls = []

    async def down():
        calls.append(1)
        raise AutoReconnect("down")

    with pytest.raises(AutoReconnect):
        await with_retry("down", down, FAST)
    assert len(calls) == FAST.attempts


async def test_with_retry_never_retries_a_duplicate_key():
    calls = []

    async def dup():
        calls.append(1)
        raise DuplicateKeyError("dup", 11000)

    with pytest.raises(DuplicateKeyError):
        await with_retry("dup", dup, FAST)
    assert len(calls) == 1


async def test_replaying_an_applied_operation_counts_once(db):
    items = [GuardedUpdate("a", {"$inc": {"n": 1}}), GuardedUpdate("b", {"$inc": {"n": 2}})]
    op = new_op_id()
    await apply_guarded(db.c, items, op, "last_op", FAST, "test")
    await apply_guarded(db.c, items, op, "last_op", FAST, "test")  # the reply was lost; caller retries
    docs = {d["_id"]: d["n"] async for d in db.c.find()}
    assert docs == {"a": 1, "b": 2}
    await apply_guarded(db.c, items, new_op_id(), "last_op", FAST, "test")
    assert {d["_id"]: d["n"] async for d in db.c.find()} == {"a": 2, "b": 4}


async def test_concurrent_first_inserts_under_different_guards_both_count(db):
    """Two writers racing to create the same document: a duplicate key from the race is not 'applied'."""
    for round_ in range(30):
        key = f"k{round_}"
        await asyncio.gather(
            apply_guarded(db.c, [GuardedUpdate(key, {"$inc": {"m": 1}})], new_op_id(), "m_op", FAST, "m"),
            apply_guarded(db.c, [GuardedUpdate(key, {"$inc": {"v": 1}})], new_op_id(), "v_op", FAST, "v"),
        )
    async for doc in db.c.find():
        assert (doc["m"], doc["v"]) == (1, 1), doc


async def test_writes_through_cut_connections_count_exactly_once(db, fault_proxy, monkeypatch):
    """At least 200 injected faults, many after the server applied the write: every count exact."""
    # The driver waits 0.5 s before re-checking a server after a network error; shorten it so 200
    # faults take seconds, not minutes. The code under test is unchanged.
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    fault_proxy.plan = FaultPlan(cut_probability=0.05, cut_after_forward_probability=0.25, seed=7)
    client = make_client(fault_proxy.uri)
    client_db = client[db.name]
    policy = RetryPolicy(attempts=30, max_seconds=60, initial_wait=0.001, max_wait=0.02)
    expected: dict[str, int] = {}
    try:
        writes = 0
        while fault_proxy.faults < 200 or writes < 300:
            key = f"member{writes % 7}"
            amount = writes % 5 + 1
            await apply_guarded(
                client_db.counts, [GuardedUpdate(key, {"$inc": {"n": amount}})], new_op_id(), "last_op",
                policy, "count",
            )
            expected[key] = expected.get(key, 0) + amount
            writes += 1
            assert writes < 5000, "fault injection is not taking effect"
    finally:
        await client.close()
    assert fault_proxy.faults >= 200
    assert fault_proxy.cuts_after_forward >= 50
    stored = {d["_id"]: d["n"] async for d in db.counts.find()}
    assert stored == expected


# ---- issue 13: late requests and write-concern errors ---------------------------------------------
WRITE_CONCERN_ERROR = {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication"}


def test_a_write_concern_error_means_outcome_unknown_not_refused():
    only_concern = BulkWriteError({"writeErrors": [], "writeConcernErrors": [WRITE_CONCERN_ERROR]})
    refused = BulkWriteError({"writeErrors": [{"index": 0, "code": 121, "errmsg": "validation"}],
                              "writeConcernErrors": []})
    assert is_transient(only_concern)
    assert not is_transient(refused)


# ---- issue 18, 7: a write MongoDB refuses for good -------------------------------------------------
# The shape of real MongoDB's answer to an `$inc` past int64 in an unordered bulk write (code 2).
INC_OVERFLOW = {"index": 0, "code": 2, "codeName": "BadValue",
                "errmsg": "Failed to apply $inc operations to current value "
                          "((NumberLong)9223372036854775807) for document {_id: \"t:1:5\"}"}


@pytest.mark.parametrize(("exc", "refused"), [
    (BulkWriteError({"writeErrors": [INC_OVERFLOW], "writeConcernErrors": []}), True),
    (BulkWriteError({"writeErrors": [{"index": 1, "code": 11000}, INC_OVERFLOW], "writeConcernErrors": []}),
     True),
    (BulkWriteError({"writeErrors": [{"index": 0, "code": 14, "errmsg": "Cannot apply $inc to a value of "
                                      "non-numeric type"}], "writeConcernErrors": []}), True),
    (WriteError("Failed to apply $inc operations", 2), True),
    (BulkWriteError({"writeErrors": [INC_OVERFLOW], "writeConcernErrors": [WRITE_CONCERN_ERROR]}), False),
    (BulkWriteError({"writeErrors": [INC_OVERFLOW, {"index": 1, "code": 11602}], "writeConcernErrors": []}),
     False),
    (BulkWriteError({"writeErrors": [{"index": 0, "code": 10107}], "writeConcernErrors": []}), False),
    (BulkWriteError({"writeErrors": [], "writeConcernErrors": []}), False),
    (OperationFailure("x", 91, details={"errorLabels": ["RetryableWriteError"]}), False),
    (OperationFailure("x", 50), False), (AutoReconnect("x"), False), (ConnectionError("x"), False),
    (ValueError("x"), False),
])
def test_only_a_definite_refusal_is_refused_for_good(exc, refused):
    assert refused_for_good(exc) is refused


async def _proxied(fault_proxy, db, monkeypatch):
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    return client, client[db.name]


async def test_a_request_delivered_late_after_newer_writes_is_refused(db, fault_proxy, monkeypatch):
    """Issue 13, 2: op1's request is held on the wire; the client sees a cut connection, op1 is applied
    by a retry, op2 after it; then the held op1 lands. With a guard that only remembers the last op
    id it matched again (3 for 2); the sequence guard refuses every older operation."""
    client, client_db = await _proxied(fault_proxy, db, monkeypatch)
    try:
        fault_proxy.plan = FaultPlan(hold_next=1.0)
        for _ in range(2):
            await apply_guarded(client_db.counts, [GuardedUpdate("ada", {"$inc": {"n": 1}})], next_op_seq(),
                                "n_seq", FAST, "count")
        for _ in range(100):
            if fault_proxy.delivered_late:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    assert fault_proxy.held == 1 and fault_proxy.delivered_late == 1
    assert (await db.counts.find_one({"_id": "ada"}))["n"] == 2


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "rolled-back"])
async def test_a_guarded_write_answered_with_a_write_concern_error_is_retried_to_exactly_once(
        db, fault_proxy, monkeypatch, applied):
    """Issue 13, 3: a writeConcernError is neither success (a write rolled back on failover would be
    lost) nor permanent: the write is retried under its guard until acknowledged."""
    client, client_db = await _proxied(fault_proxy, db, monkeypatch)
    try:
        fault_proxy.plan = FaultPlan(write_concern_error_next=1, write_concern_error_applies=applied)
        await apply_guarded(client_db.counts, [GuardedUpdate("ada", {"$inc": {"n": 1}})], next_op_seq(),
                            "n_seq", FAST, "count")
    finally:
        await client.close()
    assert fault_proxy.write_concern_errors == 1
    assert (await db.counts.find_one({"_id": "ada"}))["n"] == 1


async def test_an_idempotent_unit_answered_with_a_write_concern_error_is_retried(
        db, fault_proxy, monkeypatch):
    client, client_db = await _proxied(fault_proxy, db, monkeypatch)
    try:
        fault_proxy.plan = FaultPlan(write_concern_error_next=1, write_concern_error_applies=False)
        op = Op("update_one", {"_id": "s"}, {"$set": {"checkpoint": 5}}, upsert=True)
        unit = [Write.bulk("state", [op])]
        await execute(client_db, unit, FAST, "state")
    finally:
        await client.close()
    assert fault_proxy.write_concern_errors == 1
    assert (await db.state.find_one({"_id": "s"}))["checkpoint"] == 5


async def test_sequences_refuse_replays_and_older_operations_and_strings_keep_their_own_guard(db):
    first, second = next_op_seq(), next_op_seq()
    assert second > first
    item = [GuardedUpdate("ada", {"$inc": {"n": 1}})]
    for op in (first, second, first, second):  # the replays and the older op are refused
        await apply_guarded(db.counts, item, op, "n_seq", FAST, "count")
    await apply_guarded(db.counts, [GuardedUpdate("bob", {"$set": {"x": 1}})], first, "n_seq", FAST, "x")
    await apply_guarded(db.counts, item, "import-1", "n_import", FAST, "import")
    await apply_guarded(db.counts, item, "import-1", "n_import", FAST, "import")
    assert (await db.counts.find_one({"_id": "ada"}))["n"] == 3
    assert (await db.counts.find_one({"_id": "bob"}))["x"] == 1  # another document: its own sequence
