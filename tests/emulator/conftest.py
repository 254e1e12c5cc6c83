"""Fixtures: an emulator with one guild, and a real discord.py bot connected to it in-process."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from discord.ext import commands

from scripts.emulator import Emulator, discord_pointed_at

from .botapp import EventLog, make_bot

GUILD: dict[str, Any] = {
    "id": 1,
    "name": "Study Hall",
    "afk_channel": 30,
    "vanity": {"code": "study", "uses": 4},
    "channels": [
        {"id": 10, "type": "text", "name": "general"},
        {"id": 11, "type": "text", "name": "staff"},
        {"id": 20, "type": "voice", "name": "Focus"},
        {"id": 30, "type": "voice", "name": "AFK"},
    ],
    "roles": [{"id": 50, "name": "VIP"}],
    "members": [
        {"id": 101, "name": "ada", "created": "2020-01-01T00:00:00Z", "admin": True},
        {"id": 102, "name": "bob", "created": "2021-06-15T12:00:00Z", "roles": [50]},
        {"id": 103, "name": "cy", "created": "2022-03-01T00:00:00Z"},
    ],
    "invites": [
        {"code": "abc", "inviter": 101, "uses": 3, "max_uses": 0},
        {"code": "once", "inviter": 102, "uses": 0, "max_uses": 1, "max_age": 3600},
    ],
    "voice_states": [{"user": 103, "channel": 20, "camera": True}],
}


@dataclass
class Running:
    emu: Emulator
    bot: commands.Bot
    log: EventLog
    task: asyncio.Task[None]


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    return copy.deepcopy(GUILD)


@pytest.fixture
async def emu(guild_spec: dict[str, Any]) -> AsyncIterator[Emulator]:
    emulator = await Emulator(token="test-token").start()
    emulator.add_guild(guild_spec)
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def start_bot(emu: Emulator) -> AsyncIterator[Callable[[], Awaitable[Running]]]:
    """Start a bot against ``emu`` (call it again after closing one to "restart" the process)."""
    started: list[Running] = []
    with discord_pointed_at(emu.api_base, emu.gateway_url):

        async def start() -> Running:
            log = EventLog()
            bot = make_bot(log)
            await bot.login("test-token")
            task = asyncio.create_task(bot.connect(reconnect=True))
            running = Running(emu, bot, log, task)
            started.append(running)
            async with asyncio.timeout(15):
                await bot.wait_until_ready()
            return running

        try:
            yield start
        finally:
            for running in started:
                if not running.bot.is_closed():
                    await running.bot.close()
                await asyncio.wait_for(running.task, timeout=5)


@pytest.fixture
async def running(start_bot: Callable[[], Awaitable[Running]]) -> Running:
    return await start_bot()
