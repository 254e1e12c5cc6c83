"""Issue 18, 8: `DATA_DIR` and every file the bot keeps there are its own user's only (umask 077 at
start, files from before tightened), the embedded server's database files and logs included."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from app.storage.lease import DataDirLock
from app.storage.outbox import Outbox
from app.wiring.runtime import open_database
from app.wiring.settings import Settings


def modes(root: Path) -> dict[str, int]:
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.lstat().st_mode) for p in paths}


@pytest.fixture
def umask():
    """The test process's umask back as it was (make_private sets it for the whole process)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_data_dir_and_every_file_in_it_are_private(tmp_path: Path, monkeypatch, umask, caplog) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    data = tmp_path / "data"
    (data / "backups" / "20260310T120000Z-abcdef").mkdir(parents=True)
    old = data / "backups" / "20260310T120000Z-abcdef" / "activity.json"
    old.write_text("{}")  # left by an earlier version: 0644 in a 0755 folder
    os.chmod(old, 0o644)
    os.chmod(data, 0o755)
    settings = Settings(_env_file=None, data_dir=data, mongodb_db="private")  # type: ignore[call-arg]
    with caplog.at_level(logging.WARNING):
        async with open_database(settings) as database:
            await database.db.activity.insert_one({"_id": "t:1:5", "messages": 1})
            outbox = await Outbox(data / "outbox.db").open()
            await outbox.append("count messages", b"x", 0)
            await outbox.close()
            lock = DataDirLock(data)
            lock.acquire()
            lock.release()
    found = modes(data)
    assert any(name.startswith("data/db/") and name.endswith(".db") for name in found), found
    expected = {"data/outbox.db", "data/nx-27017.out", "data/backups/20260310T120000Z-abcdef/activity.json"}
    assert expected <= set(found)
    assert found["data"] == 0o700
    assert {name: oct(mode) for name, mode in found.items() if mode & 0o077} == {}
    assert any("were readable by other local users; now owner only" in r.getMessage() for r in caplog.records)


async def test_the_embedded_server_answers_on_loopback_only(tmp_path: Path, monkeypatch, umask) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", mongodb_db="private")  # type: ignore[call-arg]
    async with open_database(settings) as database:
        assert database.host.startswith("127.0.0.1:")
