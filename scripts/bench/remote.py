"""Discord for the backfill case: the emulator in a child process, its channel history seeded.

The child plays Discord on another core: it loads one guild, posts every message of the plan
(live before the downtime, missed during it, live after the restart: in that order, so their ids
are too) with no bot connected, then serves the REST API with Discord's per-route rate limits
(`GET /channels/{id}/messages`: 5 per channel per second, 429 past them). The benchmark process
talks to it over a pipe: the addresses, the guild's GUILD_CREATE and the live messages' payloads
first; then `stats` (history requests, 429s, the messages that exist) and `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import re
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from scripts.bench.world import JOINED, member_id

log = logging.getLogger(__name__)
TOKEN = "bench-token"
CHANNEL_BASE = 5000  # text channel i has id CHANNEL_BASE + i
HISTORY_PATH = re.compile(r"^/channels/\d+/messages$")
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class Post:
    channel: int
    author: int


@dataclass(frozen=True)
class Plan:
    """What exists on Discord, in the order it was posted (ids increase along it)."""

    guild_id: int
    channels: int
    members: int
    before: list[Post]  # seen live by the first run
    missed: list[Post]  # sent while the bot was away: only in the history
    during: list[Post]  # seen live by the restarted bot while it backfills


@dataclass
class Stats:
    history_requests: int
    rate_limited: int  # 429s answered
    exist: Counter[int]  # author -> messages in the guild's history


def guild_spec(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.guild_id,
        "name": "bench backfill",
        "channels": [{"id": CHANNEL_BASE + i, "type": "text", "name": f"chat{i}"}
                     for i in range(plan.channels)],
        "members": [{"id": member_id(i), "name": f"member{i}", "joined": JOINED}
                    for i in range(plan.members)],
    }


def _post_all(emu: Any, posts: list[Post]) -> list[dict[str, Any]]:
    out = [emu.message(p.author, CHANNEL_BASE + p.channel) for p in posts]
    emu.events.clear()  # no bot session: nothing was delivered, nothing to keep
    return out


def _stats(emu: Any, plan: Plan) -> Stats:
    requests = sum(1 for r in emu.requests if r.method == "GET" and HISTORY_PATH.match(r.path))
    exist: Counter[int] = Counter()
    for i in range(plan.channels):
        exist.update(int(m["author"]["id"]) for m in emu.channel_messages(CHANNEL_BASE + i))
    return Stats(requests, emu.route_limits.hits, exist)


async def _serve(plan: Plan, conn: Connection) -> None:
    from scripts.emulator import Emulator
    from scripts.emulator.payloads import guild_create

    emu = Emulator(token=TOKEN)
    emu.add_guild(guild_spec(plan))
    before = _post_all(emu, plan.before)
    _post_all(emu, plan.missed)
    during = _post_all(emu, plan.during)
    await emu.start()
    try:
        guild = guild_create(emu.guild(plan.guild_id), members=True, voice_states=True, bot_id=emu.bot_id)
        conn.send({"api_base": emu.api_base, "gateway_url": emu.gateway_url, "guild": guild,
                   "before": before, "during": during})
        while (request := await asyncio.to_thread(conn.recv)) != "stop":
            if request == "stats":
                conn.send(_stats(emu, plan))
    finally:
        await emu.stop()


def serve(plan: Plan, conn: Connection) -> None:
    """The child process's main: seed, serve, answer the pipe until `stop`."""
    asyncio.run(_serve(plan, conn))


class RemoteDiscord:
    """The benchmark's handle on the child process."""

    def __init__(self, plan: Plan) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with driver threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(plan, child), name="bench-discord", daemon=True)
        self._child = child
        self.info: dict[str, Any] = {}

    async def start(self) -> dict[str, Any]:
        self._process.start()
        self._child.close()
        self.info = await self._receive(START_TIMEOUT)
        return self.info

    async def _receive(self, timeout: float) -> Any:
        if not await asyncio.to_thread(self._conn.poll, timeout):
            raise RuntimeError(f"the emulator process did not answer within {timeout:.0f} s "
                               f"(exit code {self._process.exitcode})")
        return self._conn.recv()

    async def stats(self) -> Stats:
        self._conn.send("stats")
        stats: Stats = await self._receive(30.0)
        return stats

    async def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send("stop")
            await asyncio.to_thread(self._process.join, 10.0)
        if self._process.is_alive():
            log.warning("emulator process %s did not stop; terminating it", self._process.pid)
            self._process.terminate()
            await asyncio.to_thread(self._process.join, 5.0)
        self._conn.close()
