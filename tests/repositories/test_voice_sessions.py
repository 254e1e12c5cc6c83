"""VoiceSessionRepository: session state, recorded intents, clearing and closing by op id."""

from __future__ import annotations

from app.tracking.voice import VoiceFlags
from repositories.activity import Credit
from repositories.voice_sessions import Intent, SessionWrite, VoiceSession, VoiceSessionRepository


async def test_record_intent_then_finish_keeps_or_closes(db, policy) -> None:
    repo = VoiceSessionRepository(db, policy)
    a = VoiceSession(1, 5, 20, 1000, 1000, VoiceFlags(camera=True))
    b = VoiceSession(1, 6, 21, 1000, 1000, VoiceFlags(afk=True))
    await repo.record([SessionWrite(a.key, a, seq=10), SessionWrite(b.key, b, seq=10)])
    assert sorted(await repo.for_guild(1), key=lambda s: s.member_id) == [a, b]
    credit = Credit(1, 5, "2026-03-10", {"voice_s": 60, "cam_on_s": 60, "cam_off_s": 0, "stream_s": 0})
    moved = VoiceSession(1, 5, 20, 61000, 1000, VoiceFlags())
    await repo.record([SessionWrite(a.key, moved, Intent(11, (credit,)), seq=11),
                       SessionWrite(b.key, None, Intent(11, (credit,), closing=True), seq=11)])
    stored = {s.member_id: s for s in await repo.for_guild(1)}
    assert stored[5].checkpoint == 61000 and stored[5].flags == VoiceFlags()
    assert stored[5].intent == Intent(11, (credit,)) and stored[6].intent.closing
    await repo.finish(9, keep=[a.key], close=[b.key])  # not their op: nothing happens
    assert await repo.count() == 2
    await repo.finish(11, keep=[a.key], close=[b.key])
    assert await repo.for_guild(1) == [moved]
    await repo.record([SessionWrite(a.key, None, seq=12)])  # closed with nothing to credit
    assert await repo.count() == 0 and await repo.for_guild(1) == []


async def test_a_late_older_state_write_never_moves_a_session_back(db, policy) -> None:
    """A request abandoned by the bot can reach MongoDB after newer writes (issue 13, 2): the session
    documents are guarded by their operation sequence, so the older write is refused, not applied."""
    repo = VoiceSessionRepository(db, policy)
    opened = VoiceSession(1, 5, 20, 1000, 1000)
    later = VoiceSession(1, 5, 20, 121000, 1000, VoiceFlags(camera=True))
    credit = Credit(1, 5, "2026-03-10", {"voice_s": 120, "cam_on_s": 0, "cam_off_s": 120, "stream_s": 0})
    await repo.record([SessionWrite(opened.key, opened, seq=100)])
    await repo.record([SessionWrite(later.key, later, Intent(200, (credit,)), seq=200)])
    await repo.finish(200, keep=[later.key], close=[])
    await repo.record([SessionWrite(opened.key, opened, seq=100)])  # the late request of seq 100
    await repo.record([SessionWrite(opened.key, None, seq=150)])  # a late close, older than 200
    assert await repo.for_guild(1) == [later]
    await repo.record([SessionWrite(later.key, None, seq=300)])  # a newer close goes through
    assert await repo.count() == 0
