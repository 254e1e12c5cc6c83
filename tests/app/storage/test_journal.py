"""The invite journal: records on disk shortly after `add`, gone after `forget`, back after a crash."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from app.storage.journal import Journal

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def on_disk(path: Path) -> list[tuple[int, int, str]]:
    """What another process would read from the file right now (committed records only)."""
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute("SELECT id, guild_id, kind FROM records ORDER BY id")]
    finally:
        conn.close()


def moved_aside(folder: Path) -> list[Path]:
    return list(folder.glob("j.db.corrupt-*"))


async def until(predicate, seconds: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_record_is_committed_within_milliseconds_without_any_flush(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    assert await journal.open() == []
    first = journal.add(7, "join", {"m": 1 << 62, "j": T0})
    journal.add(7, "leave", {"d": 5})
    await until(lambda: len(on_disk(journal.path)) == 2, 0.25)  # the write-ahead bound, with margin
    assert on_disk(journal.path) == [(first, 7, "join"), (first + 1, 7, "leave")]
    journal.forget([first])
    await until(lambda: len(on_disk(journal.path)) == 1, 0.25)
    assert journal.depth == 1
    await journal.close()


async def test_records_left_by_a_crash_come_back_in_order_with_their_values(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path)
    await journal.open()
    ids = [journal.add(7, "join", {"m": 1 << 62, "j": T0, "n": "ada"}), journal.add(8, "read", {"k": ["a"]})]
    await until(lambda: len(on_disk(path)) == 2)
    # A crash: nothing more reaches the file (no flush, no close).
    assert journal._task is not None
    journal._task.cancel()

    again = Journal(path)
    records = await again.open()
    assert [(r.id, r.guild_id, r.kind) for r in records] == [(ids[0], 7, "join"), (ids[1], 8, "read")]
    assert records[0].body == {"m": 1 << 62, "j": T0, "n": "ada"}  # 64-bit ids, aware UTC times
    assert again.add(7, "leave", {"d": 1}) == ids[1] + 1  # ids never reused
    await again.close()


async def test_a_record_forgotten_before_its_commit_never_reaches_the_disk(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    await journal.open()
    kept = journal.add(1, "join", {"m": 1})
    dropped = journal.add(1, "join", {"m": 2})
    journal.forget([dropped])
    await journal.flush()
    assert on_disk(journal.path) == [(kept, 1, "join")]
    await journal.close()
    assert [r.id for r in await Journal(journal.path).open()] == [kept]


async def test_an_unreadable_file_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"not a database at all" * 100)
    journal = Journal(path)
    assert await journal.open() == []
    assert len(moved_aside(tmp_path)) == 1
    journal.add(1, "join", {"m": 1})
    await journal.close()
    assert len(await Journal(path).open()) == 1
