"""The message group commit: one write in flight, later events in the next write, exact counts."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pymongo.common

from app.storage.database import make_client
from app.storage.outbox import Outbox
from app.storage.retry import RetryPolicy
from app.storage.writes import Writer, decode, execute
from app.tracking.message_counter import MessageCounter
from repositories.activity import (
    CHANNEL_DAY,
    ActivityRepository,
    ChannelCount,
    Counters,
    Credit,
    day_key,
    total_key,
)
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


async def test_a_batch_mongodb_refuses_for_good_is_kept_aside_and_counting_goes_on(
        db, policy, tmp_path, caplog) -> None:
    """Issue 18, 7: a batch MongoDB refused for good (on real MongoDB an `$inc` past int64; here a
    counter that is not a number, refused by both) was retried forever, and every guild's later
    counts waited behind it. It is now kept in the outbox's dead table with one error line."""
    outbox = await Outbox(tmp_path / "outbox.db").open()
    # A unit not acknowledged within `spill_after` goes to the outbox and its refusal is met by the
    # drain (buried there, tests/app/storage/test_outbox.py); this test is about the direct path.
    writer = Writer(db, policy, outbox, spill_after=30)
    repo = ActivityRepository(db, policy, writer)
    await db.activity.insert_one({"_id": total_key(1, 5), "kind": "total", "guild_id": 1, "member_id": 5,
                                  "messages": "not a number"})
    refused: list[list[Credit]] = []
    counter = MessageCounter(repo.add_messages, retry_delay=0.01, set_aside=writer.set_aside,
                             on_refused=refused.append)
    try:
        counter.add(1, 5, "2026-03-10")
        counter.add(2, 7, "2026-03-10")
        await asyncio.wait_for(counter.barrier(), 10)
        counter.add(2, 7, "2026-03-10")  # the next batch is written: nothing waits behind the refused one
        await asyncio.wait_for(counter.barrier(), 10)
        assert (await repo.member_counters(2, 7, None)).messages == 2
        assert counter.refused == 1 and [len(b) for b in refused] == [2]
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1, errors
        assert errors[0].startswith("count messages refused by MongoDB for good (code ")
        assert "2 member-day message count(s) of guild(s) 1, 2 kept aside in" in errors[0]
        (entry, error), = await outbox.dead_entries()
        assert entry.what == "count messages" and error.startswith("code ") and outbox.depth == 0

        # The operator repairs the document and replays the unit kept aside: what MongoDB applied
        # the first time (guild 2, the day document of guild 1) is not counted again.
        await db.activity.update_one({"_id": total_key(1, 5)}, {"$set": {"messages": 0}})
        await execute(db, decode(entry.body), policy, "replay")
        assert (await db.activity.find_one({"_id": total_key(1, 5)}))["messages"] == 1
        assert (await db.activity.find_one({"_id": day_key(1, 5, "2026-03-10")}))["messages"] == 1
        assert (await repo.member_counters(2, 7, None)).messages == 2
    finally:
        await writer.stop()
        await outbox.close()


async def test_a_refused_batch_that_cannot_be_kept_aside_is_retried_not_dropped(db, policy, caplog) -> None:
    writer = Writer(db, policy)  # no outbox: nowhere durable to keep it
    repo = ActivityRepository(db, policy, writer)
    await db.activity.insert_one({"_id": total_key(1, 5), "messages": "not a number"})
    attempts: list[int] = []
    third = asyncio.Event()

    async def write(credits: Iterable[Credit], op_id: int) -> None:
        attempts.append(op_id)
        if len(attempts) == 3:
            third.set()
        await repo.add_messages(credits, op_id)

    counter = MessageCounter(write, retry_delay=0.01, set_aside=writer.set_aside)
    counter.add(1, 5, "2026-03-10")
    await asyncio.wait_for(third.wait(), 10)
    assert counter.busy and len(set(attempts)) == 1  # the same batch, under the same operation id
    await db.activity.update_one({"_id": total_key(1, 5)}, {"$set": {"messages": 0}})
    await asyncio.wait_for(counter.wait_idle(), 10)
    assert (await db.activity.find_one({"_id": total_key(1, 5)}))["messages"] == 1


