"""VoiceSessionRepository: session state, recorded intents, clearing and closing by op id."""

from __future__ import annotations

from app.tracking.voice import VoiceFlags
from repositories.activity import Credit
from repositories.voice_sessions import Intent, SessionWrite, VoiceSession, VoiceSessionRepository


async def test_record_intent_then_finish_keeps_or_closes(db, policy) -> None:
    repo = VoiceSessionRepository(db, policy)
    a = VoiceSession(1, 5, 20, 1000, 1000, VoiceFlags(camera=True))
    b = VoiceSession(1, 6, 21, 1000, 1000, VoiceFlags(afk=True))
    await repo.record([SessionWrite(a.key, a), SessionWrite(b.key, b)])
    assert sorted(await repo.for_guild(1), key=lambda s: s.member_id) == [a, b]
    credit = Credit(1, 5, "2026-03-10", {"voice_s": 60, "cam_on_s": 60, "cam_off_s": 0, "stream_s": 0})
    moved = VoiceSession(1, 5, 20, 61000, 1000, VoiceFlags())
    await repo.record([SessionWrite(a.key, moved, Intent("op", (credit,))),
                       SessionWrite(b.key, None, Intent("op", (credit,), closing=True))])
    stored = {s.member_id: s for s in await repo.for_guild(1)}
    assert stored[5].checkpoint == 61000 and stored[5].flags == VoiceFlags()
    assert stored[5].intent == Intent("op", (credit,)) and stored[6].intent.closing
    await repo.finish("other-op", keep=[a.key], close=[b.key])  # not their op: nothing happens
    assert await repo.count() == 2
    await repo.finish("op", keep=[a.key], close=[b.key])
    assert await repo.for_guild(1) == [moved]
    await repo.record([SessionWrite(a.key, None)])  # closed with nothing to credit
    assert await repo.count() == 0 and await repo.for_guild(1) == []
