"""The tracker's batch widening, driven directly (the emulator cannot time a join into the fetch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.tracking.attribution import match_group
from app.tracking.invites import GuildWorker, InviteTracker, Job, Joiner
from app.wiring.container import Repositories

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def joiner(member_id: int, minutes: int) -> Joiner:
    return Joiner(member_id, f"m{member_id}", T0 + timedelta(minutes=minutes), T0 - timedelta(days=400), True)


def tracker_on(db, clock, policy) -> InviteTracker:
    return InviteTracker(Repositories.create(db, policy), clock, access=None)  # type: ignore[arg-type]


async def test_joins_queued_during_the_fetch_are_taken_along_when_they_complete_the_match(db, clock, policy):
    tracker = tracker_on(db, clock, policy)
    worker = GuildWorker(1)
    worker.queue.extend([Job("join", joiner(202, 1)), Job("leave", 150)])
    gained = {"abc": 2}
    group, outcome = await tracker._widen(worker, [joiner(201, 0)], [], gained, match_group(1, gained))
    assert [j.member_id for j in group] == [201, 202]
    assert outcome.code == "abc"
    assert [job.kind for job in worker.queue] == ["leave"]


async def test_joins_queued_during_the_fetch_stay_queued_in_order_when_nothing_matches(db, clock, policy):
    tracker = tracker_on(db, clock, policy)
    worker = GuildWorker(1)
    worker.queue.extend([Job("join", joiner(202, 1)), Job("join", joiner(203, 2)), Job("leave", 150)])
    gained = {"abc": 1, "bobs": 1}
    base = match_group(1, gained)
    group, outcome = await tracker._widen(worker, [joiner(201, 0)], [], gained, base)
    assert [j.member_id for j in group] == [201]
    assert outcome == base and outcome.candidates == ("abc", "bobs")
    assert [(job.kind, getattr(job.data, "member_id", job.data)) for job in worker.queue] == [
        ("join", 202),
        ("join", 203),
        ("leave", 150),
    ]


async def test_nothing_queued_keeps_the_batch_outcome(db, clock, policy):
    tracker = tracker_on(db, clock, policy)
    worker = GuildWorker(1)
    base = match_group(1, {"abc": 2})
    group, outcome = await tracker._widen(worker, [joiner(201, 0)], [], {"abc": 2}, base)
    assert ([j.member_id for j in group], outcome) == ([201], base)
