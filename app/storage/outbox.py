"""The durable local outbox: writes MongoDB has not acknowledged yet, in order, in SQLite (WAL).

It holds only unacknowledged writes; an entry is deleted once MongoDB acknowledged it. Nothing
ever restores MongoDB from it (it is not a second copy of the data). Every SQLite call runs on
one dedicated thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    what TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    what TEXT NOT NULL,
    body BLOB NOT NULL,
    error TEXT NOT NULL
);
"""


def move_aside(path: Path) -> Path:
    """Rename an unreadable SQLite file (with its -wal and -shm) to `<name>.corrupt-<UTC time>`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    return target


@dataclass(frozen=True)
class Entry:
    id: int
    created_ms: int
    what: str
    body: bytes


class Outbox:
    """An ordered, durable queue of encoded writes. `open()` first; all methods are async."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self.depth = 0
        self.moved_aside: Path | None = None

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    # ---- opening, and a corrupt file moved aside ---------------------------------------------------
    async def open(self) -> Outbox:
        await self._run(self._open_sync)
        return self

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connect_and_check()
        except sqlite3.DatabaseError as exc:
            self._close_sync()
            self.moved_aside = self._move_aside()
            log.error("outbox file %s is unreadable (%s): moved aside to %s; starting a new one",
                      self.path, exc, self.moved_aside)
            self._connect_and_check()

    def _connect_and_check(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an entry is on disk before append() returns
        conn.executescript(_SCHEMA)
        row = conn.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else 'no answer'}")
        self.depth = int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def _move_aside(self) -> Path:
        return move_aside(self.path)

    async def close(self) -> None:
        await self._run(self._close_sync)
        self._thread.shutdown(wait=False)  # idle now; never block the event loop on it

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("outbox is not open")
        return self._conn

    # ---- queue --------------------------------------------------------------------------------------
    async def append(self, what: str, body: bytes, created_ms: int) -> int:
        """Store one entry durably (committed when this returns)."""
        entry_id = await self._run(self._append_sync, what, body, created_ms)
        self.depth += 1
        return int(entry_id)

    def _append_sync(self, what: str, body: bytes, created_ms: int) -> int:
        cursor = self.conn.execute(
            "INSERT INTO entries (created_ms, what, body) VALUES (?, ?, ?)", (created_ms, what, body)
        )
        return int(cursor.lastrowid or 0)

    async def last_id(self) -> int:
        """The id of the newest entry waiting (0 when none)."""
        return int(await self._run(self._last_id_sync))

    def _last_id_sync(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()[0])

    async def peek(self, limit: int) -> list[Entry]:
        rows = await self._run(self._peek_sync, limit)
        return [Entry(int(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def _peek_sync(self, limit: int) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT id, created_ms, what, body FROM entries ORDER BY id LIMIT ?", (limit,)
        ).fetchall()

    async def delete(self, entry_id: int) -> None:
        """Forget an entry MongoDB acknowledged."""
        deleted = await self._run(self._delete_sync, entry_id)
        self.depth -= deleted

    def _delete_sync(self, entry_id: int) -> int:
        return int(self.conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,)).rowcount)

    async def bury(self, entry: Entry, error: str) -> None:
        """Move an entry MongoDB refused for good (not transient) out of the queue, kept for review."""
        await self._run(self._bury_sync, entry, error)
        self.depth -= 1

    def _bury_sync(self, entry: Entry, error: str) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("INSERT INTO dead (id, created_ms, what, body, error) VALUES (?, ?, ?, ?, ?)",
                              (entry.id, entry.created_ms, entry.what, entry.body, error))
            self.conn.execute("DELETE FROM entries WHERE id = ?", (entry.id,))

    async def set_aside(self, what: str, body: bytes, created_ms: int, error: str) -> int:
        """Keep a unit MongoDB refused for good, never queued, in the `dead` table (committed when
        this returns); its id comes from the queue's own sequence, so it never collides with a
        buried entry. Returns the id."""
        return int(await self._run(self._set_aside_sync, what, body, created_ms, error))

    def _set_aside_sync(self, what: str, body: bytes, created_ms: int, error: str) -> int:
        with self.conn:
            self.conn.execute("BEGIN")
            entry_id = self._append_sync(what, body, created_ms)
            self.conn.execute("INSERT INTO dead (id, created_ms, what, body, error) VALUES (?, ?, ?, ?, ?)",
                              (entry_id, created_ms, what, body, error))
            self.conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
        return entry_id

    async def dead_entries(self) -> list[tuple[Entry, str]]:
        """Every unit kept aside (refused by MongoDB for good), oldest first, with its error."""
        rows = await self._run(lambda: self.conn.execute(
            "SELECT id, created_ms, what, body, error FROM dead ORDER BY id").fetchall())
        return [(Entry(int(r[0]), int(r[1]), str(r[2]), bytes(r[3])), str(r[4])) for r in rows]

    async def oldest_created_ms(self) -> int | None:
        row = await self._run(lambda: self.conn.execute("SELECT MIN(created_ms) FROM entries").fetchone())
        return int(row[0]) if row and row[0] is not None else None

    async def dead_count(self) -> int:
        row = await self._run(lambda: self.conn.execute("SELECT COUNT(*) FROM dead").fetchone())
        return int(row[0])
