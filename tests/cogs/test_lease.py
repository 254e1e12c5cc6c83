"""The bot on a standby: counts nothing while another process holds the lease, then takes over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.storage.retry import TERM_BITS
from app.wiring.clock import to_ms
from tests.botharness import Harness

ADA, BOB = 101, 102
GENERAL, FOCUS = 10, 20


async def messages(h: Harness, user: int) -> int:
    doc = await h.db.activity.find_one({"_id": f"t:1:{h.emu.user_id(user)}"}) or {}
    return int(doc.get("messages", 0))


async def test_a_standby_counts_nothing_and_takes_over_when_the_holder_releases(
        make_tracker: Callable[..., Awaitable[Harness]], db: Any, clock: Any) -> None:
    await db.lease.insert_one({"_id": "bot", "token": 7, "holder": "other-host:1:abc", "data_dir": "other",
                               "renewed_ms": to_ms(clock.now())})
    h = await make_tracker()
    bot = h.bot
    assert bot.lease.role == "standby"
    h.emu.voice(ADA, FOCUS)
    h.emu.message(BOB, GENERAL)
    await h.settle()
    assert await messages(h, BOB) == 0 and await db.voice_sessions.count_documents({}) == 0

    await db.lease.update_one({"_id": "bot"}, {"$set": {"holder": ""}})  # the holder's SIGTERM
    async with asyncio.timeout(10):
        await bot.lease.active.wait()
    await h.settle()
    assert bot.lease.token == 8 and bot.sequence.next() >> TERM_BITS == 8
    h.emu.message(BOB, GENERAL)
    await h.settle()
    await asyncio.wait_for(asyncio.gather(*h.bot.get_cog("Activity")._tasks), 10)  # the backfill
    # The one after the take-over, and the one sent while this process stood by: the (fake)
    # holder never counted it, so the take-over's backfill finds it in the channel's history.
    assert await messages(h, BOB) == 2
    assert await db.voice_sessions.count_documents({}) == 1  # the take-over reconciled voice
    await h.stop()
    assert (await db.lease.find_one({"_id": "bot"}))["holder"] == ""  # released at shutdown


async def test_a_message_arriving_while_the_bot_shuts_down_is_counted_until_the_gateway_closes(
        make_tracker: Callable[..., Awaitable[Harness]], db: Any, monkeypatch: Any) -> None:
    """Found by the fault campaign (seed 18): a message 50 ms before a SIGTERM reaches the bot after
    the shutdown began. The bot stood down (stopped counting) before its gateway closed, while no
    other process could count it yet (the next one takes over after this one releases the lease):
    the message was lost. It stops counting once its gateway is closed."""
    from discord.ext import commands

    h = await make_tracker()
    bot = h.bot
    close_gateway = commands.Bot.close

    async def late_message_then_close(self: Any) -> None:
        h.emu.message(BOB, GENERAL)  # after the final flush hooks, before the gateway closes
        await h.emu.drain(5)
        await asyncio.sleep(0.2)
        await close_gateway(self)

    monkeypatch.setattr(commands.Bot, "close", late_message_then_close)
    await h.stop()
    assert await messages(h, BOB) == 1
    assert bot.lease.role != "active"


async def test_a_standby_leaves_commands_to_the_holder(
        make_tracker: Callable[..., Awaitable[Harness]], db: Any, clock: Any) -> None:
    """Found by the fault campaign (seed 9, a second process): Discord delivers an interaction to
    both sessions; the standby answered too, and one of the two answers failed ("Interaction has
    already been acknowledged", logged with a traceback). Only the lease holder answers."""
    await db.lease.insert_one({"_id": "bot", "token": 7, "holder": "other-host:1:abc", "data_dir": "other",
                               "renewed_ms": to_ms(clock.now())})
    h = await make_tracker()
    assert h.bot.lease.role == "standby"
    with pytest.raises(TimeoutError):  # nobody answers: the holder (another process) would
        await h.emu.command(ADA, "ud", timeout=3)
