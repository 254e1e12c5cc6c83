"""The durable outbox and the Writer: nothing lost while MongoDB is away, nothing applied twice."""

from __future__ import annotations

import asyncio
import logging

import pymongo.common

from app.storage.database import make_client
from app.storage.outbox import Outbox
from app.storage.retry import GuardedUpdate, RetryPolicy, new_op_id
from app.storage.writes import Write, Writer, decode, encode

FAST = RetryPolicy(attempts=2, max_seconds=1, initial_wait=0.01, max_wait=0.05)


def inc(key: str, amount: int = 1) -> Write:
    return Write.guarded("counts", [GuardedUpdate(key, {"$inc": {"n": amount}})], new_op_id(), "op")


async def test_entries_survive_a_reopen_in_order(tmp_path):
    outbox = await Outbox(tmp_path / "outbox.db").open()
    for i in range(3):
        await outbox.append(f"w{i}", encode([inc(f"k{i}")]), 1000 + i)
    await outbox.close()
    again = await Outbox(tmp_path / "outbox.db").open()
    entries = await again.peek(10)
    assert [e.what for e in entries] == ["w0", "w1", "w2"] and again.depth == 3
    assert decode(entries[1].body)[0].items[0].key == "k1"
    assert await again.oldest_created_ms() == 1000
    await again.delete(entries[0].id)
    assert again.depth == 2
    await again.close()


async def test_a_corrupt_outbox_is_moved_aside_and_a_new_one_started(tmp_path, caplog):
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database" * 100)
    outbox = await Outbox(path).open()
    assert outbox.moved_aside is not None and outbox.moved_aside.name.startswith("outbox.db.corrupt-")
    assert outbox.moved_aside.read_bytes().startswith(b"this is not a database")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(path) in errors[0].getMessage()
    await outbox.append("w", encode([inc("k")]), 1)
    assert outbox.depth == 1
    await outbox.close()


async def test_writes_during_an_outage_wait_in_the_outbox_and_count_once(db, fault_proxy, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    outbox = await Outbox(tmp_path / "outbox.db").open()
    writer = Writer(client[db.name], FAST, outbox, drain_policy=FAST)
    try:
        await writer.submit([inc("a")], "before")
        fault_proxy.plan.refuse = True
        fault_proxy.cut_all()
        for _ in range(5):
            await writer.submit([inc("a"), inc("b", 2)], "during")  # never raises
        assert outbox.depth == 5 and writer.draining
        await writer.submit([inc("a")], "queued behind")
        fault_proxy.heal()
        await writer.wait_drained(30)
    finally:
        await writer.stop()
        await outbox.close()
        await client.close()
    assert outbox.depth == 0 and writer.replayed == 6
    assert {d["_id"]: d["n"] async for d in db.counts.find()} == {"a": 7, "b": 10}


async def test_replay_of_an_entry_already_applied_counts_once(db, tmp_path):
    """The write reached MongoDB but its reply was lost: replaying it from the outbox is a no-op."""
    outbox = await Outbox(tmp_path / "outbox.db").open()
    writer = Writer(db, FAST, outbox)
    checkpoint = Write.idempotent("sessions", {"_id": "s"}, {"$set": {"checkpoint": 10}}, upsert=True)
    unit = [inc("a", 5), checkpoint]
    await writer.submit(unit, "applied")
    await outbox.append("lost reply", encode(unit), 1)
    await writer.start()
    await writer.wait_drained(10)
    await writer.stop()
    await outbox.close()
    assert (await db.counts.find_one({"_id": "a"}))["n"] == 5
    assert (await db.sessions.find_one({"_id": "s"}))["checkpoint"] == 10


async def test_a_restart_replays_the_previous_runs_outbox_before_new_writes(db, tmp_path):
    path = tmp_path / "outbox.db"
    first = await Outbox(path).open()
    for amount in (1, 2, 3):
        await first.append("old", encode([inc("a", amount)]), 1)
    await first.close()  # the bot died here, MongoDB never saw these

    outbox = await Outbox(path).open()
    writer = Writer(db, FAST, outbox)
    await writer.start()
    await writer.submit([Write.idempotent("counts", {"_id": "a"}, {"$set": {"after": 1}})], "new")
    await writer.wait_drained(10)
    await writer.stop()
    await outbox.close()
    doc = await db.counts.find_one({"_id": "a"})
    assert doc["n"] == 6 and doc["after"] == 1


async def test_a_write_mongodb_refuses_for_good_is_kept_aside_not_retried_forever(db, tmp_path, caplog):
    outbox = await Outbox(tmp_path / "outbox.db").open()
    bad = Write.idempotent("counts", {"_id": "a"}, {"$inc": {"n": "not a number"}}, upsert=True)
    await outbox.append("bad", encode([bad]), 1)
    await outbox.append("good", encode([inc("b")]), 2)
    writer = Writer(db, FAST, outbox)
    await writer.start()
    await asyncio.wait_for(writer.wait_drained(), 10)
    assert await outbox.dead_count() == 1 and outbox.depth == 0
    assert (await db.counts.find_one({"_id": "b"}))["n"] == 1
    assert any("refused by MongoDB" in r.getMessage() for r in caplog.records)
    await writer.stop()
    await outbox.close()


async def test_once_mongodb_is_known_down_writes_go_to_the_outbox_without_waiting(db, fault_proxy, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    outbox = await Outbox(tmp_path / "outbox.db").open()
    writer = Writer(client[db.name], RetryPolicy(attempts=50, max_seconds=600), outbox, drain_policy=FAST)
    try:
        fault_proxy.plan.refuse = True
        fault_proxy.cut_all()
        writer.mark_down("test ping failed")
        await asyncio.wait_for(writer.submit([inc("a")], "kept"), 5)  # no 600 s of retries
        assert outbox.depth == 1 and writer.failures_total == 0 and writer.draining
        await asyncio.sleep(0.5)
        assert writer.draining, "an empty queue is not 'drained' while MongoDB does not answer"
        fault_proxy.heal()
        await writer.wait_drained(30)
    finally:
        await writer.stop()
        await outbox.close()
        await client.close()
    assert (await db.counts.find_one({"_id": "a"}))["n"] == 1
