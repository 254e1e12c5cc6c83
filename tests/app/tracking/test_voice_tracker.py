"""VoiceTracker on a real database: batching, cut connections, intents applied exactly once."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pymongo.common

from app.storage.database import make_client
from app.storage.outbox import Outbox
from app.storage.retry import RetryPolicy
from app.storage.writes import Write, Writer
from app.tracking.voice import LiveVoice, VoiceFlags
from app.tracking.voice_tracker import VoiceTracker
from app.wiring.clock import ManualClock, to_ms
from repositories.activity import ActivityRepository, Counters, total_key
from repositories.guild_settings import GuildSettingsRepository
from repositories.voice_sessions import VoiceSessionRepository
from scripts.faultproxy import FaultPlan

G = 7
FAST = RetryPolicy(attempts=3, max_seconds=3, initial_wait=0.01, max_wait=0.05)


def make_tracker(db: Any, clock: ManualClock, policy: RetryPolicy, **kwargs: Any) -> VoiceTracker:
    return VoiceTracker(ActivityRepository(db, policy), VoiceSessionRepository(db, policy),
                        GuildSettingsRepository(db, policy), clock, 600, **kwargs)


def spy_units(tracker: VoiceTracker) -> list[list[Write]]:
    """Record every unit the tracker submits (still applied)."""
    units: list[list[Write]] = []
    submit = tracker.repo.writer.submit

    async def spy(writes: Any, what: str) -> None:
        units.append(list(writes))
        await submit(writes, what)

    tracker.repo.writer.submit = spy  # type: ignore[method-assign]
    return units


def shape(unit: list[Write]) -> list[str]:
    return [f"{w.collection}:{len(w.items) if w.kind == 'guarded' else len(w.ops)}" for w in unit]


async def totals(db: Any) -> dict[int, Counters]:
    return {d["member_id"]: Counters.from_document(d) async for d in db.activity.find({"kind": "total"})}


async def test_flush_writes_at_most_batch_size_sessions_per_unit(db, clock, policy) -> None:
    tracker = make_tracker(db, clock, policy)
    units = spy_units(tracker)
    members = range(1, 2501)
    await tracker.reconcile(G, {m: LiveVoice(20, VoiceFlags(camera=m % 2 == 0)) for m in members})
    assert [shape(u) for u in units] == [["voice_sessions:500", "activity:500"]] * 5
    # the reconcile commits in batches too (issue 16, 3)
    clock.advance(120)
    units.clear()
    result = await tracker.flush()
    # one guarded update per session (credit + checkpoint), then its day document: nothing else
    assert [shape(u) for u in units] == [["activity:500", "activity:500"]] * 5
    assert result.sessions == 2500
    stored = await totals(db)
    assert len(stored) == 2500
    assert stored[2] == Counters(voice_s=120, cam_on_s=120)
    assert stored[3] == Counters(voice_s=120, cam_off_s=120)
    doc = await db.activity.find_one({"_id": total_key(G, 3)})
    assert doc["voice_open"]["checkpoint"] == to_ms(clock.now())
    assert doc["voice_last"]["op"] == doc["voice_seq"]
    assert await db.voice_sessions.count_documents({"checkpoint": {"$exists": True}}) == 0


def frozen_out(objects: Any) -> set[int]:
    ids = {id(o) for o in objects}
    assert len(ids) >= 1200
    return ids


def collected_ids() -> set[int]:
    """The objects the collector walks (frozen ones are not among them)."""
    return {id(o) for o in gc.get_objects()}


async def test_a_large_flush_runs_no_full_collection_and_freezes_the_new_sessions(db, clock, policy) -> None:
    """Issue 16, 3: a full (generation 2) collection walked the flush's batches (38 ms at 10,000
    sessions, an event-loop stall). A flush of 1,000 sessions or more pauses the automatic
    collections (the young generations are collected when due) and freezes the new sessions after
    it. With thresholds that make a full collection due after every few allocations, none runs."""
    tracker = make_tracker(db, clock, policy)
    await tracker.reconcile(G, {m: LiveVoice(20, VoiceFlags()) for m in range(1, 1201)})
    clock.advance(120)
    full: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    thresholds = gc.get_threshold()
    gc.set_threshold(50, 1, 1)
    gc.callbacks.append(seen)
    try:
        result = await tracker.flush()
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*thresholds)
    assert result.sessions == 1200
    assert full == []
    assert not frozen_out(tracker._sessions.values()) & collected_ids()  # the new sessions: frozen
    assert gc.isenabled()
    assert (await totals(db))[7] == Counters(voice_s=120, cam_off_s=120)


async def test_a_large_reconcile_runs_no_full_collection_while_it_commits(db, clock, policy) -> None:
    """Issue 16, 3: the restart's reconcile of 10,000 sessions stalled 52-67 ms in some runs, a full
    collection walking its batches among them. From 1,000 sessions on, it commits as the flush
    does: with thresholds that make a full collection due after every few allocations, none runs
    while a batch is built and written, and the new sessions are frozen at the end."""
    tracker = make_tracker(db, clock, policy)
    committing: list[bool] = [False]
    full_while_committing: list[int] = []
    commit = tracker._commit

    async def watched(writes: Any, keys: Any) -> None:
        committing[0] = True
        try:
            await commit(writes, keys)
        finally:
            committing[0] = False

    tracker._commit = watched  # type: ignore[method-assign]

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2 and committing[0]:
            full_while_committing.append(1)

    thresholds = gc.get_threshold()
    gc.set_threshold(50, 1, 1)
    gc.callbacks.append(seen)
    try:
        await tracker.reconcile(G, {m: LiveVoice(20, VoiceFlags()) for m in range(1, 1201)})
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*thresholds)
    assert full_while_committing == []
    assert not frozen_out(tracker._sessions.values()) & collected_ids()
    assert gc.isenabled()
    assert await db.activity.count_documents({"kind": "total", "voice_open": {"$exists": True}}) == 1200


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


async def test_voice_events_wait_for_the_guild_to_be_reconciled(db, clock, policy) -> None:
    tracker = make_tracker(db, clock, policy)
    waiting = asyncio.create_task(tracker.update(G, 9, LiveVoice(20, VoiceFlags())))
    await asyncio.sleep(0.05)
    assert not waiting.done() and await db.voice_sessions.count_documents({}) == 0
    await tracker.reconcile(G, {})
    await asyncio.wait_for(waiting, 5)
    assert await db.voice_sessions.count_documents({"_id": f"{G}:9"}) == 1
    assert total_key(G, 9) == "t:7:9"


async def test_a_voice_join_seen_before_the_guild_is_reconciled_is_credited_from_its_event(db, clock, policy):
    """Found by the fault campaign (seed 2): at start, discord.py waits up to its chunk timeout for a
    large guild's member list before `guild_available`; a member who joins voice meanwhile is seen
    (the event waits for the reconcile), then found in voice by the reconcile. The time between the
    event and the reconcile was lost: the reconcile opened the session at its own time."""
    tracker = make_tracker(db, clock, policy)
    joined = asyncio.create_task(tracker.update(G, 9, LiveVoice(20, VoiceFlags(camera=True)), at=clock.now()))
    await asyncio.sleep(0.05)
    clock.advance(7)
    await tracker.reconcile(G, {9: LiveVoice(20, VoiceFlags(camera=True))})
    await asyncio.wait_for(joined, 5)
    clock.advance(13)
    await tracker.flush()
    assert (await totals(db))[9] == Counters(voice_s=20, cam_on_s=20)


async def test_moves_and_a_leave_seen_before_the_reconcile_are_credited_at_their_times(db, clock, policy):
    tracker = make_tracker(db, clock, policy)
    await tracker.reconcile(G, {9: LiveVoice(20, VoiceFlags())})
    await tracker.suspend(G)
    clock.advance(10)
    moved = asyncio.create_task(tracker.update(G, 9, LiveVoice(20, VoiceFlags(stream=True)), at=clock.now()))
    await asyncio.sleep(0.02)
    clock.advance(5)
    left = asyncio.create_task(tracker.update(G, 9, None, at=clock.now()))
    await asyncio.sleep(0.02)
    clock.advance(30)
    await tracker.reconcile(G, {})  # gone by now: the two waiting events say when and how
    await asyncio.wait_for(asyncio.gather(moved, left), 5)
    assert (await totals(db))[9] == Counters(voice_s=15, cam_off_s=15, stream_s=5)


async def test_a_member_out_of_voice_at_the_restart_who_joins_before_the_reconcile_gets_no_downtime(
        db, clock, policy):
    """Found by the fault campaign (long run, seed 18): in voice at the SIGKILL, out of voice while
    the bot was down and in the GUILD_CREATE it came back with, in voice again before its reconcile
    (discord.py waits for the member list). The reconcile's own view shows them in voice, and it
    credited the whole downtime as if they had stayed; the event's `before` says they had left."""
    first = make_tracker(db, clock, policy)
    await first.reconcile(G, {9: LiveVoice(20, VoiceFlags())})
    clock.advance(10)
    await first.flush()  # checkpoint at 10 s; the process is killed right after
    clock.advance(30)  # down; the member left and came back meanwhile
    restarted = make_tracker(db, clock, policy)
    joined = asyncio.create_task(restarted.update(G, 9, LiveVoice(21, VoiceFlags()), at=clock.now(),
                                                  before=None))
    await asyncio.sleep(0.05)
    clock.advance(2)
    await restarted.reconcile(G, {9: LiveVoice(21, VoiceFlags())})
    await asyncio.wait_for(joined, 5)
    clock.advance(8)
    await restarted.flush()
    assert (await totals(db))[9] == Counters(voice_s=10 + 10, cam_off_s=10 + 10)


