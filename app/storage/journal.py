"""The invite journal: a durable local log of the invite tracker's inputs (join, leave and invite
events, and the invite reads made for waiting joins) until what they lead to is in MongoDB.

Invite jobs cannot go through the outbox as writes: what a join is recorded as depends on reads
of MongoDB and Discord made when it is settled. So the *inputs* are kept instead, and a restart
puts them back where they were (the same waiting joins, the same reads, the same queued jobs),
which gives the same attributions as a run without the restart.

`add` and `forget` are synchronous (an event keeps its order) and take effect in memory at once;
a background task commits them in groups (one SQLite transaction, `synchronous=FULL`), starting
as soon as the previous commit is done, so a record is on disk a few milliseconds after `add`.
Every SQLite call runs on one dedicated thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions

from app.storage.outbox import move_aside

log = logging.getLogger(__name__)
_CODEC = CodecOptions(tz_aware=True)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Record:
    id: int
    guild_id: int
    kind: str
    body: dict[str, Any]


class Journal:
    """`open()` first (it returns what a previous run left); then `add`/`forget` and `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._next_id = 1
        self._inserts: dict[int, tuple[int, str, bytes]] = {}
        self._deletes: set[int] = set()
        self._dirty = asyncio.Event()
        self._committed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._committing = False
        self.depth = 0  # records kept (in memory and on disk), not yet forgotten
        self.commits = 0

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def open(self) -> list[Record]:
        """Open (or create) the file; the records a previous run left, oldest first."""
        rows = await self._run(self._open_sync)
        records = [Record(int(r[0]), int(r[1]), str(r[2]), bson.decode(bytes(r[3]), _CODEC)) for r in rows]
        self._next_id = max((r.id for r in records), default=0) + 1
        self.depth = len(records)
        self._task = asyncio.get_running_loop().create_task(self._commit_loop(), name="journal commits")
        if records:
            log.info("invite journal: %d events of the previous run are taken up again", len(records))
        return records

    def _open_sync(self) -> list[tuple[Any, ...]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect_and_read()
        except sqlite3.DatabaseError as exc:
            self._close_sync()
            aside = move_aside(self.path)
            log.error("invite journal %s is unreadable (%s): moved aside to %s; starting a new one",
                      self.path, exc, aside)
            return self._connect_and_read()

    def _connect_and_read(self) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        return conn.execute("SELECT id, guild_id, kind, body FROM records ORDER BY id").fetchall()

    # ---- in memory at once, on disk with the next commit -------------------------------------------
    def add(self, guild_id: int, kind: str, body: dict[str, Any]) -> int:
        record_id = self._next_id
        self._next_id += 1
        self._inserts[record_id] = (guild_id, kind, bson.encode(body))
        self.depth += 1
        self._dirty.set()
        return record_id

    def forget(self, record_ids: list[int]) -> None:
        for record_id in record_ids:
            if record_id <= 0:
                continue
            self.depth -= 1
            if self._inserts.pop(record_id, None) is None:
                self._deletes.add(record_id)
        self._dirty.set()

    async def flush(self) -> None:
        """Until everything added or forgotten so far is on disk."""
        while self._inserts or self._deletes or self._committing:
            self._committed.clear()
            self._dirty.set()
            await self._committed.wait()

    async def _commit_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            inserts, self._inserts = self._inserts, {}
            deletes, self._deletes = self._deletes, set()
            if inserts or deletes:
                self._committing = True
                try:
                    await self._run(self._commit_sync, inserts, deletes)
                    self.commits += 1
                except sqlite3.Error as exc:
                    log.error("invite journal: could not write %s (%s); trying again", self.path, exc)
                    self._inserts = {**inserts, **self._inserts}
                    self._deletes |= deletes
                    await asyncio.sleep(0.5)
                    self._dirty.set()
                finally:
                    self._committing = False
            self._committed.set()

    def _commit_sync(self, inserts: dict[int, tuple[int, str, bytes]], deletes: set[int]) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        try:
            conn.executemany("INSERT OR REPLACE INTO records (id, guild_id, kind, body) VALUES (?, ?, ?, ?)",
                             [(rid, *row) for rid, row in inserts.items()])
            conn.executemany("DELETE FROM records WHERE id = ?", [(rid,) for rid in deletes])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the invite journal is not open")
        return self._conn

    async def close(self) -> None:
        """Commit what is pending, then close."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), 2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._run(self._close_sync)
        self._thread.shutdown(wait=False)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
