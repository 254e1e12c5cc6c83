"""Backup and restore against the real test server: exact round trip, idempotence, refusals, guild filter."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId

from app.operations.backups import (
    BackupError,
    BackupService,
    TqdmProgress,
    decode_line,
    encode_line,
    resolve_backup,
    validate_backup_id,
    verify_backup,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BIG = 2**62 + 12345  # a 64-bit Discord-id-sized integer
SNOWFLAKE = 1_234_567_890_123_456_789


def varied_documents() -> dict[str, list[dict[str, Any]]]:
    return {
        "activity": [
            {"_id": f"1:{SNOWFLAKE}:2026-03-10", "guild_id": 1, "user_id": SNOWFLAKE, "messages": 7,
             "voice_ms": Int64(5), "cam_ms": 2**40, "day": datetime(2026, 3, 10, tzinfo=UTC),
             "last_op": ["a1", "b2"], "ratio": 0.5, "whole": 2.0},
            {"_id": "2:103:2026-03-09", "guild_id": 2, "user_id": 103, "messages": 0, "flag": True},
        ],
        "joins": [
            {"_id": ObjectId("65f0c0ffee0000000000abcd"), "guild_id": 1, "member_id": BIG,
             "at": datetime(2026, 3, 10, 11, 59, 58, 123000, tzinfo=UTC),
             "invite": {"code": "abc", "inviter": 101, "uses": {"before": 3, "after": 4}},
             "old": datetime(1969, 7, 20, 20, 17, tzinfo=UTC), "note": None},
            {"_id": BIG, "guild_id": 1, "member_id": 102, "tags": [1, Int64(2), "x", {"deep": [2**33]}]},
        ],
        "guild_settings": [
            {"_id": 1, "guild_id": 1, "time_zone": "Europe/Berlin", "ignored_channels": [11, 2**50]},
            {"_id": 2, "guild_id": 2, "time_zone": "UTC"},
        ],
    }


def typed(value: Any) -> Any:
    """A value with its exact Python type at every level (Int64 and int differ, so do 2 and 2.0)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


async def insert(db: Any, docs: dict[str, list[dict[str, Any]]]) -> None:
    for name, items in docs.items():
        await db[name].insert_many(items)


async def dump(db: Any, names: list[str] | None = None) -> dict[str, Any]:
    names = names or sorted(n for n in await db.list_collection_names() if not n.startswith("_"))
    return {name: {repr(d["_id"]): typed(d) async for d in db[name].find()} for name in names}


async def drop_all(db: Any) -> None:
    for name in await db.list_collection_names():
        await db.drop_collection(name)


async def test_round_trip_gives_identical_documents_and_types(db: Any, tmp_path: Path) -> None:
    await insert(db, varied_documents())
    await db["_probe"].insert_one({"_id": "bot", "token": "t"})
    await db["lifecycle"].insert_one({"_id": "bot", "running": True})
    before = await dump(db, ["activity", "guild_settings", "joins"])
    service = BackupService(db, tmp_path / "backups")

    result = await service.create(now=NOW)
    assert result.path == tmp_path / "backups" / result.backup_id
    assert result.backup_id.startswith("20260310T120000Z-")
    assert (result.files, result.documents) == (3, 6)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["database"] == db.name and manifest["guild_id"] is None
    assert manifest["created_at"] == "2026-03-10T12:00:00+00:00"
    assert {n: c["count"] for n, c in manifest["collections"].items()} == {
        "activity": 2, "guild_settings": 2, "joins": 2,
    }
    assert sorted(p.name for p in result.path.iterdir()) == [
        "activity.json", "guild_settings.json", "joins.json", "manifest.json",
    ], "_probe and lifecycle are operational state, never backed up"
    line = (result.path / "joins.json").read_text().splitlines()[1]
    assert f'"_id": {{"$numberLong": "{BIG}"}}' in line  # canonical Extended JSON v2

    await drop_all(db)
    restored = await service.restore(result.path)
    assert (restored.documents, restored.inserted, restored.replaced) == (6, 6, 0)
    assert await dump(db) == before


def test_the_line_format_keeps_every_bson_type_exactly() -> None:
    """Canonical mode: a small int64 stays int64 (relaxed mode would turn it into an int32)."""
    # As the driver reads it from MongoDB: every BSON int64 is an Int64, every int32 an int.
    doc = {
        "_id": Int64(5), "small64": Int64(7), "int32": 7, "big": Int64(BIG), "float": 2.0, "none": None,
        "at": datetime(2026, 3, 10, 11, 59, 58, 123000, tzinfo=UTC),
        "oid": ObjectId("65f0c0ffee0000000000abcd"),
        "nested": {"list": [Int64(1), 1, {"x": Int64(SNOWFLAKE)}]},
    }
    back = decode_line(encode_line(doc))
    assert typed(back) == typed(doc)
    assert type(back["small64"]) is Int64 and type(back["int32"]) is int and type(back["float"]) is float
    assert back["at"].tzinfo is not None and back["at"] == doc["at"]
    assert bson.encode(back) == bson.encode(doc), "byte-identical BSON"


