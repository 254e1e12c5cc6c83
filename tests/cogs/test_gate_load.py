"""Issue 18, done when: from a member account in a 30,000-member guild, no sequence of commands and
clicks raises another member's command latency above 1 s or sends the writer to the outbox."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103
GENERAL = 10
MEMBERS = 30_000
SPILL_BUDGET = 1.0  # seconds
log = logging.getLogger(__name__)


async def seed_30k(h: Harness) -> None:
    """All-time documents of 30,000 members, raw in the shape the activity repository writes."""
    assert h.bot is not None
    docs = [{"_id": f"t:{G}:{10_000 + i}", "kind": "total", "guild_id": G, "member_id": 10_000 + i,
             "messages": (i * 7_919) % 1_000, "voice_s": (i * 104_729) % 36_000, "cam_on_s": 0,
             "cam_off_s": 0, "stream_s": 0} for i in range(MEMBERS)]
    for start in range(0, MEMBERS, 5_000):
        await h.db.activity.insert_many(docs[start:start + 5_000], ordered=False)
    h.bot.ranks.rebuild(G)
    await asyncio.wait_for(h.bot.ranks.wait_ready(G), 120)


async def attack(h: Harness, top: Any) -> list[Any]:
    """One wave from BOB: /ud (with and without a chart), /top and page clicks, all at once."""
    emu = h.emu
    runs = [emu.command(BOB, "ud", {}, timeout=30) for _ in range(8)]
    runs += [emu.command(BOB, "ud", {"chart": True}, timeout=30) for _ in range(3)]
    runs += [emu.command(BOB, "top", {"board": board}, timeout=30) for board in ("messages", "voice")]
    runs += [emu.command(BOB, "invites leaderboard", {}, timeout=30)]
    runs += [emu.click(top, "top:next", BOB, timeout=30) for _ in range(6)]
    return await asyncio.gather(*runs, return_exceptions=True)


async def test_one_member_cannot_slow_another_or_send_the_writer_to_the_outbox(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    # The writer's budget for MongoDB's acknowledgement before it spills a write to the outbox: 1 s
    # here rather than the bot's 0.15 s. The suite runs on two workers of a 2-core machine, where the
    # other worker alone can delay one write past 0.15 s; what this test is about (reads starving
    # the writes) delayed them by seconds before issue 18's fixes.
    h.bot.writer.spill_after = SPILL_BUDGET
    await seed_30k(h)
    top = await emu.command(BOB, "top", {"board": "messages"})
    assert "Page 1/2997" in top.text(), top.text()  # the 30 with no messages are not ranked
    timings: list[float] = []
    for _ in range(4):
        waves = asyncio.create_task(attack(h, top))
        for _ in range(5):
            emu.message(ADA, GENERAL)  # the writer keeps working meanwhile
        await asyncio.sleep(0.05)
        started = time.monotonic()
        victim = await emu.command(CY, "ud", {}, timeout=30)
        timings.append(time.monotonic() - started)
        assert victim.embed is not None and "Activity of cy" in victim.text(), victim
        answers = await waves
        errors = [a for a in answers if isinstance(a, BaseException)]
        assert not errors, errors
        h.clock.advance(61)  # the attacker's windows pass: every wave is a fresh burst
    log.info("victim /ud latencies under attack: %s", ", ".join(f"{t * 1000:.0f} ms" for t in timings))
    assert max(timings) < 1.0, timings
    await h.settle()
    assert h.bot.writer.spilled == 0
    assert h.bot.outbox.depth == 0
