"""Activity tracking end to end: the real bot against the Discord emulator, with a ManualClock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.clock import to_ms
from tests.botharness import Harness

ADA, BOB, CY = 101, 102, 103
GENERAL, STAFF = 10, 11
FOCUS, LOUNGE, AFK = 20, 21, 30
G = 1


def total(h: Harness, user: int) -> str:
    return f"t:{G}:{h.emu.user_id(user)}"


def day(h: Harness, user: int, date: str) -> str:
    return f"d:{G}:{h.emu.user_id(user)}:{date}"


async def counters(h: Harness, key: str) -> dict[str, int]:
    d = await h.db.activity.find_one({"_id": key}) or {}
    return {k: int(d.get(k, 0)) for k in ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")}


def voice(total: int, on: int = 0, stream: int = 0, messages: int = 0) -> dict[str, int]:
    return {"messages": messages, "voice_s": total, "cam_on_s": on, "cam_off_s": total - on, "stream_s": stream}


async def step(h: Harness, seconds: float) -> None:
    await h.settle()
    h.clock.advance(seconds)


async def test_voice_join_and_leave_credits_exact_seconds(tracker: Harness) -> None:
    emu = tracker.emu
    emu.voice(ADA, FOCUS)
    await step(tracker, 90)
    emu.voice(ADA, None)
    await tracker.settle()
    assert await counters(tracker, total(tracker, ADA)) == voice(90)
    assert await counters(tracker, day(tracker, ADA, "2026-03-10")) == voice(90)
    assert await tracker.db.voice_sessions.count_documents({}) == 0
