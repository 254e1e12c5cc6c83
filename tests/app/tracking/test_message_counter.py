"""The message group commit: one write in flight, later events in the next write, exact counts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pymongo.common

from app.storage.database import make_client
from app.storage.outbox import Outbox
from app.storage.retry import RetryPolicy
from app.storage.writes import Writer
from app.tracking.message_counter import MessageCounter
from repositories.activity import ActivityRepository, Counters, Credit, day_key, total_key
from scripts.faultproxy import FaultPlan


async def test_events_during_a_write_go_into_the_next_write(db, policy) -> None:
    repo = ActivityRepository(db, policy)
    batches: list[list[Credit]] = []
    gate = asyncio.Event()

    async def write(credits: Iterable[Credit], op_id: str) -> None:
        batches.append(list(credits))
        if len(batches) == 1:
            await gate.wait()  # the first write is in flight
        await repo.add_messages(batches[-1], op_id)

    counter = MessageCounter(write)
    counter.add(1, 5, "2026-03-10")
    await asyncio.sleep(0)
    for _ in range(9):
        counter.add(1, 5, "2026-03-10")
    counter.add(1, 6, "2026-03-11")
    await asyncio.sleep(0.01)
    assert len(batches) == 1  # nothing waits for a timer, nothing jumps the in-flight write
    gate.set()
    await counter.wait_idle()
    written = [[(c.member_id, c.amounts["messages"]) for c in b] for b in batches]
    assert written == [[(5, 1)], [(5, 9), (6, 1)]]
    assert Counters.from_document(await db.activity.find_one({"_id": total_key(1, 5)})).messages == 10
    sixth = await db.activity.find_one({"_id": day_key(1, 6, "2026-03-11")})
    assert Counters.from_document(sixth).messages == 1


async def test_a_failed_batch_is_retried_with_the_same_operation_id(db, policy) -> None:
    repo = ActivityRepository(db, policy)
    ops: list[str] = []

    async def lost_reply_once(credits: Iterable[Credit], op_id: str) -> None:
        ops.append(op_id)
        await repo.add_messages(credits, op_id)  # applied...
        if len(ops) == 1:
            raise ConnectionError("...reply lost")

    counter = MessageCounter(lost_reply_once, retry_delay=0.01)
    for _ in range(3):
        counter.add(1, 5, "2026-03-10")
    await counter.wait_idle()
    assert len(ops) == 2 and ops[0] == ops[1]
    assert (await db.activity.find_one({"_id": total_key(1, 5)}))["messages"] == 3


async def test_message_counts_through_cut_connections_are_exact(db, fault_proxy, monkeypatch) -> None:
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    repo = ActivityRepository(client[db.name], RetryPolicy(attempts=3, max_seconds=5, initial_wait=0.001,
                                                           max_wait=0.01))
    counter = MessageCounter(repo.add_messages, retry_delay=0.01)
    fault_proxy.plan = FaultPlan(cut_probability=0.05, cut_after_forward_probability=0.25, seed=3)
    expected: dict[int, int] = {}
    try:
        i = 0
        while fault_proxy.cuts_after_forward < 30 or i < 300:
            member = i % 7
            counter.add(1, member, "2026-03-10")
            expected[member] = expected.get(member, 0) + 1
            i += 1
            if i % 3 == 0:
                await asyncio.wait_for(counter.wait_idle(), 60)  # many separate batches
            assert i < 20000, "fault injection is not taking effect"
        await asyncio.wait_for(counter.wait_idle(), 60)
    finally:
        await client.close()
    assert fault_proxy.cuts_after_forward >= 30
    stored: dict[int, Any] = {
        d["member_id"]: d["messages"] async for d in db.activity.find({"kind": "total"})
    }
    days = {d["member_id"]: d["messages"] async for d in db.activity.find({"kind": "day"})}
    assert stored == expected == days


async def test_counts_after_the_outbox_closed_are_not_retried_forever(db, policy, tmp_path, caplog) -> None:
    """Issue 13, 5: a message arriving during close(), after the outbox closed, kept the group
    commit retrying forever. It is now refused once, with one error line."""
    outbox = await Outbox(tmp_path / "outbox.db").open()
    writer = Writer(db, policy, outbox)
    repo = ActivityRepository(db, policy, writer)
    await writer.stop()
    await outbox.close()
    counter = MessageCounter(repo.add_messages, retry_delay=0.01)
    counter.add(1, 5, "2026-03-10")
    await asyncio.wait_for(counter.wait_idle(), 5)
    assert not counter.busy and await db.activity.count_documents({}) == 0
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "message counts of 1 member-day(s) arrived after the outbox closed; not kept"]