async def test_restore_twice_is_the_same_result(db: Any, tmp_path: Path) -> None:
    await insert(db, varied_documents())
    service = BackupService(db, tmp_path)
    backup = await service.create(now=NOW)
    await db.activity.update_one({"guild_id": 1}, {"$inc": {"messages": 5}})  # changed after the backup
    await db.joins.insert_one({"_id": "new", "guild_id": 1})  # created after the backup
    expected = {**varied_documents()}

    first = await service.restore(backup.path)
    after_first = await dump(db)
    second = await service.restore(backup.path)
    assert (first.documents, first.inserted, first.replaced) == (6, 0, 6)
    assert (second.documents, second.inserted, second.replaced) == (6, 0, 6)
    assert await dump(db) == after_first
    assert (await db.activity.find_one({"guild_id": 1}))["messages"] == expected["activity"][0]["messages"]
    assert await db.joins.find_one({"_id": "new"}) is not None, "without --drop-first newer documents stay"


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "missing"])
async def test_damaged_backup_is_refused_before_anything_is_written(
    db: Any, tmp_path: Path, damage: str
) -> None:
    await insert(db, varied_documents())
    service = BackupService(db, tmp_path)
    backup = await service.create(now=NOW)
    await drop_all(db)
    target = backup.path / "joins.json"
    data = target.read_bytes()
    if damage == "corrupt":
        at = data.index(b"abc")
        target.write_bytes(data[:at] + b"abd" + data[at + 3:])  # same length, one byte changed
    elif damage == "truncate":
        target.write_bytes(data[: len(data) - 40])
    else:
        target.unlink()

    with pytest.raises(BackupError) as refused:
        await service.restore(backup.path)
    message = str(refused.value)
    assert "\n" not in message and str(target) in message
    assert ("missing" if damage == "missing" else "damaged or truncated") in message
    assert await db.list_collection_names() == [], "activity.json sorts first but was not written either"


async def test_damaged_manifest_and_bad_ids_are_refused(db: Any, tmp_path: Path) -> None:
    await insert(db, varied_documents())
    backup = await BackupService(db, tmp_path).create(now=NOW)
    manifest = backup.path / "manifest.json"
    raw = json.loads(manifest.read_text())
    raw["collections"]["../evil"] = raw["collections"].pop("joins")
    manifest.write_text(json.dumps(raw))
    with pytest.raises(BackupError, match=r"collection name '\.\./evil' is not allowed"):
        verify_backup(backup.path)
    manifest.write_text("{not json")
    with pytest.raises(BackupError, match="damaged manifest"):
        verify_backup(backup.path)

    assert validate_backup_id("20260310T120000Z-a1b2c3") == "20260310T120000Z-a1b2c3"
    for bad in ("../20260310T120000Z-a1b2c3", "20260310T120000Z-A1B2C3", "x", "", "20260310T120000Z-a1b2c3\n",
                '{"$gt": ""}'):
        with pytest.raises(BackupError):
            validate_backup_id(bad)
    assert resolve_backup("20260310T120000Z-a1b2c3", tmp_path) == tmp_path / "20260310T120000Z-a1b2c3"
    assert resolve_backup("./some/dir", tmp_path) == Path("./some/dir")
    with pytest.raises(BackupError):
        resolve_backup("..", tmp_path)


async def test_guild_backup_holds_only_that_guild_and_restores_only_it(db: Any, tmp_path: Path) -> None:
    await insert(db, varied_documents())
    service = BackupService(db, tmp_path)
    backup = await service.create(now=NOW, guild_id=1)
    assert backup.manifest.guild_id == 1
    assert {e.name: e.count for e in backup.manifest.collections} == {
        "activity": 1, "guild_settings": 1, "joins": 2,
    }
    for entry in backup.manifest.collections:
        for line in (backup.path / entry.file).read_text().splitlines():
            assert '"guild_id": {"$numberInt": "1"}' in line

    guild2_before = {
        n: [d async for d in db[n].find({"guild_id": 2})] for n in ("activity", "guild_settings")
    }
    await db.activity.update_one({"guild_id": 1}, {"$set": {"messages": 99}})
    await db.joins.insert_one({"_id": "later", "guild_id": 1})
    await db.activity.update_one({"guild_id": 2}, {"$set": {"messages": 42}})
    guild2_before["activity"][0]["messages"] = 42

    result = await service.restore(backup.path, drop_first=True)
    assert (result.documents, result.inserted) == (4, 4), "drop-first removed guild 1's documents first"
    assert await db.joins.find_one({"_id": "later"}) is None
    assert (await db.activity.find_one({"guild_id": 1}))["messages"] == 7
    for name, docs in guild2_before.items():
        assert [d async for d in db[name].find({"guild_id": 2})] == docs, "other guilds are untouched"


async def test_all_data_drop_first_empties_the_collections_but_keeps_indexes(db: Any, tmp_path: Path) -> None:
    await insert(db, varied_documents())
    await db.joins.create_index([("guild_id", 1), ("member_id", 1)])
    service = BackupService(db, tmp_path)
    backup = await service.create(now=NOW)
    await db.joins.insert_one({"_id": "later", "guild_id": 3})
    result = await service.restore(backup.path, drop_first=True)
    assert result.inserted == 6
    assert await db.joins.count_documents({}) == 2
    keys = [list(spec["key"]) for spec in (await db.joins.index_information()).values()]
    assert [("guild_id", 1), ("member_id", 1)] in keys


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_bar_on_a_terminal_and_silent_when_quiet(db: Any, tmp_path: Path) -> None:
    await insert(db, varied_documents())
    service = BackupService(db, tmp_path)
    terminal, quiet = Terminal(), Terminal()
    backup = await service.create(now=NOW, progress=TqdmProgress(stream=terminal))
    await service.restore(backup.path, progress=TqdmProgress(quiet=True, stream=quiet))
    assert f"backup {backup.backup_id}" in terminal.getvalue() and "6/6" in terminal.getvalue()
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    await service.restore(backup.path, progress=TqdmProgress(stream=piped))
    assert piped.getvalue() == "", "not a terminal: no bar"
