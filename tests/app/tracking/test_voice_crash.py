"""Issue 16, 2: one write per session. A voice unit is [list new sessions] -> [all-time documents:
credit + checkpoint + the day credits as `voice_last`] -> [day documents] -> [unlist closed
sessions]; a crash between any two of them, a replay of the unit from the outbox and a late
duplicate request must all credit each second once. Also: sessions stored in the shape before."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from app.storage.outbox import Outbox
from app.storage.retry import RetryPolicy
from app.storage.writes import Write, Writer, encode, execute
from app.tracking.voice import LiveVoice, VoiceFlags
from app.tracking.voice_tracker import VoiceTracker
from app.wiring.clock import ManualClock, to_ms
from repositories.activity import ActivityRepository, Counters, Credit, total_key
from repositories.guild_settings import GuildSettingsRepository
from repositories.voice_sessions import Intent, SessionWrite, VoiceSession, VoiceSessionRepository

G, M = 7, 5
CAMERA = VoiceFlags(camera=True)


class Killed(Exception):
    """The process died in the middle of a unit."""


class CrashingWriter(Writer):
    """A writer that, once armed, applies only the first `k` writes of the next unit and dies."""

    def __init__(self, db: Any, policy: RetryPolicy) -> None:
        super().__init__(db, policy)
        self.armed: int | None = None
        self.units: list[list[Write]] = []

    async def submit(self, writes: Sequence[Write], what: str) -> None:
        self.units.append(list(writes))
        if self.armed is None:
            await super().submit(writes, what)
            return
        k, self.armed = self.armed, None
        await execute(self.db, list(writes)[:k], self.policy, what)
        raise Killed(f"after {k} of {len(writes)} writes")


def tracker_on(db: Any, clock: ManualClock, writer: Writer) -> VoiceTracker:
    policy = writer.policy
    return VoiceTracker(ActivityRepository(db, policy, writer), VoiceSessionRepository(db, policy, writer),
                        GuildSettingsRepository(db, policy), clock, 600)


async def stored(db: Any, member: int = M) -> tuple[Counters, Counters]:
    """The member's all-time counters and the sum of their day documents."""
    total = Counters.from_document(await db.activity.find_one({"_id": total_key(G, member)}))
    days = [Counters.from_document(d) async for d in db.activity.find({"kind": "day", "member_id": member})]
    summed = Counters(**{name: sum(getattr(d, name) for d in days) for name in
                         ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")})
    return total, summed


ACTIONS = {
    # name: (what the crashed process does, where the member is at the restart, unit length)
    "open": (lambda t: t.update(G, M, LiveVoice(20, CAMERA)), LiveVoice(20, CAMERA), 2),
    "flush": (lambda t: t.flush(), LiveVoice(20, CAMERA), 2),
    "move": (lambda t: t.update(G, M, LiveVoice(21, VoiceFlags())), LiveVoice(21, VoiceFlags()), 2),
    "leave": (lambda t: t.update(G, M, None), None, 3),
}


def expected(action: str, applied: int) -> Counters:
    """What the member must end with: 45 s before the crash (open: after it), 10 s after the restart."""
    if action == "open":
        return Counters(voice_s=10, cam_on_s=10)
    if action == "move":
        return Counters(voice_s=55, cam_on_s=45, cam_off_s=10)
    if action == "leave":  # gone at the restart: closed at the checkpoint stored (lost only if none moved)
        return Counters(voice_s=45, cam_on_s=45) if applied >= 1 else Counters()
    return Counters(voice_s=55, cam_on_s=55)


CRASH_POINTS = [(action, applied)  # after 0 .. all writes of the action's unit
                for action, (_, _, length) in ACTIONS.items() for applied in range(length + 1)]


@pytest.mark.parametrize(("action", "applied"), CRASH_POINTS)
async def test_a_crash_between_any_two_writes_of_a_unit_credits_each_second_once(
        db, clock, policy, action: str, applied: int) -> None:
    act, at_restart, length = ACTIONS[action]
    writer = CrashingWriter(db, policy)
    first = tracker_on(db, clock, writer)
    await first.reconcile(G, {} if action == "open" else {M: LiveVoice(20, CAMERA)})
    clock.advance(45)
    writer.armed = applied
    with pytest.raises(Killed):
        await act(first)
    assert len(writer.units[-1]) == length
    # the restart: a new process, no time passed
    second = tracker_on(db, clock, Writer(db, policy))
    await second.reconcile(G, {} if at_restart is None else {M: at_restart})
    clock.advance(10)
    await second.update(G, M, None)
    total, days = await stored(db)
    assert total == days, "the day documents disagree with the total"
    assert total == expected(action, applied)
    assert await db.voice_sessions.count_documents({}) == 0
    assert "voice_open" not in (await db.activity.find_one({"_id": total_key(G, M)}) or {})


@pytest.mark.parametrize("landed", [0, 1, 2])
async def test_a_unit_replayed_from_the_outbox_after_part_of_it_landed_counts_once(
        db, clock, policy, tmp_path, landed: int) -> None:
    writer = CrashingWriter(db, policy)
    first = tracker_on(db, clock, writer)
    await first.reconcile(G, {M: LiveVoice(20, CAMERA)})
    clock.advance(45)
    writer.armed = landed
    with pytest.raises(Killed):
        await first.flush()
    outbox = await Outbox(tmp_path / "outbox.db").open()
    await outbox.append("credit voice time", encode(writer.units[-1]), to_ms(clock.now()))
    replaying = Writer(db, policy, outbox, drain_policy=policy)
    await replaying.start()  # the restart replays the unit before anything reads
    second = tracker_on(db, clock, replaying)
    try:
        await second.reconcile(G, {M: LiveVoice(20, CAMERA)})
        await replaying.wait_drained(10)
        clock.advance(10)
        await second.update(G, M, None)
    finally:
        await replaying.stop()
        await outbox.close()
    assert await stored(db) == (Counters(voice_s=55, cam_on_s=55),) * 2


async def test_a_late_duplicate_request_changes_nothing(db, clock, policy) -> None:
    """A request of an older unit reaching MongoDB after a newer one (and twice): refused everywhere,
    the checkpoint is not moved back, nothing is credited again, also across a restart."""
    writer = CrashingWriter(db, policy)
    tracker = tracker_on(db, clock, writer)
    await tracker.reconcile(G, {M: LiveVoice(20, CAMERA)})
    clock.advance(45)
    await tracker.flush()
    late = writer.units[-1]
    clock.advance(45)
    await tracker.flush()
    for _ in range(2):
        await execute(db, late, policy, "late request")
    await execute(db, late[1:], policy, "late day request")
    doc = await db.activity.find_one({"_id": total_key(G, M)})
    assert doc["voice_open"]["checkpoint"] == to_ms(clock.now())
    assert await stored(db) == (Counters(voice_s=90, cam_on_s=90),) * 2
    restarted = tracker_on(db, clock, Writer(db, policy))
    await restarted.reconcile(G, {M: LiveVoice(20, CAMERA)})
    await restarted.update(G, M, None)
    assert await stored(db) == (Counters(voice_s=90, cam_on_s=90),) * 2


async def test_sessions_stored_in_the_shape_before_are_reconciled_and_converted(db, clock, policy) -> None:
    """A previous version kept the state (and the intent) in `voice_sessions`: the start applies the
    intents once, continues the sessions from their checkpoints and converts the entries."""
    repo = VoiceSessionRepository(db, policy)
    t0 = to_ms(clock.now())
    day = clock.now().date().isoformat()
    plain = VoiceSession(G, 5, 20, t0, t0, CAMERA)
    moved = VoiceSession(G, 6, 20, t0 + 30_000, t0, VoiceFlags())
    gone = VoiceSession(G, 8, 20, t0, t0, VoiceFlags())
    intent = Intent(2, (Credit(G, 6, day, {"voice_s": 30, "cam_on_s": 0, "cam_off_s": 30, "stream_s": 0}),))
    closing = Intent(2, (Credit(G, 7, day, {"voice_s": 20, "cam_on_s": 0, "cam_off_s": 20, "stream_s": 0}),),
                     closing=True)
    await repo.record([SessionWrite(plain.key, plain, seq=1), SessionWrite(moved.key, moved, intent, seq=2),
                       SessionWrite(gone.key, gone, seq=1)])
    await db.voice_sessions.update_one({"_id": f"{G}:7"}, {"$set": {
        "guild_id": G, "member_id": 7, "channel_id": 20, "checkpoint": t0 + 20_000, "opened_at": t0,
        "pending_op": 2, "pending": [c.to_document() for c in closing.credits], "closing": 1, "seq": 2}},
        upsert=True)
    clock.advance(30)
    tracker = tracker_on(db, clock, Writer(db, policy))
    await tracker.reconcile(G, {5: LiveVoice(20, CAMERA), 6: LiveVoice(20, VoiceFlags())})
    assert await stored(db, 5) == (Counters(voice_s=30, cam_on_s=30),) * 2  # downtime from its checkpoint
    assert await stored(db, 6) == (Counters(voice_s=30, cam_off_s=30),) * 2  # its intent, once
    assert await stored(db, 7) == (Counters(voice_s=20, cam_off_s=20),) * 2  # closing intent, once
    assert await stored(db, 8) == (Counters(),) * 2  # gone: closed at its checkpoint
    entries = {d["_id"]: d async for d in db.voice_sessions.find({})}
    assert set(entries) == {f"{G}:5", f"{G}:6"}
    assert all("checkpoint" not in d and "pending" not in d for d in entries.values())
    # a restart reads the new shape; nothing is credited twice
    clock.advance(10)
    again = tracker_on(db, clock, Writer(db, policy))
    await again.reconcile(G, {5: LiveVoice(20, CAMERA), 6: LiveVoice(20, VoiceFlags())})
    await again.update(G, 5, None)
    await again.update(G, 6, None)
    assert await stored(db, 5) == (Counters(voice_s=40, cam_on_s=40),) * 2
    assert await stored(db, 6) == (Counters(voice_s=40, cam_off_s=40),) * 2
    assert await db.voice_sessions.count_documents({}) == 0


@pytest.mark.parametrize("applied", [0, 1, 2])
async def test_a_unit_that_raised_is_resubmitted_by_the_next_flush_under_its_own_sequence(
        db, clock, policy, applied: int) -> None:
    """Without a crash: the leave's unit raised after `applied` writes (no outbox, or a refusal); the
    process goes on, and the next flush sends it again, even though the member has no session left."""
    writer = CrashingWriter(db, policy)
    tracker = tracker_on(db, clock, writer)
    await tracker.reconcile(G, {M: LiveVoice(20, CAMERA)})
    clock.advance(45)
    writer.armed = applied
    with pytest.raises(Killed):
        await tracker.update(G, M, None)
    failed_seq = writer.units[-1][0].op_id
    clock.advance(30)
    await tracker.flush()
    assert writer.units[-1][0].op_id == failed_seq  # resubmitted as it was
    assert await stored(db) == (Counters(voice_s=45, cam_on_s=45),) * 2
    assert await db.voice_sessions.count_documents({}) == 0
    assert "voice_open" not in await db.activity.find_one({"_id": total_key(G, M)})