# ---- issue 13, 1: reconcile never reads a state older than what the bot wrote or queued -----------
async def _stop_writer(writer: Writer) -> None:
    await writer.stop()
    await writer.outbox.close()


def _mongodb_away(fault_proxy: Any, writer: Writer) -> None:
    fault_proxy.plan.refuse = True
    fault_proxy.cut_all()
    writer.mark_down("test")


def make_outbox_tracker(db: Any, clock: ManualClock, writer: Writer) -> VoiceTracker:
    policy = writer.policy
    return VoiceTracker(ActivityRepository(db, policy, writer), VoiceSessionRepository(db, policy, writer),
                        GuildSettingsRepository(db, policy), clock, 600)


async def _outbox_writer(client: Any, db: Any, path: Any) -> Writer:
    outbox = await Outbox(path).open()
    writer = Writer(client[db.name], FAST, outbox, drain_policy=FAST)
    await writer.start()
    return writer


async def test_guild_unavailable_then_available_before_the_drain_credits_each_second_once(
        db, clock, fault_proxy, tmp_path, monkeypatch) -> None:
    """The review's first reproduction: 270 s credited for 140 s. The flushes of the outage wait in
    the outbox; the guild comes back (MongoDB answering, the drain not through yet) and the
    reconcile must not start again from the checkpoint MongoDB still holds."""
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    writer = await _outbox_writer(client, db, tmp_path / "outbox.db")
    tracker = make_outbox_tracker(client[db.name], clock, writer)
    try:
        await tracker.reconcile(G, {5: LiveVoice(20, VoiceFlags())})
        clock.advance(60)
        _mongodb_away(fault_proxy, writer)
        await tracker.flush()  # 60 s, into the outbox
        clock.advance(20)
        await tracker.suspend(G)  # guild unavailable: 20 s more, into the outbox
        clock.advance(60)
        fault_proxy.heal()  # MongoDB answers again; the drain is still backing off
        await tracker.reconcile(G, {5: LiveVoice(20, VoiceFlags())})  # 60 s of guild downtime
        await writer.wait_drained(30)
        clock.advance(10)
        await tracker.update(G, 5, None)
    finally:
        await _stop_writer(writer)
        await client.close()
    assert (await totals(db))[5] == Counters(voice_s=150, cam_off_s=150)


