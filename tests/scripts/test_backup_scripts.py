"""`python -m scripts.backup` and `python -m scripts.restore` as real processes, configured like the bot."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"backup (\d{8}T\d{6}Z-[0-9a-f]{6}): (\d+) files, (\d+) documents in (\S+)")


async def run(module: str, *args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run in an empty folder (no .env there) with only the given settings in the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "DATA_DIR", "DISCORD_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def seed(db: Any) -> None:
    at = datetime(2026, 3, 10, 11, 0, 0, 250000, tzinfo=UTC)
    await db.activity.insert_many([
        {"_id": f"1:{2**60 + n}", "guild_id": 1, "user_id": 2**60 + n, "messages": n, "at": at}
        for n in range(30)
    ])
    await db.activity.insert_one({"_id": "2:5", "guild_id": 2, "user_id": 5, "messages": 1})
    await db.joins.insert_one({"_id": 2**62, "guild_id": 1, "member_id": 201, "via": {"code": "abc"}})


async def test_backup_then_restore_into_an_empty_database(db: Any, mongo_client: Any, mongo_uri: str,
                                                          tmp_path: Path) -> None:
    await seed(db)
    code, out, err = await run("scripts.backup", "--out", str(tmp_path / "b"), cwd=tmp_path,
                               MONGODB_URI=mongo_uri, MONGODB_DB=db.name)
    assert code == 0, err
    match = LINE.fullmatch(out.strip())
    assert match, out
    backup_id, files, documents, path = match.groups()
    assert (int(files), int(documents)) == (2, 32)
    assert Path(path) == tmp_path / "b" / backup_id
    assert err == "", "no progress bar when stderr is not a terminal"

    target = f"{db.name}_r"
    try:
        code, out, err = await run("scripts.restore", path, "--quiet", cwd=tmp_path,
                                   MONGODB_URI=mongo_uri, MONGODB_DB=target)
        assert code == 0, err
        assert out.strip() == (f"restored backup {backup_id} into database '{target}': 32 documents in 2 "
                               "collections (32 inserted, 0 replaced)")
        restored = mongo_client[target]
        assert [d async for d in restored.activity.find()] == [d async for d in db.activity.find()]
        assert [d async for d in restored.joins.find()] == [d async for d in db.joins.find()]
        code, out, _ = await run("scripts.restore", path, cwd=tmp_path,
                                 MONGODB_URI=mongo_uri, MONGODB_DB=target)
        assert code == 0 and "(0 inserted, 32 replaced)" in out
    finally:
        await mongo_client.drop_database(target)


async def test_guild_backup_by_id_in_data_dir_and_a_truncated_file_refused(
    db: Any, mongo_uri: str, tmp_path: Path
) -> None:
    await seed(db)
    data_dir = tmp_path / "data"
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": db.name, "DATA_DIR": str(data_dir)}
    code, out, err = await run("scripts.backup", "--guild", "1", "--quiet", cwd=tmp_path, **env)
    assert code == 0, err
    backup_id, files, documents, path = LINE.fullmatch(out.strip()).groups()  # type: ignore[union-attr]
    assert (int(files), int(documents)) == (2, 31)
    assert Path(path) == data_dir / "backups" / backup_id

    activity = Path(path) / "activity.json"
    activity.write_bytes(activity.read_bytes()[:-100])
    await db.activity.delete_many({})
    code, out, err = await run("scripts.restore", backup_id, cwd=tmp_path, **env)
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0, err
    assert err.startswith(f"error: restore refused: {activity}: damaged or truncated")
    assert await db.activity.count_documents({}) == 0

    code, _, err = await run("scripts.restore", "not-an-id", cwd=tmp_path, **env)
    assert code == 1 and "'not-an-id' is not a backup id" in err


async def test_backup_without_mongodb_uri_uses_the_embedded_database(tmp_path: Path) -> None:
    code, out, err = await run("scripts.backup", "--quiet", cwd=tmp_path, DATA_DIR=str(tmp_path / "data"))
    assert code == 0, err
    _, files, documents, path = LINE.fullmatch(out.strip()).groups()  # type: ignore[union-attr]
    assert (int(files), int(documents)) == (0, 0)
    assert (Path(path) / "manifest.json").is_file()
    assert (tmp_path / "data" / "db").is_dir(), "the embedded server kept its files in DATA_DIR"
