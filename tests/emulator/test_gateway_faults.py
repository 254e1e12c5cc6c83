"""Gateway faults Discord produces in normal operation, and network latency, against a real
discord.py bot: op 7 RECONNECT, op 9 INVALID SESSION, a guild outage, two processes on one token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from scripts.emulator import Latency

from .conftest import Running

ADA, BOB, CY = 101, 102, 103
GENERAL, FOCUS = 10, 20


def sent_message_ids(running: Running) -> list[int]:
    return [int(e.data["id"]) for e in running.emu.events if e.name == "MESSAGE_CREATE"]


def received_message_ids(running: Running) -> list[int]:
    return [args[0].id for args in running.log.named("message")]


async def test_op7_reconnect_resumes_and_replays_frames_in_flight_exactly_once(running: Running) -> None:
    emu, log, bot = running.emu, running.log, running.bot
    emu.set_latency(Latency(dispatch_ms=(20, 60)))
    for _ in range(3):
        emu.message(ADA, GENERAL)
    emu.request_reconnect()  # queued behind the three delayed messages
    for _ in range(5):
        emu.message(BOB, GENERAL)  # after op 7: the bot stops reading, so these must be replayed
    await emu.wait_resumed(timeout=15)
    emu.message(CY, GENERAL)
    await log.wait("message", 9)
    await log.wait("resumed")
    await emu.drain()
    await asyncio.sleep(0.2)  # nothing more may arrive
    assert received_message_ids(running) == sent_message_ids(running)  # each once, in order
    assert len(emu.identifies) == 1 and len(emu.resumes) == 1
    assert emu.replayed[0] >= 5
    (session,) = emu.gateway.live_sessions()
    assert bot.ws.sequence == session.seq  # replayed frames kept their original `s`


async def test_op9_invalid_session_re_identifies_and_the_guild_becomes_available_again(
    running: Running,
) -> None:
    emu, log, bot = running.emu, running.log, running.bot
    emu.set_latency(Latency(dispatch_ms=(10, 40)))
    await log.wait("guild_available")  # the first READY
    emu.invalidate_session(resumable=False)
    emu.message(ADA, GENERAL)  # no session until the bot identifies again: lost, as on Discord
    assert emu.events[-1].delivered == 0
    emu.voice(ADA, FOCUS, camera=True)  # ...but the new GUILD_CREATE shows the state
    await emu.wait_ready(timeout=15, count=2)
    (guild,) = (await log.wait("guild_available", 2))[1]
    assert guild.id == 1 and not guild.unavailable
    ada = guild.get_member(emu.user_id(ADA))
    assert ada is not None and ada.voice is not None and ada.voice.self_video
    assert len(emu.identifies) == 2 and emu.resumes == []
    assert log.named("guild_unavailable") == [] and log.named("message") == []
    emu.message(BOB, GENERAL)
    assert (await log.wait("message"))[0][0].author.id == emu.user_id(BOB)
    assert bot.ws.session_id == emu.gateway.live_sessions()[0].id


async def test_a_guild_outage_sends_nothing_until_guild_create_brings_the_current_state(
    running: Running,
) -> None:
    emu, log, bot = running.emu, running.log, running.bot
    await log.wait("guild_available")
    emu.guild_unavailable(1)
    (gone,) = (await log.wait("guild_unavailable"))[0]
    assert gone.id == 1 and gone.unavailable
    assert emu.events[-1].name == "GUILD_DELETE" and emu.events[-1].data == {"id": "1", "unavailable": True}
    emu.message(ADA, GENERAL)
    emu.voice(BOB, FOCUS, stream=True)
    assert [e.delivered for e in emu.events[-2:]] == [0, 0]  # nothing of the guild during the outage
    emu.guild_available(1)
    (back,) = (await log.wait("guild_available", 2))[1]
    assert back is bot.get_guild(1) and not back.unavailable
    bob = back.get_member(emu.user_id(BOB))
    assert bob is not None and bob.voice is not None and bob.voice.self_stream
    emu.message(CY, GENERAL)
    (message,) = (await log.wait("message"))[0]
    assert message.author.id == emu.user_id(CY) and len(log.named("message")) == 1
    assert log.named("voice") == []  # the change during the outage came only in GUILD_CREATE


async def test_a_new_session_during_a_guild_outage_gets_no_guild_create_until_it_ends(
    running: Running,
) -> None:
    emu, log, bot = running.emu, running.log, running.bot
    await log.wait("guild_available")
    emu.guild_unavailable(1)
    await log.wait("guild_unavailable")
    emu.invalidate_session(resumable=False)
    await emu.wait_ready(timeout=15, count=2)
    await log.wait("ready", 2, timeout=10)  # on_ready after guild_ready_timeout, guild still out
    guild = bot.get_guild(1)
    assert guild is not None and guild.unavailable
    assert len(log.named("guild_available")) == 1
    emu.guild_available(1)
    (back,) = (await log.wait("guild_available", 2))[1]
    assert back.id == 1 and not back.unavailable and back.member_count == 4


async def test_two_processes_with_the_same_token_both_receive_every_dispatch(
    running: Running, start_bot: Callable[[], Awaitable[Running]]
) -> None:
    emu = running.emu
    second = await start_bot()
    assert len(emu.identifies) == 2 and emu.open_sessions == 2
    emu.message(ADA, GENERAL)
    assert emu.events[-1].delivered == 2
    (first_copy,) = (await running.log.wait("message"))[0]
    (second_copy,) = (await second.log.wait("message"))[0]
    assert first_copy.id == second_copy.id
    await second.bot.close()  # discord.py closes with 4000: its session stays resumable (buffered)
    await emu.wait_disconnected(remaining=1)
    assert emu.open_sessions == 1
    emu.message(BOB, GENERAL)
    assert (await running.log.wait("message", 2))[1][0].author.id == emu.user_id(BOB)


async def test_rest_and_dispatch_latency_are_applied_and_dispatches_keep_their_order(
    running: Running,
) -> None:
    emu, log, bot = running.emu, running.log, running.bot
    guild = bot.get_guild(1)
    assert guild is not None
    emu.set_latency(Latency(rest_ms=(150, 150), dispatch_ms=(80, 80)))
    started = time.monotonic()
    await guild.invites()
    assert time.monotonic() - started >= 0.149

    started = time.monotonic()
    emu.message(ADA, GENERAL)
    await log.wait("message")
    assert time.monotonic() - started >= 0.079

    emu.set_latency(Latency(dispatch_ms=(0, 50), seed=3))  # jitter wider than the gaps between events
    for _ in range(20):
        emu.message(BOB, GENERAL)
    await log.wait("message", 21)
    assert received_message_ids(running) == sent_message_ids(running)


@pytest.mark.parametrize("bad", [(200.0, 100.0), (-1.0, 5.0)])
def test_wrong_latency_ranges_are_refused(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="0 <= min <= max"):
        Latency(rest_ms=bad)
