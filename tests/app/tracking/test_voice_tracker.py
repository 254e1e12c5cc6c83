"""VoiceTracker on a real database: batching, cut connections, intents applied exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pymongo.common
import pytest

from app.storage.database import make_client
from app.storage.retry import RetryPolicy
from app.tracking.voice import LiveVoice, VoiceFlags
from app.tracking.voice_tracker import VoiceTracker
from app.wiring.clock import ManualClock
from repositories.activity import ActivityRepository, Counters, total_key
from repositories.guild_settings import GuildSettingsRepository
from repositories.voice_sessions import VoiceSessionRepository
from tests.faultproxy import FaultPlan

G = 7


def make_tracker(db: Any, clock: ManualClock, policy: RetryPolicy, **kwargs: Any) -> VoiceTracker:
    return VoiceTracker(ActivityRepository(db, policy), VoiceSessionRepository(db, policy),
                        GuildSettingsRepository(db, policy), clock, 600, **kwargs)


async def totals(db: Any) -> dict[int, Counters]:
    return {d["member_id"]: Counters.from_document(d) async for d in db.activity.find({"kind": "total"})}


async def test_flush_writes_at_most_batch_size_sessions_per_bulk_write(db, clock, policy) -> None:
    tracker = make_tracker(db, clock, policy)
    sizes: list[int] = []
    record = tracker.repo.record

    async def spy(writes: Any) -> None:
        sizes.append(len(writes))
        await record(writes)

    tracker.repo.record = spy  # type: ignore[method-assign]
    members = range(1, 2501)
    await tracker.reconcile(G, {m: LiveVoice(20, VoiceFlags(camera=m % 2 == 0)) for m in members})
    assert sizes == [2500]  # every session opened in one write
    clock.advance(120)
    sizes.clear()
    result = await tracker.flush()
    assert sizes == [1000, 1000, 500] and result.sessions == 2500
    stored = await totals(db)
    assert len(stored) == 2500
    assert stored[2] == Counters(voice_s=120, cam_on_s=120)
    assert stored[3] == Counters(voice_s=120, cam_off_s=120)
    assert await db.voice_sessions.count_documents({"pending_op": {"$exists": True}}) == 0


async def test_flush_through_cut_connections_neither_loses_nor_doubles(db, clock, fault_proxy, monkeypatch):
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    policy = RetryPolicy(attempts=40, max_seconds=60, initial_wait=0.001, max_wait=0.02)
    tracker = make_tracker(client[db.name], clock, policy, batch_size=4)
    members = list(range(1, 11))
    try:
        await tracker.reconcile(G, {m: LiveVoice(20, VoiceFlags(stream=m <= 3)) for m in members})
        fault_proxy.plan = FaultPlan(cut_probability=0.05, cut_after_forward_probability=0.25, seed=11)
        elapsed = 0
        flushes = 0
        while fault_proxy.cuts_after_forward < 40 or flushes < 30:
            clock.advance(7)
            elapsed += 7
            await tracker.flush()
            flushes += 1
            assert flushes < 2000, "fault injection is not taking effect"
        fault_proxy.heal()
        clock.advance(3)
        elapsed += 3
        for m in members:
            await tracker.update(G, m, None)
    finally:
        await client.close()
    assert fault_proxy.cuts_after_forward >= 40
    stored = await totals(db)
    for m in members:
        assert stored[m] == Counters(voice_s=elapsed, cam_off_s=elapsed, stream_s=elapsed if m <= 3 else 0), m
    assert await db.voice_sessions.count_documents({}) == 0


async def test_an_intent_whose_clearing_failed_is_not_credited_twice(db, clock, policy) -> None:
    tracker = make_tracker(db, clock, policy)
    await tracker.reconcile(G, {5: LiveVoice(20, VoiceFlags())})
    clock.advance(30)
    finish = tracker.repo.finish
    failures = []

    async def lost_reply(*args: Any, **kwargs: Any) -> None:
        await finish(*args, **kwargs)  # applied on the server...
        failures.append(1)
        raise ConnectionError("...but the reply never came")

    tracker.repo.finish = lost_reply  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await tracker.flush()
    tracker.repo.finish = finish  # type: ignore[method-assign]
    clock.advance(10)
    await tracker.update(G, 5, None)  # re-applies the leftover intent (guarded), then closes
    assert failures == [1]
    assert (await totals(db))[5] == Counters(voice_s=40, cam_off_s=40)


async def test_counters_failing_leaves_the_intent_and_a_new_tracker_applies_it_once(db, clock, policy):
    """A crash between the session write and the counter write: the next start applies the intent."""
    first = make_tracker(db, clock, policy)
    await first.reconcile(G, {5: LiveVoice(20, VoiceFlags(camera=True))})
    clock.advance(45)

    async def killed(*args: Any) -> None:
        raise ConnectionError("killed")

    first.activity.add_voice = killed  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await first.update(G, 5, LiveVoice(21, VoiceFlags()))
    assert (await db.voice_sessions.find_one({"_id": f"{G}:5"}))["pending"]
    second = make_tracker(db, clock, policy)
    await second.reconcile(G, {5: LiveVoice(21, VoiceFlags())})  # no time passed since the checkpoint
    assert (await totals(db))[5] == Counters(voice_s=45, cam_on_s=45)
    third = make_tracker(db, clock, policy)
    await third.reconcile(G, {})  # gone: closed at the checkpoint, nothing more
    assert (await totals(db))[5] == Counters(voice_s=45, cam_on_s=45)
    assert await db.voice_sessions.count_documents({}) == 0


async def test_voice_events_wait_for_the_guild_to_be_reconciled(db, clock, policy) -> None:
    tracker = make_tracker(db, clock, policy)
    waiting = asyncio.create_task(tracker.update(G, 9, LiveVoice(20, VoiceFlags())))
    await asyncio.sleep(0.05)
    assert not waiting.done() and await db.voice_sessions.count_documents({}) == 0
    await tracker.reconcile(G, {})
    await asyncio.wait_for(waiting, 5)
    assert await db.voice_sessions.count_documents({"_id": f"{G}:9"}) == 1
    assert total_key(G, 9) == "t:7:9"
