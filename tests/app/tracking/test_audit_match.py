"""`used_up_candidate`: an audit-log entry is used only when it makes the match certain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.tracking.audit_match import AuditedInvite, used_up_candidate

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SENT, ANSWERED = T + timedelta(seconds=10), T + timedelta(seconds=10.2)
ONCE = AuditedInvite("once", T, 7, "gus", 1, max_uses=1, max_age=0)


def pick(*entries: AuditedInvite, known: tuple[str, ...] = ()) -> AuditedInvite | None:
    return used_up_candidate(list(entries), set(known), SENT, ANSWERED)


def test_exactly_one_one_use_invite_created_before_the_read_is_the_candidate():
    assert pick(ONCE) == ONCE


def test_anything_less_than_certain_gives_none():
    assert pick() is None
    assert pick(ONCE, replace(ONCE, code="twice")) is None  # two: which one is not known
    assert pick(ONCE, known=("once",)) is None  # in the snapshot or the read: the usual rules
    assert pick(replace(ONCE, max_uses=2)) is None  # gone after one use would not be "used up"
    assert pick(replace(ONCE, max_uses=0)) is None
    assert pick(ONCE, replace(ONCE, created_at=T + timedelta(seconds=5), revoked=True)) is None
    assert pick(replace(ONCE, created_at=SENT - timedelta(seconds=0.5))) is None  # within the skew
    assert pick(replace(ONCE, max_age=5)) is None  # expired before the read: unused
    assert pick(replace(ONCE, max_age=3600)) == replace(ONCE, max_age=3600)
