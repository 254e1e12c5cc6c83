"""VoiceSessionRepository: the directory of open sessions (issue 16), and entries of the shape before
(session state and intent in the entry: still written by `record` for the migration tests, read,
cleared by op id and converted)."""

from __future__ import annotations

from app.storage.writes import Write
from app.tracking.voice import VoiceFlags
from repositories.activity import Credit
from repositories.voice_sessions import (
    Entry,
    Intent,
    SessionWrite,
    VoiceSession,
    VoiceSessionRepository,
    entry_convert,
    entry_delete,
    entry_upsert,
)


async def test_entries_of_both_shapes_and_their_guarded_writes(db, policy) -> None:
    repo = VoiceSessionRepository(db, policy)
    old = VoiceSession(1, 6, 21, 1000, 1000, VoiceFlags(camera=True))
    await repo.record([SessionWrite(old.key, old, seq=3)])
    listed = [entry_upsert(1, 5, 10), entry_upsert(2, 5, 10)]
    await repo.writer.submit([Write.bulk("voice_sessions", listed)], "list")
    assert sorted(await repo.entries(1), key=lambda e: e.member_id) == [Entry(1, 5, 10), Entry(1, 6, 3, old)]
    late_and_converted = [entry_upsert(1, 5, 9), entry_convert(old.key, 11)]
    await repo.writer.submit([Write.bulk("voice_sessions", late_and_converted)], "late listing, conversion")
    assert sorted(await repo.entries(1), key=lambda e: e.member_id) == [Entry(1, 5, 10), Entry(1, 6, 11)]
    unlisted = [entry_delete("1:5", 10), entry_delete("1:6", 12)]
    await repo.writer.submit([Write.bulk("voice_sessions", unlisted)], "unlist")
    assert await repo.entries(1) == [Entry(1, 5, 10)]  # not older than the delete's sequence: kept


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
