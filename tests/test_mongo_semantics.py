"""Every query and update shape the repositories use, asserted against real MongoDB's documented result.

nx-27017 (the test server) silently differs from MongoDB in places (see ENGINEERING.md). Production
code uses only shapes listed here; when a test here fails on a server, that server is not MongoDB
enough for this project, and the shape must not be used. Run against a real server with
MONGODB_TEST_URI=mongodb://... to check both.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

# ---- foundation: guarded exactly-once upserts (app/retry.py) -------------------------------------


async def test_nin_guard_matches_a_missing_field_and_upserts(db):
    await db.c.update_one({"_id": "k", "op": {"$nin": ["a"]}}, {"$inc": {"n": 1}, "$set": {"op": "a"}},
                          upsert=True)
    assert await db.c.find_one({"_id": "k"}) == {"_id": "k", "n": 1, "op": "a"}


async def test_nin_guard_replay_of_an_applied_op_is_a_duplicate_key(db):
    update = {"$inc": {"n": 1}, "$set": {"op": "a"}}
    await db.c.update_one({"_id": "k", "op": {"$nin": ["a"]}}, update, upsert=True)
    with pytest.raises(DuplicateKeyError):
        await db.c.update_one({"_id": "k", "op": {"$nin": ["a"]}}, update, upsert=True)
    assert (await db.c.find_one({"_id": "k"}))["n"] == 1


async def test_nin_guard_with_a_new_op_applies_again(db):
    await db.c.update_one({"_id": "k", "op": {"$nin": ["a"]}}, {"$inc": {"n": 1}, "$set": {"op": "a"}},
                          upsert=True)
    await db.c.update_one({"_id": "k", "op": {"$nin": ["b"]}}, {"$inc": {"n": 2}, "$set": {"op": "b"}},
                          upsert=True)
    assert (await db.c.find_one({"_id": "k"}))["n"] == 3


async def test_unordered_bulk_reports_the_duplicate_index_and_applies_the_rest(db):
    await db.c.update_one({"_id": "a", "op": {"$nin": ["x"]}}, {"$inc": {"n": 1}, "$set": {"op": "x"}},
                          upsert=True)
    update = {"$inc": {"n": 1}, "$set": {"op": "x"}}
    ops = [UpdateOne({"_id": key, "op": {"$nin": ["x"]}}, update, upsert=True) for key in ("a", "b", "c")]
    with pytest.raises(BulkWriteError) as info:
        await db.c.bulk_write(ops, ordered=False)
    errors = info.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(0, 11000)]
    assert {d["_id"]: d["n"] async for d in db.c.find()} == {"a": 1, "b": 1, "c": 1}


async def test_flat_counters_inc_on_upsert_create_top_level_fields(db):
    await db.c.update_one({"_id": 1}, {"$inc": {"voice_s": 5, "cam_on_s": 5}}, upsert=True)
    await db.c.update_one({"_id": 1}, {"$inc": {"voice_s": 7}}, upsert=True)
    assert await db.c.find_one({"_id": 1}) == {"_id": 1, "voice_s": 12, "cam_on_s": 5}


async def test_set_on_insert_applies_only_when_inserting_with_update_one(db):
    await db.c.update_one({"_id": 1}, {"$setOnInsert": {"first": 1}, "$set": {"last": 1}}, upsert=True)
    await db.c.update_one({"_id": 1}, {"$setOnInsert": {"first": 2}, "$set": {"last": 2}}, upsert=True)
    assert await db.c.find_one({"_id": 1}) == {"_id": 1, "first": 1, "last": 2}


async def test_64_bit_ids_and_aware_datetimes_round_trip(db):
    big = 2**63 - 1
    when = datetime(2026, 3, 10, 12, 0, 0, 123000, tzinfo=UTC)
    await db.c.insert_one({"_id": big, "guild_id": 1234567890123456789, "at": when})
    doc = await db.c.find_one({"_id": big})
    assert doc["guild_id"] == 1234567890123456789
    assert doc["at"] == when and doc["at"].tzinfo is not None


async def test_a_set_boolean_reads_back_truthy_as_written(db):
    """nx-27017 reads a $set boolean on an existing document back as 0/1; code reads flags with bool()."""
    await db.c.update_one({"_id": 1}, {"$set": {"running": True}}, upsert=True)
    await db.c.update_one({"_id": 1}, {"$set": {"running": False}})
    assert bool((await db.c.find_one({"_id": 1}))["running"]) is False
    await db.c.update_one({"_id": 1}, {"$set": {"running": True}})
    assert bool((await db.c.find_one({"_id": 1}))["running"]) is True


async def test_find_by_id_in_list(db):
    await db.c.insert_many([{"_id": i} for i in range(5)])
    found = sorted([d["_id"] async for d in db.c.find({"_id": {"$in": [1, 3, 9]}})])
    assert found == [1, 3]


async def test_unique_index_raises_duplicate_key(db):
    await db.c.create_index("code", unique=True)
    await db.c.insert_one({"_id": 1, "code": "abc"})
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"_id": 2, "code": "abc"})


# ---- backup and restore (app/backups.py) and the health ping (app/health.py) ---------------------


async def test_unordered_bulk_replace_one_upsert_by_id_inserts_and_replaces_whole_documents(db):
    await db.r.insert_one({"_id": 1, "guild_id": 1, "n": 5, "extra": "gone after the replace"})
    result = await db.r.bulk_write(
        [ReplaceOne({"_id": 1}, {"_id": 1, "guild_id": 1, "n": 2}, upsert=True),
         ReplaceOne({"_id": 2**62}, {"_id": 2**62, "guild_id": 1, "n": 3}, upsert=True)],
        ordered=False,
    )
    assert (result.matched_count, result.upserted_count) == (1, 1)
    assert [d async for d in db.r.find({}, sort=[("_id", 1)])] == [
        {"_id": 1, "guild_id": 1, "n": 2}, {"_id": 2**62, "guild_id": 1, "n": 3},
    ]


async def test_find_count_and_delete_many_by_guild_id_touch_only_that_guild(db):
    await db.r.insert_many([{"_id": i, "guild_id": 1 if i < 3 else 2**60} for i in range(5)])
    assert await db.r.count_documents({"guild_id": 1}) == 3
    assert [d["_id"] async for d in db.r.find({"guild_id": 2**60})] == [3, 4]
    assert (await db.r.delete_many({"guild_id": 1})).deleted_count == 3
    assert await db.r.count_documents({}) == 2
    assert (await db.r.delete_many({})).deleted_count == 2


async def test_list_collection_names_and_ping(db):
    await db["activity"].insert_one({"_id": 1})
    await db["_probe"].insert_one({"_id": 1})
    assert sorted(await db.list_collection_names()) == ["_probe", "activity"]
    assert (await db.command("ping"))["ok"] == 1
