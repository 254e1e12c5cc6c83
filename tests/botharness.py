"""The real TrackerBot, in this process, against the Discord emulator and the test database.

`tracker` (fixture) starts one; `harness.settle()` waits until every event sent so far has been
handled and written; `harness.restart(crash=...)` stops it gracefully (the SIGTERM path) or
without any shutdown hook (a crash), then starts a new bot on the same database and emulator.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.wiring.bot import TrackerBot
from app.wiring.clock import ManualClock
from app.wiring.settings import Settings, load_settings
from scripts.emulator import Emulator, discord_pointed_at
from tests.conftest import TEST_POLICY

TOKEN = "test-token"

# A small study server; tests copy and change it.
GUILD: dict[str, Any] = {
    "id": 1,
    "name": "Study Hall",
    "afk_channel": 30,
    "vanity": {"code": "study", "uses": 0},
    "channels": [
        {"id": 10, "type": "text", "name": "general"},
        {"id": 11, "type": "text", "name": "staff"},
        {"id": 20, "type": "voice", "name": "Focus"},
        {"id": 21, "type": "voice", "name": "Lounge"},
        {"id": 30, "type": "voice", "name": "AFK"},
    ],
    "roles": [{"id": 50, "name": "VIP"}],
    "members": [
        {"id": 101, "name": "ada", "created": "2020-01-01T00:00:00Z", "admin": True},
        {"id": 102, "name": "bob", "created": "2021-06-15T12:00:00Z"},
        {"id": 103, "name": "cy", "created": "2022-03-01T00:00:00Z"},
    ],
    "invites": [
        {"code": "abc", "inviter": 101, "uses": 0, "max_uses": 0},
        {"code": "bobs", "inviter": 102, "uses": 0, "max_uses": 0},
    ],
}


@dataclass
class Harness:
    emu: Emulator
    db: Any
    clock: ManualClock
    settings: Settings
    bot: TrackerBot | None = None
    task: asyncio.Task[None] | None = None
    bots: list[TrackerBot] = field(default_factory=list)

    async def start(self) -> TrackerBot:
        bot = TrackerBot(self.settings, self.db, "test-db", clock=self.clock)
        bot.retry_policy = TEST_POLICY
        await bot.login(TOKEN)
        self.task = asyncio.create_task(bot.connect(reconnect=True))
        self.bot = bot
        self.bots.append(bot)
        async with asyncio.timeout(20):
            await bot.wait_until_ready()
        await self.settle()
        return bot

    async def settle(self, timeout: float = 10.0) -> None:
        """Every dispatched event delivered, handled, and its writes acknowledged."""
        await self.emu.drain(timeout)
        await asyncio.sleep(0.05)  # let the client read what was flushed to its socket
        assert self.bot is not None
        await self.bot.wait_idle(timeout)

    async def stop(self, *, crash: bool = False) -> None:
        """Graceful: the SIGTERM path (flush hooks run). Crash: no hook runs, nothing is flushed."""
        bot, task = self.bot, self.task
        assert bot is not None and task is not None
        if crash:
            bot._shutdown_hooks.clear()  # a SIGKILLed process runs none of them
            if bot.scheduler is not None and bot.scheduler.running:
                bot.scheduler.shutdown(wait=False)
                bot.scheduler = None
        await bot.close()
        await asyncio.wait_for(task, 10)
        await self.emu.wait_disconnected()
        self.bot = self.task = None

    async def restart(self, *, crash: bool = False, between: Callable[[], Awaitable[None]] | None = None,
                      ) -> TrackerBot:
        await self.stop(crash=crash)
        if between is not None:
            await between()
        return await self.start()


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    return copy.deepcopy(GUILD)


@pytest.fixture
async def make_tracker(
    db: Any, clock: ManualClock, guild_spec: dict[str, Any], tmp_path: Any
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """`await make_tracker(start=True, **settings)` -> a Harness (the bot started unless start=False)."""
    harnesses: list[Harness] = []
    emulator = await Emulator(token=TOKEN).start()
    emulator.add_guild(guild_spec)
    with discord_pointed_at(emulator.api_base, emulator.gateway_url):

        async def make(start: bool = True, **overrides: Any) -> Harness:
            settings = load_settings(
                discord_token=TOKEN, mongodb_db=db.name, data_dir=tmp_path / "data", **overrides
            )
            harness = Harness(emulator, db, clock, settings)
            harnesses.append(harness)
            if start:
                await harness.start()
            return harness

        try:
            yield make
        finally:
            for harness in harnesses:
                for bot in harness.bots:
                    if not bot.is_closed():
                        await bot.close()
                if harness.task is not None:
                    await asyncio.wait_for(harness.task, 10)
            await emulator.stop()


@pytest.fixture
async def tracker(make_tracker: Callable[..., Awaitable[Harness]]) -> Harness:
    return await make_tracker()