async def test_channel_counts_ride_in_the_same_write_and_equal_the_events(db, policy) -> None:
    """Each batch's channel counts go in the members' write (one per batch, the same operation id on a
    retry): the stored channel-day counts equal the events, and each batch is told once written."""
    repo = ActivityRepository(db, policy)
    calls: list[tuple[int, int, int]] = []  # (op id, member documents, channel documents)
    told: list[tuple[int, list[ChannelCount]]] = []

    async def lost_reply_once(credits: Iterable[Credit], op_id: int, *, channels: Any = ()) -> None:
        credits, channels = list(credits), list(channels)
        calls.append((op_id, len(credits), len(channels)))
        await repo.add_messages(credits, op_id, channels)  # applied...
        if len(calls) == 1:
            raise ConnectionError("...reply lost")

    seq = iter(range(1, 100))
    counter = MessageCounter(lost_reply_once, retry_delay=0.01, next_seq=lambda: next(seq),
                             on_channels_written=lambda counts, op_id: told.append((op_id, counts)))
    truth: Counter[tuple[int, str]] = Counter()
    rng = random.Random(20)
    for _ in range(300):
        member, channel, day = rng.choice((5, 6, 7)), rng.choice((10, 11, 12)), rng.choice(("2026-03-10",
                                                                                            "2026-03-11"))
        counter.add(1, member, day, channel_id=channel)
        truth[(channel, day)] += 1
        if rng.random() < 0.05:
            await asyncio.sleep(0)  # let a batch go out
    counter.add(1, 5, "2026-03-10")  # no channel (a caller without one): a member count only
    await counter.wait_idle()
    stored = Counter({(d["channel_id"], d["day"]): d["messages"]
                      async for d in db.activity.find({"kind": CHANNEL_DAY})})
    assert stored == truth
    assert calls[0][0] == calls[1][0]  # the lost reply: the same batch again, under the same id
    assert len({c[0] for c in calls}) == len(calls) - 1  # every other batch once
    assert [op_id for op_id, _ in told] == sorted({c[0] for c in calls if c[2]})  # once per written batch
    noted: Counter[tuple[int, str]] = Counter()
    for _, counts in told:
        for c in counts:
            noted[(c.channel_id, c.day)] += c.messages
    assert noted == truth
    totals = sum([d["messages"] async for d in db.activity.find({"kind": "total"})])
    assert totals == sum(truth.values()) + 1


async def test_while_the_outbox_drains_batches_grow_instead_of_one_small_entry_per_write(
        db, fault_proxy, policy, tmp_path) -> None:
    """MongoDB answers every request 0.2 s late: the first write spills, and from then on units go
    to the outbox in order. The counter waits for the drain (or until its oldest event is
    `spill_after` old) before each batch, so 1.5 s of steady events make a handful of outbox
    entries to replay, not one per fsync; the counts stay exact."""
    client = make_client(fault_proxy.uri)
    slow_db = client[db.name]
    outbox = await Outbox(tmp_path / "outbox.db").open()
    writer = Writer(slow_db, policy, outbox)
    repo = ActivityRepository(slow_db, policy, writer)
    counter = MessageCounter(repo.add_messages, retry_delay=0.01, catch_up=writer.catch_up)
    fault_proxy.plan = FaultPlan(delay=0.2)
    expected: Counter[int] = Counter()
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        i = 0
        while loop.time() < end:
            counter.add(1, i % 5, "2026-03-10")
            expected[i % 5] += 1
            i += 1
            await asyncio.sleep(0.005)
        await asyncio.wait_for(counter.wait_idle(), 30)
        assert writer.spilled >= 1  # the outbox was in use
        assert writer.queued_total <= 15, writer.queued_total  # ~1.5 s / 0.15 s, plus the spilled
        await writer.wait_drained(60)
    finally:
        await writer.stop()
        await outbox.close()
        await client.close()
    stored = {d["member_id"]: d["messages"] async for d in db.activity.find({"kind": "total"})}
    assert stored == dict(expected) and sum(expected.values()) == i