async def test_a_restart_reconciles_only_after_the_previous_runs_outbox_is_replayed(
        db, clock, fault_proxy, tmp_path, monkeypatch) -> None:
    """The review's second reproduction (725 s for 365 s): the restart's reconcile read MongoDB while
    the previous run's flushes were still in the outbox."""
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    client = make_client(fault_proxy.uri)
    path = tmp_path / "outbox.db"
    first_writer = await _outbox_writer(client, db, path)
    first = make_outbox_tracker(client[db.name], clock, first_writer)
    await first.reconcile(G, {5: LiveVoice(20, VoiceFlags())})
    clock.advance(120)
    _mongodb_away(fault_proxy, first_writer)
    await first.flush()  # 120 s in the outbox; then the process dies
    await _stop_writer(first_writer)
    clock.advance(30)
    writer = await _outbox_writer(client, db, path)  # the restart: replay starts, MongoDB still away
    second = make_outbox_tracker(client[db.name], clock, writer)
    try:
        reconciling = asyncio.create_task(second.reconcile(G, {5: LiveVoice(20, VoiceFlags())}))
        await asyncio.sleep(0.3)
        assert not reconciling.done()  # waits for the previous run's writes
        fault_proxy.heal()
        await asyncio.wait_for(reconciling, 30)
        await writer.wait_drained(30)
        clock.advance(15)
        await second.update(G, 5, None)
    finally:
        await _stop_writer(writer)
        await client.close()
    assert (await totals(db))[5] == Counters(voice_s=165, cam_off_s=165)


