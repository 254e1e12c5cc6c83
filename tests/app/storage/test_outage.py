"""MongoDB away while events arrive: nothing lost, nothing doubled, even across a crash."""

from __future__ import annotations

import asyncio
from typing import Any

import pymongo.common
import pytest

from app.storage.database import make_client
from scripts.faultproxy import FaultProxy
from tests.botharness import Harness

ADA, BOB = 101, 102


@pytest.fixture
async def proxied(fault_proxy: FaultProxy, make_tracker: Any, monkeypatch) -> Any:
    """A bot (not started) whose MongoDB connection goes through the fault proxy."""
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.05)
    harness: Harness = await make_tracker(start=False, write_retry_max_seconds=0.5, write_retry_attempts=2,
                                          probe_timeout_seconds=30)
    client = make_client(fault_proxy.uri)
    direct = harness.db
    harness.db = client[direct.name]
    yield harness, direct
    if harness.bot is not None:
        await harness.stop()  # before its database client closes
    await client.close()


def cut(proxy: FaultProxy) -> None:
    proxy.plan.refuse = True
    proxy.cut_all()


async def counters(db: Any, emu: Any, member: int) -> dict[str, int]:
    doc = await db.activity.find_one({"_id": f"t:1:{emu.user_id(member)}"}) or {}
    return {k: doc.get(k, 0) for k in ("messages", "voice_s", "cam_on_s", "cam_off_s")}


async def test_events_during_an_outage_are_kept_and_replayed_exactly_once(proxied, fault_proxy) -> None:
    harness, direct = proxied
    bot = await harness.start()
    emu = harness.emu
    emu.voice(ADA, 20)
    emu.message(BOB, 10)
    await harness.settle()
    harness.clock.advance(60)

    cut(fault_proxy)
    for _ in range(5):
        emu.message(BOB, 10)
    emu.voice(ADA, 20, camera=True)
    await harness.settle(timeout=30)  # listeners finish: the writes went to the outbox
    harness.clock.advance(60)
    emu.voice(ADA, None)
    emu.message(ADA, 10)
    await harness.settle(timeout=30)
    assert bot.outbox.depth > 0 and bot.writer.draining
    assert await counters(direct, emu, BOB) == {"messages": 1, "voice_s": 0, "cam_on_s": 0, "cam_off_s": 0}

    fault_proxy.heal()
    await bot.writer.wait_drained(60)
    assert bot.outbox.depth == 0
    assert await counters(direct, emu, BOB) == {"messages": 6, "voice_s": 0, "cam_on_s": 0, "cam_off_s": 0}
    ada = await counters(direct, emu, ADA)
    assert ada == {"messages": 1, "voice_s": 120, "cam_on_s": 60, "cam_off_s": 60}
    assert await direct.voice_sessions.count_documents({}) == 0


async def test_a_crash_during_the_outage_and_a_restart_while_it_lasts_lose_nothing(proxied, fault_proxy):
    harness, direct = proxied
    await harness.start()
    emu = harness.emu
    emu.voice(ADA, 20, camera=True)
    await harness.settle()
    harness.clock.advance(30)
    cut(fault_proxy)
    for _ in range(3):
        emu.message(BOB, 10)
    emu.voice(ADA, 20)  # camera off: 30 s of camera time goes to the outbox
    await harness.settle(timeout=30)

    async def heal_later() -> None:
        await asyncio.sleep(3)  # the new process waits at its startup probe meanwhile
        fault_proxy.heal()

    healer = asyncio.create_task(heal_later())
    bot = await harness.restart(crash=True)  # SIGKILL-like: the outbox file is all that is left
    await healer
    await harness.settle()
    assert bot.outbox.depth == 0 and bot.writer.replayed >= 2
    bob = await counters(direct, emu, BOB)
    assert bob["messages"] == 3
    ada = await counters(direct, emu, ADA)
    assert ada["cam_on_s"] == 30
