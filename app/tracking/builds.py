"""Per-guild structures derived from MongoDB and built in the background (the ranks, the invite
boards): which guilds are ready, the builds in flight, and their lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0


class Build(Protocol):
    task: asyncio.Task[None] | None


B = TypeVar("B", bound=Build)
R = TypeVar("R")


class GuildBuilds(Generic[B, R]):
    """`ready` guilds answer from memory; `ensure` starts a guild's build unless it is built or
    being built; `rebuild` starts another (the current one answers until it is done); a build that
    fails starts over after RETRY_SECONDS. Subclasses make a build (`_new_build`), run it (`_build`:
    it ends with `_done`) and start a failed one over (`_start_over`)."""

    what = "structures"  # in log lines and task names

    def __init__(self, active: Callable[[], bool]) -> None:
        self.active = active
        self._ready: dict[int, R] = {}
        self._builds: dict[int, B] = {}
        self.built = 0

    def ready(self, guild_id: int) -> bool:
        return self.active() and guild_id in self._ready

    def ensure(self, guild_id: int) -> None:
        if guild_id not in self._ready and guild_id not in self._builds:
            self.rebuild(guild_id)

    def rebuild(self, guild_id: int) -> None:
        """Build the guild's structure again from MongoDB (after an operation that rewrote what it
        derives from); the current one answers until the new one is done."""
        old = self._builds.pop(guild_id, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        build = self._new_build(guild_id)
        self._builds[guild_id] = build
        name = f"{self.what.replace(' ', '-')}-{guild_id}"
        build.task = asyncio.create_task(self._run(guild_id, build), name=name)

    def forget(self) -> None:
        """Drop every guild (another process wrote meanwhile: a lease take-over)."""
        for build in self._builds.values():
            if build.task is not None:
                build.task.cancel()
        self._builds.clear()
        self._ready.clear()

    async def wait_ready(self, guild_id: int) -> None:
        while True:
            build = self._builds.get(guild_id)
            if build is None or build.task is None:
                return
            await asyncio.shield(build.task)

    async def stop(self) -> None:
        tasks = [b.task for b in self._builds.values() if b.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, guild_id: int, result: R) -> None:
        self._ready[guild_id] = result
        del self._builds[guild_id]
        self.built += 1

    async def _run(self, guild_id: int, build: B) -> None:
        while True:
            try:
                await self._build(guild_id, build)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s of guild %s could not be built; trying again in %.0fs", self.what,
                              guild_id, RETRY_SECONDS)
                self._start_over(guild_id, build)
                await asyncio.sleep(RETRY_SECONDS)

    def _new_build(self, guild_id: int) -> B:
        raise NotImplementedError

    async def _build(self, guild_id: int, build: B) -> None:
        raise NotImplementedError

    def _start_over(self, guild_id: int, build: B) -> None:
        raise NotImplementedError
