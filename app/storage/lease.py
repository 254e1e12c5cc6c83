"""One active process: a lease in MongoDB with a fencing token.

Two processes with the same bot token both receive every gateway event (a zero-downtime deploy
overlaps old and new; a forgotten second instance). Only the holder of the lease counts,
attributes and flushes; the other waits as a standby (`TrackerBot.dispatch` drops the counted
events) and takes over:

- at once when the lease is free (first start, or released by a SIGTERMed holder after its final
  flush), or when the holder ran on this same DATA_DIR: this process holds the data directory's
  lock, so that holder is gone;
- after `ttl` seconds during which the standby, with MongoDB answering, saw the lease unchanged
  (no renewal). The expiry is measured on the standby's own clock, never by comparing clocks; a
  holder renews every ttl/3, also right after a MongoDB outage, so an outage alone never hands
  the lease over.

Every take-over increments the token, and the token is the high part of every operation sequence
the holder writes (`OpSequence.begin`): whatever a former holder still writes, late or from its
outbox, is older than everything the new holder wrote to the same document and is refused by the
guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from app.storage.locks import LockHeld, ProcessLock
from app.storage.retry import OpSequence
from app.wiring.clock import Clock, to_ms
from repositories.lease import LeaseRepository, LeaseState

log = logging.getLogger(__name__)
STANDBY_POLL_SECONDS = 1.0


class DataDirInUse(RuntimeError):
    """Another process runs on this DATA_DIR (its outbox and lease identity are this process's)."""


class DataDirLock:
    """An exclusive lock on DATA_DIR for the life of the process, and the directory's stable id."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = ProcessLock(data_dir / "bot.lock")

    def acquire(self) -> str:
        """Take the lock (DataDirInUse when held) and return the directory's id."""
        try:
            self._lock.acquire()
        except LockHeld as held:
            raise DataDirInUse(f"{self.data_dir} is in use by {held}; give each bot process its own "
                               "DATA_DIR") from None
        return data_dir_id(self.data_dir)

    def release(self) -> None:
        self._lock.release()


def data_dir_id(data_dir: Path) -> str:
    """A random id kept in DATA_DIR/instance-id, made on first use."""
    path = data_dir / "instance-id"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(uuid.uuid4().hex + "\n")
    return path.read_text().strip()


class Lease:
    def __init__(self, repo: LeaseRepository, sequence: OpSequence, clock: Clock, data_dir: str,
                 ttl_seconds: float, on_acquired: Callable[[], object] | None = None) -> None:
        self.repo = repo
        self.sequence = sequence
        self.clock = clock
        self.data_dir = data_dir
        self.ttl = ttl_seconds
        self.on_acquired = on_acquired
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token: int | None = None
        self.active = asyncio.Event()
        self._seen: tuple[LeaseState | None, float] | None = None
        self._task: asyncio.Task[None] | None = None
        self._standby_logged = False

    @property
    def role(self) -> str:
        return "active" if self.active.is_set() else "standby"

    async def step(self) -> None:
        """One round: renew the lease we hold, or watch it and take it over when the rules allow."""
        if self.token is not None:
            await self._renew()
            return
        state = await self.repo.read()
        if self._may_take(state):
            await self._take(state)

    def _may_take(self, state: LeaseState | None) -> bool:
        if state is None or not state.holder or state.holder == self.holder:
            return True
        if state.data_dir == self.data_dir:
            return True  # the holder ran on our DATA_DIR, whose lock we hold: it is gone
        now = time.monotonic()
        if self._seen is None or self._seen[0] != state:
            self._seen = (state, now)
            if not self._standby_logged:
                log.warning("standby: another process holds the lease (%s, token %d); this one counts "
                            "nothing until it takes over (at once when released, after %.0fs without "
                            "a renewal otherwise)", state.holder, state.token, self.ttl)
                self._standby_logged = True
            return False
        return now - self._seen[1] >= self.ttl

    async def _take(self, state: LeaseState | None) -> None:
        token = await self.repo.take(state, self.holder, self.data_dir, to_ms(self.clock.now()))
        if token is None:  # someone else was first, or our reply was lost: read it back
            again = await self.repo.read()
            if again is None or again.holder != self.holder:
                self._seen = None
                return
            token = again.token
        self.token = token
        self.sequence.begin(token)
        self._seen = None
        self._standby_logged = False
        self.active.set()
        log.info("lease taken: this process counts (token %d)", token)
        if self.on_acquired is not None:
            self.on_acquired()

    async def _renew(self) -> None:
        assert self.token is not None
        if await self.repo.renew(self.holder, self.token, to_ms(self.clock.now())):
            return
        log.error("lease lost: another process took over (token > %d); this one stops counting", self.token)
        self.token = None
        self.active.clear()

    async def run(self) -> None:
        """Forever: renew every ttl/3 while holding, poll every second while standing by."""
        while True:
            try:
                await self.step()
            except Exception as exc:  # MongoDB away: keep what we have, try again
                log.debug("lease round failed: %s", exc)
            await asyncio.sleep(self.ttl / 3 if self.token is not None else STANDBY_POLL_SECONDS)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def stand_down(self) -> None:
        """Stop counting now (shutdown): events from here on are left to the next holder."""
        self.active.clear()

    async def release(self) -> None:
        """Hand the lease over at once (after the final flush, with nothing left in the outbox)."""
        if self.token is None:
            return
        await self.repo.release(self.holder, self.token, to_ms(self.clock.now()))
        log.info("lease released (token %d)", self.token)
        self.token = None