async def test_a_reconcile_during_voice_writes_of_a_known_guild_doubles_nothing(db, clock, policy) -> None:
    """A re-IDENTIFY fires guild_available for a guild whose events keep flowing: the reconcile must
    not read MongoDB between two voice writes of one member (150 s for 90 s)."""
    tracker = make_tracker(db, clock, policy)
    await tracker.reconcile(G, {5: LiveVoice(20, VoiceFlags())})
    reads = []
    entries = tracker.repo.entries

    async def counted(guild_id: int) -> Any:
        reads.append(guild_id)
        return await entries(guild_id)

    tracker.repo.entries = counted  # type: ignore[method-assign]
    clock.advance(30)
    await asyncio.gather(tracker.update(G, 5, LiveVoice(20, VoiceFlags(camera=True))),
                         tracker.reconcile(G, {5: LiveVoice(20, VoiceFlags(camera=True))}))
    clock.advance(60)
    await tracker.update(G, 5, None)
    assert reads == []  # the guild's sessions are known: memory, not MongoDB
    assert (await totals(db))[5] == Counters(voice_s=90, cam_on_s=60, cam_off_s=30)


async def test_a_leave_queued_behind_a_flush_is_not_credited_past_its_time(db, clock, policy) -> None:
    """Issue 13, 8: the flush took "now" after its locks, so a leave waiting behind it was credited
    up to the flush's time."""
    tracker = make_tracker(db, clock, policy)
    await tracker.reconcile(G, {5: LiveVoice(20, VoiceFlags())})
    lock = tracker._locks.setdefault(f"{G}:5", asyncio.Lock())
    await lock.acquire()  # a write of the member is in flight
    clock.advance(60)
    flushing = asyncio.create_task(tracker.flush())
    await asyncio.sleep(0.05)
    clock.advance(30)
    leaving = asyncio.create_task(tracker.update(G, 5, None))  # the leave arrives at 90 s
    await asyncio.sleep(0.05)
    clock.advance(30)  # the lock frees up at 120 s
    lock.release()
    await asyncio.gather(flushing, leaving)
    assert (await totals(db))[5] == Counters(voice_s=90, cam_off_s=90)


async def test_two_voice_events_of_a_member_in_one_millisecond_are_both_applied(db, clock, policy) -> None:
    """Found by the fault campaign (seed 19): `list.remove(x): x not in list` when the first of two
    events with the same arrival time removed both entries."""
    tracker = make_tracker(db, clock, policy)
    at = clock.now()
    first = asyncio.create_task(tracker.update(G, 9, LiveVoice(20, VoiceFlags()), at=at))
    second = asyncio.create_task(tracker.update(G, 9, LiveVoice(21, VoiceFlags()), at=at))
    await asyncio.sleep(0.02)
    await tracker.reconcile(G, {9: LiveVoice(21, VoiceFlags())})
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    clock.advance(30)
    await tracker.flush()
    assert (await totals(db))[9] == Counters(voice_s=30, cam_off_s=30)


async def test_the_ranks_are_told_every_credit_once_in_chunks_of_whole_members(db, clock, policy) -> None:
    """Issue 16, 3: a batch's credits go to the ranks a chunk of members per event-loop turn; a
    member's credits of one operation (two days across midnight) stay in one note."""
    notes: list[tuple[list[Any], int]] = []
    tracker = make_tracker(db, clock, policy, on_credited=lambda c, op: notes.append((list(c), op)))
    clock.set(clock.now().replace(hour=23, minute=59, second=0))
    await tracker.reconcile(G, {m: LiveVoice(20, VoiceFlags()) for m in range(1, 451)})
    clock.advance(120)  # across midnight: two credits per member
    await tracker.flush()
    assert len(notes) == 3  # 200 + 200 + 50 members
    members = [c.member_id for credits, _ in notes for c in credits]
    assert len(members) == 900 and set(members) == set(range(1, 451))
    for credits, _ in notes:
        in_note = [c.member_id for c in credits]
        assert all(in_note.count(m) == 2 for m in in_note)  # both days of a member in one note
    assert len({op for _, op in notes}) == 1
