"""Every query and update shape the repositories use, asserted against real MongoDB's documented result.

nx-27017 (the test server) silently differs from MongoDB in places (see ENGINEERING.md). Production
code uses only shapes listed here; when a test here fails on a server, that server is not MongoDB
enough for this project, and the shape must not be used. Run against a real server with
MONGODB_TEST_URI=mongodb://... to check both.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

# ---- foundation: guarded exactly-once upserts (app/storage/retry.py) ---------------------------------------


def _seq_guard(key, seq):
    """The sequence guard of app.storage.retry.guard_filter: `_id` and `$or` inside `$and`."""
    return {"$and": [{"_id": key}, {"$or": [{"seq": {"$lt": seq}}, {"seq": {"$exists": False}}]}]}


async def test_seq_guard_upserts_takes_the_id_from_and_and_refuses_replays_and_older_ops(db):
    """MongoDB builds the upserted document from the equality clauses of the query, `$and` included;
    a document whose guard is as new or newer does not match, so the upsert's insert is a
    duplicate key (the guard's "already applied")."""
    def step(seq):
        return db.c.update_one(_seq_guard("k", seq), {"$inc": {"n": 1}, "$set": {"seq": seq}}, upsert=True)

    await step(10)
    for replay_or_older in (10, 5):
        with pytest.raises(DuplicateKeyError):
            await step(replay_or_older)
    await step(11)
    assert await db.c.find_one({"_id": "k"}) == {"_id": "k", "n": 2, "seq": 11}


async def test_seq_guard_matches_only_its_own_document_and_a_missing_guard_field(db):
    await db.c.insert_many([{"_id": "a", "n": 0}, {"_id": "b", "n": 0}])
    await db.c.update_one(_seq_guard("b", 7), {"$inc": {"n": 1}, "$set": {"seq": 7}}, upsert=True)
    assert await db.c.find({}, sort=[("_id", 1)]).to_list(None) == [
        {"_id": "a", "n": 0}, {"_id": "b", "n": 1, "seq": 7}]


async def test_seq_guard_in_a_bulk_write_and_on_delete(db):
    """A late, older state write or delete leaves the newer state (voice session documents)."""
    await db.c.insert_one({"_id": "s", "checkpoint": 20, "seq": 20})
    with pytest.raises(BulkWriteError) as info:
        await db.c.bulk_write([UpdateOne(_seq_guard("s", 10), {"$set": {"checkpoint": 10, "seq": 10}},
                                         upsert=True),
                               UpdateOne(_seq_guard("t", 10), {"$set": {"checkpoint": 10, "seq": 10}},
                                         upsert=True)], ordered=False)
    assert [e["code"] for e in info.value.details["writeErrors"]] == [11000]
    assert info.value.details["writeErrors"][0]["index"] == 0
    assert (await db.c.delete_one(_seq_guard("s", 15))).deleted_count == 0
    assert (await db.c.find_one({"_id": "s"}))["checkpoint"] == 20
    assert (await db.c.find_one({"_id": "t"}))["checkpoint"] == 10
    assert (await db.c.delete_one(_seq_guard("s", 30))).deleted_count == 1


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


# ---- backup and restore (app/operations/backups.py) and the health ping (app/wiring/health.py) -------------


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


# ---- activity counters (repositories/activity.py) and voice sessions (repositories/voice_sessions.py) ------


async def test_guarded_counter_upsert_with_identity_fields_in_set(db):
    update = {"$inc": {"messages": 0, "voice_s": 60, "cam_on_s": 0, "cam_off_s": 60, "stream_s": 0},
              "$set": {"kind": "day", "day": "2026-03-10", "guild_id": 1, "member_id": 2**60,
                       "voice_op": "a"}}
    await db.act.update_one({"_id": "d:1:x:2026-03-10", "voice_op": {"$nin": ["a"]}}, update, upsert=True)
    await db.act.update_one(
        {"_id": "d:1:x:2026-03-10", "msg_op": {"$nin": ["m"]}},
        {"$inc": {"messages": 2, "voice_s": 0, "cam_on_s": 0, "cam_off_s": 0, "stream_s": 0},
         "$set": {"kind": "day", "msg_op": "m"}}, upsert=True,
    )
    assert await db.act.find_one({"_id": "d:1:x:2026-03-10"}) == {
        "_id": "d:1:x:2026-03-10", "voice_s": 60, "cam_on_s": 0, "cam_off_s": 60, "stream_s": 0,
        "kind": "day", "day": "2026-03-10", "guild_id": 1, "member_id": 2**60, "voice_op": "a",
        "messages": 2, "msg_op": "m",
    }


def _full(doc):
    """The repository writes every counter into every document (0 when unused)."""
    return {"messages": 0, "voice_s": 0, "cam_on_s": 0, "cam_off_s": 0, "stream_s": 0, **doc}


def _rows(rows):
    """`$project: {_id: 0}` drops `_id` on MongoDB; nx-27017 leaves `_id: None`. Code reads named fields."""
    return [{k: v for k, v in r.items() if k != "_id"} for r in rows]


async def _seed_activity(db):
    await db.act.insert_many(_full(d) for d in [
        {"_id": "t:1:5", "kind": "total", "guild_id": 1, "member_id": 5, "messages": 3, "voice_s": 70},
        {"_id": "t:1:6", "kind": "total", "guild_id": 1, "member_id": 6, "messages": 3},
        {"_id": "t:1:7", "kind": "total", "guild_id": 1, "member_id": 7, "messages": 9, "voice_s": 0},
        {"_id": "t:2:5", "kind": "total", "guild_id": 2, "member_id": 5, "messages": 100},
        {"_id": "d:1:5:2026-02-28", "kind": "day", "guild_id": 1, "member_id": 5, "day": "2026-02-28",
         "messages": 1, "voice_s": 50},
        {"_id": "d:1:5:2026-03-10", "kind": "day", "guild_id": 1, "member_id": 5, "day": "2026-03-10",
         "messages": 2, "voice_s": 20},
        {"_id": "d:1:6:2026-03-09", "kind": "day", "guild_id": 1, "member_id": 6, "day": "2026-03-09",
         "messages": 3},
        {"_id": "d:1:7:2026-03-01", "kind": "day", "guild_id": 1, "member_id": 7, "day": "2026-03-01",
         "messages": 9},
    ])


async def test_group_sum_of_one_members_days_since_a_day_string(db):
    await _seed_activity(db)
    pipeline = [
        {"$match": {"guild_id": 1, "member_id": 5, "kind": "day", "day": {"$gte": "2026-03-01"}}},
        {"$group": {"_id": None, "messages": {"$sum": "$messages"}, "voice_s": {"$sum": "$voice_s"},
                    "stream_s": {"$sum": "$stream_s"}}},
    ]
    assert await _agg(db.act, pipeline) == [
        {"_id": None, "messages": 2, "voice_s": 20, "stream_s": 0}]  # every counter present: no null sums
    empty = [{**pipeline[0], "$match": {**pipeline[0]["$match"], "member_id": 99}}, pipeline[1]]
    assert await _agg(db.act, empty) == []


async def test_find_days_since_a_day_string(db):
    await _seed_activity(db)
    query = {"guild_id": 1, "member_id": 5, "kind": "day", "day": {"$gte": "2026-03-01"}}
    assert [d["day"] async for d in db.act.find(query)] == ["2026-03-10"]


async def test_leaderboard_of_totals_project_match_sort_skip_limit(db):
    await _seed_activity(db)

    def board(field, skip, limit):
        return [{"$match": {"guild_id": 1, "kind": "total"}},
                {"$project": {"_id": 0, "member": "$member_id", "value": f"${field}"}},
                {"$match": {"value": {"$gt": 0}}}, {"$sort": {"value": -1, "member": 1}},
                {"$skip": skip}, {"$limit": limit}]

    assert _rows(await _agg(db.act, board("messages", 0, 10))) == [
        {"member": 7, "value": 9}, {"member": 5, "value": 3}, {"member": 6, "value": 3}]
    assert _rows(await _agg(db.act, board("messages", 1, 1))) == [{"member": 5, "value": 3}]
    # a 0 is left out
    assert _rows(await _agg(db.act, board("voice_s", 0, 10))) == [{"member": 5, "value": 70}]


async def test_leaderboard_of_days_group_project_and_count_above(db):
    await _seed_activity(db)
    stages = [{"$match": {"guild_id": 1, "kind": "day", "day": {"$gte": "2026-03-01"}}},
              {"$group": {"_id": "$member_id", "value": {"$sum": "$messages"}}},
              {"$project": {"_id": 0, "member": "$_id", "value": 1}}]
    rows = _rows(await _agg(db.act,
        [*stages, {"$match": {"value": {"$gt": 0}}}, {"$sort": {"value": -1, "member": 1}}]))
    assert rows == [{"member": 7, "value": 9}, {"member": 6, "value": 3}, {"member": 5, "value": 2}]
    above = await _agg(db.act, [*stages, {"$match": {"value": {"$gt": 2}}}, {"$count": "n"}])
    assert above == [{"n": 2}]
    # MongoDB: no document when nothing is counted; nx-27017 answers {n: 0}. The repository reads
    # "no row" and "n: 0" alike as 0, so only the sum of n over the rows is relied on.
    none = await _agg(db.act, [*stages, {"$match": {"value": {"$gt": 9}}}, {"$count": "n"}])
    assert sum(r["n"] for r in none) == 0


async def test_days_in_a_range_gte_lt_on_day_strings_in_find_and_group(db):
    """A season's days (repositories/activity.py `day_range`): `$gte` and `$lt` on `YYYY-MM-DD`."""
    await _seed_activity(db)
    span = {"$gte": "2026-02-28", "$lt": "2026-03-10"}
    query = {"guild_id": 1, "kind": "day", "day": span}
    assert sorted([d["_id"] async for d in db.act.find(query, {"member_id": 1})]) == [
        "d:1:5:2026-02-28", "d:1:6:2026-03-09", "d:1:7:2026-03-01"]
    stages = [{"$match": query}, {"$group": {"_id": "$member_id", "value": {"$sum": "$messages"}}},
              {"$project": {"_id": 0, "member": "$_id", "value": 1}}]
    rows = _rows(await _agg(db.act, [*stages, {"$sort": {"value": -1, "member": 1}}]))
    assert rows == [{"member": 7, "value": 9}, {"member": 6, "value": 3}, {"member": 5, "value": 1}]


async def test_season_upsert_set_on_insert_under_a_compound_unique_index(db):
    """repositories/seasons.py: a retried upsert of the same `_id` changes nothing; a new `_id`
    whose `(guild_id, name_key)` is taken is a duplicate key; another guild may use the name."""
    await db.seasons.create_index([("guild_id", 1), ("name_key", 1)], unique=True)

    def start(key, guild, name):
        fields = {"guild_id": guild, "name": name, "name_key": name.lower(), "start_day": key[-10:]}
        return db.seasons.update_one({"_id": key}, {"$setOnInsert": fields}, upsert=True)

    await start("1:2026-03-01", 1, "Spring")
    await start("1:2026-03-01", 1, "Spring")  # a retry
    await start("1:2026-03-01", 1, "Other")  # that day has a season: kept as it was
    with pytest.raises(DuplicateKeyError):
        await start("1:2026-06-01", 1, "SPRING")
    await start("2:2026-06-01", 2, "Spring")
    found = [(d["_id"], d["name"]) async for d in db.seasons.find({"guild_id": 1}).sort("start_day", 1)]
    assert found == [("1:2026-03-01", "Spring")]


async def test_indexes_with_descending_counter_keys_are_created(db):
    from pymongo import ASCENDING, DESCENDING, IndexModel

    await db.act.create_indexes([
        IndexModel([("guild_id", ASCENDING), ("kind", ASCENDING), ("day", ASCENDING)]),
        IndexModel([("guild_id", ASCENDING), ("kind", ASCENDING), ("voice_s", DESCENDING)]),
    ])
    await db.act.insert_one({"_id": 1, "guild_id": 1, "kind": "total", "voice_s": 5})
    assert await db.act.count_documents({"guild_id": 1, "kind": "total"}) == 1


async def test_session_intent_set_with_a_list_of_subdocuments_then_unset_by_op(db):
    from pymongo import DeleteOne

    state = {"guild_id": 1, "member_id": 5, "channel_id": 20, "checkpoint": 1000, "opened_at": 1000,
             "camera": 1, "stream": 0, "afk": 0, "deaf_excluded": 0}
    pending = [{"guild_id": 1, "member_id": 5, "day": "2026-03-10", "amounts": {"voice_s": 60}}]
    await db.vs.bulk_write([
        UpdateOne({"_id": "1:5"}, {"$set": state, "$unset": {"pending_op": "", "pending": "", "closing": ""}},
                  upsert=True),
        UpdateOne({"_id": "1:6"}, {"$set": {**state, "member_id": 6}}, upsert=True),
        UpdateOne({"_id": "1:7"}, {"$set": {"pending_op": "x"}}, upsert=False),  # absent: nothing
        DeleteOne({"_id": "1:8"}),
    ], ordered=False)
    assert await db.vs.count_documents({}) == 2
    await db.vs.bulk_write([
        UpdateOne({"_id": "1:5"}, {"$set": {**state, "checkpoint": 61000, "pending_op": "op1",
                                            "pending": pending, "closing": 0}}, upsert=True),
        UpdateOne({"_id": "1:6"}, {"$set": {"pending_op": "op1", "pending": pending, "closing": 1}}),
    ], ordered=False)
    doc = await db.vs.find_one({"_id": "1:5"})
    assert doc["pending"] == pending and doc["pending_op"] == "op1" and doc["checkpoint"] == 61000
    # clearing is filtered on the op id: another op's intent is left alone
    cleared = await db.vs.update_many({"_id": {"$in": ["1:5", "1:6"]}, "pending_op": "other"},
                                      {"$unset": {"pending_op": "", "pending": "", "closing": ""}})
    assert cleared.modified_count == 0
    await db.vs.update_many({"_id": {"$in": ["1:5"]}, "pending_op": "op1"},
                            {"$unset": {"pending_op": "", "pending": "", "closing": ""}})
    assert await db.vs.find_one({"_id": "1:5"}) == {"_id": "1:5", **state, "checkpoint": 61000}
    assert (await db.vs.delete_many({"_id": {"$in": ["1:6"]}, "pending_op": "other"})).deleted_count == 0
    assert (await db.vs.delete_many({"_id": {"$in": ["1:6"]}, "pending_op": "op1"})).deleted_count == 1
    assert [d["_id"] async for d in db.vs.find({"guild_id": 1})] == ["1:5"]
    assert await db.vs.count_documents({"pending_op": {"$exists": True}}) == 0




# ---- invites (repositories/invites.py, joins.py, invite_bonus.py, staff_codes.py, invite_backups.py)


async def _agg(collection, pipeline):
    return [doc async for doc in await collection.aggregate(pipeline)]


async def test_invite_upsert_set_on_insert_fixed_fields_and_set_current_ones(db):
    """Snapshot upsert: fixed facts once (datetimes), changing ones with $set (ints and strings)."""
    created = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    fixed = {"guild_id": 1, "code": "abc", "max_uses": 0, "created_at": created, "expires_at": None}
    for uses, seen in ((1, 1000), (3, 2000)):
        op = UpdateOne(
            {"_id": "1:abc"},
            {"$setOnInsert": fixed, "$set": {"uses": uses, "status": "live", "seen_ms": seen}},
            upsert=True,
        )
        await db.inv.bulk_write([op], ordered=False)
    doc = await db.inv.find_one({"_id": "1:abc"})
    assert (doc["uses"], doc["seen_ms"], doc["created_at"], doc["expires_at"]) == (3, 2000, created, None)


async def test_invite_created_max_keeps_higher_uses_and_set_on_insert_with_max(db):
    await db.inv.update_one(
        {"_id": "1:new"},
        {"$setOnInsert": {"code": "new"}, "$set": {"status": "live"}, "$max": {"uses": 0}},
        upsert=True,
    )
    assert (await db.inv.find_one({"_id": "1:new"}))["uses"] == 0
    await db.inv.update_one({"_id": "1:new"}, {"$set": {"uses": 2}})
    await db.inv.update_one(
        {"_id": "1:new"},
        {"$setOnInsert": {"code": "x"}, "$set": {"status": "live"}, "$max": {"uses": 0}},
        upsert=True,
    )
    assert await db.inv.find_one({"_id": "1:new"}) == {
        "_id": "1:new",
        "code": "new",
        "status": "live",
        "uses": 2,
    }


async def test_backfill_range_max_min_and_set_under_two_sequence_guards_commute(db):
    """repositories/activity.py FillRange/ChannelMark: `$max`/`$min` on missing top-level fields set
    them (insert and update alike); the live (`msg_seq`) and backfill (`fill_seq`) guards on one
    document do not refuse each other; applied in either order, the same document results."""
    def fill(seq, at, done=None):
        update = {"$set": {"kind": "fill", "lo": 5, "fill_seq": seq}, "$max": {"at": at}}
        if done:
            update["$max"]["done"] = 1
            update["$min"] = {"hi": 90}
        return UpdateOne({"$and": [{"_id": "f"}, {"$or": [{"fill_seq": {"$lt": seq}},
                                                           {"fill_seq": {"$exists": False}}]}]},
                         update, upsert=True)

    live_guard = {"$or": [{"msg_seq": {"$lt": 7}}, {"msg_seq": {"$exists": False}}]}
    live = UpdateOne({"$and": [{"_id": "f"}, live_guard]},
                     {"$set": {"kind": "fill", "lo": 5, "msg_seq": 7}, "$max": {"at": 5}, "$min": {"hi": 90}},
                     upsert=True)
    await db.a.bulk_write([fill(100, 40)], ordered=False)
    await db.a.bulk_write([live], ordered=False)
    await db.a.bulk_write([fill(101, 89, done=True)], ordered=False)
    await db.b.bulk_write([live], ordered=False)
    await db.b.bulk_write([fill(101, 89, done=True)], ordered=False)
    await db.b.bulk_write([UpdateOne({"_id": "f"}, {"$max": {"at": 40}})], ordered=False)
    expected = {"_id": "f", "kind": "fill", "lo": 5, "at": 89, "hi": 90, "done": 1, "fill_seq": 101,
                "msg_seq": 7}
    assert await db.a.find_one({"_id": "f"}) == expected
    assert await db.b.find_one({"_id": "f"}) == expected
    await db.a.update_one({"_id": "f"}, {"$min": {"hi": 95}})
    assert (await db.a.find_one({"_id": "f"}))["hi"] == 90
    assert [d["_id"] async for d in db.a.find({"kind": "fill"})] == ["f"]


async def test_update_many_marks_the_codes_not_in_a_list(db):
    await db.inv.insert_many(
        [{"_id": c, "guild_id": 1, "code": c, "status": "live"} for c in ("a", "b", "c")]
    )
    await db.inv.insert_one({"_id": "x", "guild_id": 2, "code": "x", "status": "live"})
    result = await db.inv.update_many(
        {"guild_id": 1, "status": "live", "code": {"$nin": ["a"]}},
        {"$set": {"status": "removed", "removed_ms": 5}},
    )
    assert result.modified_count == 2
    assert {d["_id"]: d["status"] async for d in db.inv.find()} == {
        "a": "live",
        "b": "removed",
        "c": "removed",
        "x": "live",
    }


async def test_update_one_with_a_status_filter_changes_once(db):
    await db.inv.insert_one({"_id": "k", "status": "live", "converted_by": 0})
    first = await db.inv.update_one({"_id": "k", "status": "live"}, {"$set": {"status": "removed"}})
    second = await db.inv.update_one({"_id": "k", "status": "live"}, {"$set": {"status": "removed"}})
    assert (first.modified_count, second.modified_count) == (1, 0)
    once = await db.inv.update_one(
        {"_id": "k", "converted_by": 0}, {"$set": {"converted_by": 7, "conversion_ms": 1}}
    )
    again = await db.inv.update_one({"_id": "k", "converted_by": 0}, {"$set": {"converted_by": 8}})
    assert (once.modified_count, again.modified_count) == (1, 0)
    assert (await db.inv.find_one({"_id": "k"}))["converted_by"] == 7


async def test_join_set_on_insert_upsert_keeps_the_first_document(db):
    joined = datetime(2026, 3, 10, 12, 0, 0, 123000, tzinfo=UTC)
    first = {"member_id": 5, "joined_at": joined, "joined_ms": 1, "candidates": ["abc"], "left_ms": None}
    await db.joins.update_one({"_id": "1:5:1"}, {"$setOnInsert": first}, upsert=True)
    await db.joins.update_one({"_id": "1:5:1"}, {"$setOnInsert": {**first, "member_id": 6}}, upsert=True)
    doc = await db.joins.find_one({"_id": "1:5:1"})
    assert (doc["member_id"], doc["joined_at"], doc["candidates"], doc["left_ms"]) == (
        5,
        joined,
        ["abc"],
        None,
    )


async def test_member_status_update_many_with_a_version_guard_in_and(db):
    """repositories/joins.py _set_member_status: equality fields and an `$or` of `$lt` / a missing
    field inside `$and`, on update_many: only the member's documents with an older (or no)
    version change; a replayed or older update changes nothing."""
    await db.joins.insert_many([
        {"_id": "a", "guild_id": 1, "member_id": 5, "member_status": "present", "status_ms": 10},
        {"_id": "b", "guild_id": 1, "member_id": 5, "member_status": "present"},
        {"_id": "c", "guild_id": 1, "member_id": 5, "member_status": "present", "status_ms": 30},
        {"_id": "d", "guild_id": 1, "member_id": 6, "member_status": "present", "status_ms": 1},
        {"_id": "e", "guild_id": 2, "member_id": 5, "member_status": "present", "status_ms": 1},
    ])

    def set_status(status, version):
        older = {"$or": [{"status_ms": {"$lt": version}}, {"status_ms": {"$exists": False}}]}
        return db.joins.update_many(
            {"$and": [{"guild_id": 1, "member_id": 5}, older]},
            {"$set": {"member_status": status, "status_ms": version}},
        )

    assert (await set_status("left", 21)).modified_count == 2
    assert (await set_status("present", 21)).modified_count == 0  # a replay
    assert (await set_status("present", 11)).modified_count == 0  # an older one
    docs = {d["_id"]: (d["member_status"], d["status_ms"]) async for d in db.joins.find({})}
    assert docs == {"a": ("left", 21), "b": ("left", 21), "c": ("present", 30), "d": ("present", 1),
                    "e": ("present", 1)}


async def test_join_count_aggregations_with_in_gt_and_int_ranges(db):
    docs = [
        {
            "_id": 1,
            "guild_id": 1,
            "credit_to": 101,
            "reset_id": "",
            "fake_reason": "",
            "member_status": "present",
            "joined_ms": 100,
            "code": "abc",
            "counted": "first",
            "source": "invite",
        },
        {
            "_id": 2,
            "guild_id": 1,
            "credit_to": 101,
            "reset_id": "",
            "fake_reason": "young_account",
            "member_status": "left",
            "joined_ms": 200,
            "code": "abc",
            "counted": "first",
            "source": "invite",
        },
        {
            "_id": 3,
            "guild_id": 1,
            "credit_to": 101,
            "reset_id": "",
            "fake_reason": "",
            "member_status": "left",
            "joined_ms": 300,
            "code": "abc",
            "counted": "first",
            "source": "downtime",
        },
        {
            "_id": 4,
            "guild_id": 1,
            "credit_to": 102,
            "reset_id": "ib-0123456789ab",
            "fake_reason": "",
            "member_status": "present",
            "joined_ms": 400,
            "code": "bobs",
            "counted": "first",
            "source": "invite",
        },
        {
            "_id": 5,
            "guild_id": 1,
            "credit_to": 0,
            "reset_id": "",
            "fake_reason": "",
            "member_status": "present",
            "joined_ms": 500,
            "code": None,
            "counted": "rejoin",
            "source": "unknown",
        },
        {
            "_id": 6,
            "guild_id": 2,
            "credit_to": 101,
            "reset_id": "",
            "fake_reason": "",
            "member_status": "present",
            "joined_ms": 600,
            "code": "abc",
            "counted": "first",
            "source": "invite",
        },
    ]
    await db.joins.insert_many(docs)

    async def count(match, key="credit_to"):
        rows = await _agg(db.joins, [{"$match": match}, {"$group": {"_id": f"${key}", "n": {"$sum": 1}}}])
        return {r["_id"]: r["n"] for r in rows}

    base = {"guild_id": 1, "credit_to": {"$gt": 0}, "reset_id": ""}
    assert await count(base) == {101: 3}
    assert await count({**base, "fake_reason": {"$in": ["young_account", "self_invite"]}}) == {101: 1}
    assert await count({**base, "fake_reason": "", "member_status": "left"}) == {101: 1}
    assert await count({**base, "joined_ms": {"$gte": 200}}) == {101: 2}
    assert await count({**base, "credit_to": 101}) == {101: 3}
    by_code = {
        "guild_id": 1,
        "code": {"$in": ["abc", "bobs"]},
        "counted": "first",
        "reset_id": "",
        "source": {"$in": ["invite", "vanity", "downtime"]},
    }
    assert await count(by_code, "code") == {"abc": 3}


async def test_find_sorted_by_int_descending_with_limit_and_filters(db):
    await db.joins.insert_many(
        [{"_id": i, "guild_id": 1, "member_id": 5, "joined_ms": i * 10, "stay": "open"} for i in range(1, 5)]
    )
    latest = [
        d["_id"]
        async for d in db.joins.find({"guild_id": 1, "member_id": 5}).sort([("joined_ms", -1)]).limit(2)
    ]
    assert latest == [4, 3]
    first = [
        d["_id"]
        async for d in db.joins.find({"guild_id": 1, "member_id": 5}).sort([("joined_ms", 1)]).limit(1)
    ]
    assert first == [1]
    result = await db.joins.update_many(
        {"guild_id": 1, "member_id": 5, "stay": "open"}, {"$set": {"stay": "closed", "left_ms": 99}}
    )
    assert result.modified_count == 4
    assert [d async for d in db.joins.find({"stay": "open"})] == []


async def test_update_many_by_id_in_list_and_scalar_filter(db):
    await db.joins.insert_many([{"_id": f"k{i}", "reset_id": ""} for i in range(3)])
    moved = await db.joins.update_many(
        {"_id": {"$in": ["k0", "k1"]}, "reset_id": ""}, {"$set": {"reset_id": "ib-0123456789ab"}}
    )
    again = await db.joins.update_many(
        {"_id": {"$in": ["k0", "k1"]}, "reset_id": ""}, {"$set": {"reset_id": "ib-0123456789ab"}}
    )
    assert (moved.modified_count, again.modified_count) == (2, 0)
    back = await db.joins.update_many(
        {"_id": {"$in": ["k0", "k1"]}, "reset_id": "ib-0123456789ab"}, {"$set": {"reset_id": ""}}
    )
    assert back.modified_count == 2


async def test_find_with_ne_zero_on_a_scalar_and_in_on_strings(db):
    await db.bonus.insert_many(
        [
            {"_id": "1:1", "guild_id": 1, "member_id": 1, "bonus": 0},
            {"_id": "1:2", "guild_id": 1, "member_id": 2, "bonus": -3},
            {"_id": "1:3", "guild_id": 1, "member_id": 3, "bonus": 4},
        ]
    )
    assert [
        d["member_id"] async for d in db.bonus.find({"guild_id": 1, "bonus": {"$ne": 0}}).sort("member_id", 1)
    ] == [2, 3]
    assert [d["_id"] async for d in db.bonus.find({"member_id": 3, "_id": {"$in": ["1:3"]}})] == ["1:3"]


async def test_ms_timestamps_set_on_existing_documents_read_back_as_ints(db):
    """Times that change are stored as epoch milliseconds (a $set datetime is not used)."""
    await db.state.update_one({"_id": 1}, {"$set": {"snapshot_ms": 1000, "stale": "no"}}, upsert=True)
    await db.state.update_one({"_id": 1}, {"$set": {"snapshot_ms": 2000, "stale": "yes"}}, upsert=True)
    assert await db.state.find_one({"_id": 1}) == {"_id": 1, "snapshot_ms": 2000, "stale": "yes"}


async def test_set_on_insert_of_a_subdocument_with_datetimes_lists_and_nulls(db):
    """A reset backup copies a whole join document into `doc`."""
    joined = datetime(2026, 3, 10, 12, 0, 0, 5000, tzinfo=UTC)
    copy = {"_id": "1:5:1", "joined_at": joined, "candidates": ["abc", "bobs"], "code": None, "credit_to": 7}
    op = UpdateOne({"_id": "b:join:1:5:1"}, {"$setOnInsert": {"kind": "join", "doc": copy}}, upsert=True)
    await db.backups.bulk_write([op], ordered=False)
    await db.backups.bulk_write([op], ordered=False)
    stored = await db.backups.find_one({"_id": "b:join:1:5:1"})
    assert stored["doc"] == copy


async def test_set_of_nulls_lists_and_strings_on_an_existing_document(db):
    """Settling a waiting join: attribution fields replaced with $set."""
    await db.joins.insert_one(
        {"_id": "k", "code": None, "candidates": [], "awaiting": "snapshot", "credit_to": 0}
    )
    await db.joins.update_one(
        {"_id": "k", "awaiting": "snapshot"},
        {
            "$set": {
                "code": "abc",
                "candidates": ["abc"],
                "awaiting": "",
                "credit_to": 7,
                "inviter_name": None,
            }
        },
    )
    assert await db.joins.find_one({"_id": "k"}) == {
        "_id": "k",
        "code": "abc",
        "candidates": ["abc"],
        "awaiting": "",
        "credit_to": 7,
        "inviter_name": None,
    }


# ---- legacy import (app/operations/legacy_import.py; repositories activity, invite_bonus, joins, invites)


async def test_import_guard_in_list_and_exists_on_a_scalar_field(db):
    await db.t.insert_many([
        {"_id": "t:1:1", "guild_id": 1, "import_op": "legacy-activity:1:1", "messages": 3},
        {"_id": "t:1:2", "guild_id": 1, "messages": 4},
        {"_id": "t:1:3", "guild_id": 1, "import_op": "other", "messages": 5},
    ])
    query = {"_id": {"$in": ["t:1:1", "t:1:2", "t:1:3"]}, "import_op": {"$in": ["legacy-activity:1:1", "x"]}}
    assert [d["_id"] async for d in db.t.find(query, {"_id": 1})] == ["t:1:1"]
    found = await db.t.find_one({"guild_id": 1, "import_op": {"$exists": True}, "_id": "t:1:2"})
    assert found is None
    assert await db.t.count_documents({"guild_id": 1, "import_op": {"$exists": True}}) == 2


async def test_ne_on_a_field_missing_from_some_documents_matches_them(db):
    await db.j.insert_many([
        {"_id": 1, "guild_id": 1, "member_id": 5, "joined_ms": 20},
        {"_id": 2, "guild_id": 1, "member_id": 5, "joined_ms": 10, "imported": "legacy"},
        {"_id": 3, "guild_id": 1, "member_id": 6, "joined_ms": 5, "imported": ""},
    ])
    query = {"guild_id": 1, "member_id": {"$in": [5, 6]}, "imported": {"$ne": "legacy"}}
    assert [d["_id"] async for d in db.j.find(query, {"member_id": 1}).sort("joined_ms", 1)] == [3, 1]


# ---- security: erase on request, member backups, user strings as values
# (app/operations/erase.py, app/operations/backups.py) ----


async def test_delete_many_in_an_unordered_bulk_by_guild_and_member_leaves_others(db):
    from pymongo import DeleteMany

    await db.c.insert_many([
        {"_id": "t:1:7", "guild_id": 1, "member_id": 7}, {"_id": "d:1:7:x", "guild_id": 1, "member_id": 7},
        {"_id": "t:1:8", "guild_id": 1, "member_id": 8}, {"_id": "t:2:7", "guild_id": 2, "member_id": 7},
    ])
    result = await db.c.bulk_write([DeleteMany({"guild_id": 1, "member_id": 7})], ordered=False)
    assert result.deleted_count == 2
    again = await db.c.bulk_write([DeleteMany({"guild_id": 1, "member_id": 7})], ordered=False)
    assert again.deleted_count == 0  # a replay deletes nothing more
    assert sorted([d["_id"] async for d in db.c.find({})]) == ["t:1:8", "t:2:7"]


async def test_tombstones_by_update_many_refuse_an_older_guarded_upsert(db):
    """The activity erase: `update_many` sets the counters to 0 and unsets the session, keeping the
    guard; a guarded upsert of an older sequence then hits the `_id` (duplicate key, nothing
    counted), a newer one applies; the `$or` of `$exists` / `$gt` tells tombstones from data."""
    from pymongo import UpdateMany

    await db.c.insert_many([
        {"_id": "t:1:7", "guild_id": 1, "member_id": 7, "messages": 3, "msg_seq": 5, "voice_open": {"c": 1}},
        {"_id": "t:1:8", "guild_id": 1, "member_id": 8, "messages": 1, "msg_seq": 5},
    ])
    emptied = {"$set": {"messages": 0, "erased": True}, "$unset": {"voice_open": "", "voice_last": ""}}
    for _ in range(2):  # a replay changes nothing
        await db.c.bulk_write([UpdateMany({"guild_id": 1, "member_id": 7}, emptied)], ordered=False)
    assert await db.c.find_one({"_id": "t:1:7"}) == {
        "_id": "t:1:7", "guild_id": 1, "member_id": 7, "messages": 0, "msg_seq": 5, "erased": True}
    holds_data = {"$or": [{"erased": {"$exists": False}}, {"voice_open": {"$exists": True}},
                          {"messages": {"$gt": 0}}]}
    assert [d["_id"] async for d in db.c.find({"guild_id": 1, **holds_data})] == ["t:1:8"]

    def guarded(seq):
        return UpdateOne({"$and": [{"_id": "t:1:7"}, {"$or": [{"msg_seq": {"$lt": seq}},
                                                              {"msg_seq": {"$exists": False}}]}]},
                         {"$inc": {"messages": 2}, "$set": {"msg_seq": seq}}, upsert=True)

    with pytest.raises(BulkWriteError) as late:
        await db.c.bulk_write([guarded(5)], ordered=False)
    assert late.value.details["writeErrors"][0]["code"] == 11000
    await db.c.bulk_write([guarded(6)], ordered=False)
    assert (await db.c.find_one({"_id": "t:1:7"}))["messages"] == 2
    assert [d["_id"] async for d in db.c.find({"guild_id": 1, **holds_data})] == ["t:1:7", "t:1:8"]


async def test_find_and_count_by_guild_and_a_64_bit_member_id(db):
    big = 2**63 - 1
    await db.c.insert_many([{"_id": 1, "guild_id": 1, "member_id": big},
                            {"_id": 2, "guild_id": 1, "member_id": 5}])
    assert await db.c.count_documents({"guild_id": 1, "member_id": big}) == 1
    assert [d["_id"] async for d in db.c.find({"guild_id": 1, "member_id": big})] == [1]


async def test_operator_shaped_strings_are_plain_values_in_an_equality_filter(db):
    await db.c.insert_many([{"_id": 1, "code": "abc"}, {"_id": 2, "code": '{"$gt": ""}'}])
    assert [d["_id"] async for d in db.c.find({"code": '{"$gt": ""}'})] == [2]
    assert [d["_id"] async for d in db.c.find({"code": "$where"})] == []
    assert await db.c.count_documents({"code": "a\x00b"}) == 0



# ---- invite resets (app/operations/invite_resets.py; repositories invite_bonus, invite_backups) ----


async def test_per_backup_field_guard_takes_once_and_gives_back_once(db):
    """The reset/restore bonus guard: one top-level field per backup (`reset_<backup id>`), absent ->
    "taken" -> "given". `$exists: false` lets the take through once, an equality on "taken" the
    give-back once; only on an existing document (no upsert), and other backups' fields and
    `last_op` are left alone."""
    await db.b.insert_many([{"_id": "1:7", "bonus": 4, "last_op": "cmd-1"}, {"_id": "1:9", "bonus": 5}])

    def take(key, backup_id, amount):
        field = f"reset_{backup_id}"
        return db.b.update_one({"_id": key, field: {"$exists": False}},
                               {"$inc": {"bonus": -amount}, "$set": {field: "taken"}})

    def give(key, backup_id, amount):
        field = f"reset_{backup_id}"
        return db.b.update_one({"_id": key, field: "taken"},
                               {"$inc": {"bonus": amount}, "$set": {field: "given"}})

    a, b = "ib-000000000001", "ib-000000000002"
    assert [(await take("1:7", a, 4)).modified_count for _ in range(2)] == [1, 0]
    assert (await take("1:7", b, 1)).modified_count == 1
    assert (await give("1:9", a, 4)).modified_count == 0  # a took nothing there
    assert [(await give("1:7", a, 4)).modified_count for _ in range(2)] == [1, 0]
    assert (await take("1:7", a, 4)).modified_count == 0  # given back: never taken again
    assert await db.b.find_one({"_id": "1:7"}) == {
        "_id": "1:7", "bonus": 3, "last_op": "cmd-1", f"reset_{a}": "given", f"reset_{b}": "taken"}
    assert (await db.b.find_one({"_id": "1:9"}))["bonus"] == 5
    missing = await db.b.update_one({"_id": "1:8", f"reset_{a}": {"$exists": False}}, {"$inc": {"bonus": 1}})
    assert missing.matched_count == 0
    assert await db.b.find_one({"_id": "1:8"}) is None


async def test_in_flight_fields_named_by_backup_id_set_by_upsert_and_unset(db):
    """The in-flight document: a top-level field per backup id, added by an upserting `$set` and
    removed by `$unset` (a repeat of either changes nothing)."""
    key = {"_id": "inflight:1"}
    for backup_id, ms in (("ib-000000000001", 10), ("ib-000000000002", 20), ("ib-000000000001", 10)):
        await db.k.update_one(key, {"$set": {"kind": "inflight", "guild_id": 1, backup_id: ms}}, upsert=True)
    assert await db.k.find_one(key) == {
        "_id": "inflight:1", "kind": "inflight", "guild_id": 1, "ib-000000000001": 10, "ib-000000000002": 20}
    for _ in range(2):
        await db.k.update_one(key, {"$unset": {"ib-000000000001": ""}})
    assert await db.k.find_one(key) == {"_id": "inflight:1", "kind": "inflight", "guild_id": 1,
                                        "ib-000000000002": 20}
    await db.k.update_one({"_id": "inflight:2"}, {"$unset": {"ib-000000000001": ""}})  # no upsert
    assert await db.k.count_documents({}) == 1


async def test_header_status_move_sets_the_counts_once(db):
    await db.k.insert_one(
        {"_id": "ib-1", "kind": "header", "status": "saving", "joins": 0, "bonus_members": 0})
    changes = {"status": "saved", "saved_ms": 5, "joins": 4, "bonus_members": 3}
    first = await db.k.update_one({"_id": "ib-1", "status": "saving"}, {"$set": changes})
    again = await db.k.update_one({"_id": "ib-1", "status": "saving"}, {"$set": {**changes, "joins": 9}})
    assert (first.modified_count, again.modified_count) == (1, 0)
    assert await db.k.find_one({"_id": "ib-1"}) == {"_id": "ib-1", "kind": "header", **changes}


async def test_find_unconverted_joins_with_in_on_two_fields_zero_equality_and_sort(db):
    """`joins.unconverted`: `$in` on strings (code, source), a scalar 0 and a string equality."""
    docs = [
        {"_id": "a", "guild_id": 1, "code": "bobs", "counted": "first", "converted_by": 0,
         "source": "downtime", "joined_ms": 20},
        {"_id": "b", "guild_id": 1, "code": "bobs", "counted": "first", "converted_by": 0,
         "source": "invite", "joined_ms": 10},
        {"_id": "c", "guild_id": 1, "code": "bobs", "counted": "first", "converted_by": 7,
         "source": "invite", "joined_ms": 5},
        {"_id": "d", "guild_id": 1, "code": None, "counted": "first", "converted_by": 0,
         "source": "unknown", "joined_ms": 1},
        {"_id": "e", "guild_id": 1, "code": "bobs", "counted": "rejoin", "converted_by": 0,
         "source": "invite", "joined_ms": 2},
    ]
    await db.joins.insert_many(docs)
    query = {"guild_id": 1, "code": {"$in": ["bobs", "zz"]}, "counted": "first", "converted_by": 0,
             "source": {"$in": ["invite", "vanity", "downtime"]}}
    assert [d["_id"] async for d in db.joins.find(query).sort([("joined_ms", 1)])] == ["b", "a"]


async def test_find_one_by_guild_and_an_int_at_or_after(db):
    """`joins.recorded_since`: `$gte` on an int field with a projection of `_id`."""
    await db.joins.insert_many([{"_id": "a", "guild_id": 1, "joined_ms": 100},
                                {"_id": "b", "guild_id": 2, "joined_ms": 500}])
    assert await db.joins.find_one({"guild_id": 1, "joined_ms": {"$gte": 100}}, {"_id": 1}) == {"_id": "a"}
    assert await db.joins.find_one({"guild_id": 1, "joined_ms": {"$gte": 101}}, {"_id": 1}) is None


# ---- issue 16: the voice session in the all-time document, the session directory -------------------------


async def test_guarded_total_upsert_sets_and_unsets_a_session_subdocument(db):
    """One guarded update credits the total, moves the session (`voice_open`, a subdocument set whole,
    never a dotted path) and records the day credits (`voice_last`, an array of subdocuments); a
    close unsets the subdocument in the same update; an older operation is refused."""
    def step(seq, open_, amount):
        update = {"$inc": {"messages": 0, "voice_s": amount},
                  "$set": {"kind": "total", "guild_id": 1, "member_id": 5, "seq": seq,
                           "voice_last": {"op": seq,
                                          "days": [{"day": "2026-03-10", "amounts": {"voice_s": amount}}]}}}
        if open_ is None:
            update["$unset"] = {"voice_open": ""}
        else:
            update["$set"]["voice_open"] = open_
        return db.c.update_one(_seq_guard("t:1:5", seq), update, upsert=True)

    await step(10, {"channel_id": 2**60, "checkpoint": 1000, "camera": 0}, 0)  # inserts
    await step(11, {"channel_id": 2**60, "checkpoint": 61000, "camera": 1}, 60)
    doc = await db.c.find_one({"_id": "t:1:5"})
    assert doc["voice_open"] == {"channel_id": 2**60, "checkpoint": 61000, "camera": 1}
    assert doc["voice_last"] == {"op": 11, "days": [{"day": "2026-03-10", "amounts": {"voice_s": 60}}]}
    with pytest.raises(DuplicateKeyError):
        await step(10, {"channel_id": 3, "checkpoint": 1000, "camera": 0}, 60)  # late, older
    await step(12, None, 30)
    doc = await db.c.find_one({"_id": "t:1:5"})
    assert "voice_open" not in doc and doc["voice_s"] == 90 and doc["seq"] == 12
    await db.c.update_one(_seq_guard("t:1:6", 13), {"$inc": {"voice_s": 0}, "$set": {"seq": 13},
                                                    "$unset": {"voice_open": ""}}, upsert=True)
    assert await db.c.find_one({"_id": "t:1:6"}) == {"_id": "t:1:6", "voice_s": 0, "seq": 13}


async def test_find_by_id_in_with_a_projection_of_subdocuments(db):
    await db.c.insert_many([{"_id": "t:1:5", "member_id": 5, "seq": 4, "voice_open": {"checkpoint": 7},
                             "voice_last": {"op": 4, "days": []}, "voice_s": 9},
                            {"_id": "t:1:6", "member_id": 6, "voice_s": 1}, {"_id": "x", "member_id": 7}])
    found = await db.c.find({"_id": {"$in": ["t:1:5", "t:1:6", "t:1:8"]}},
                            {"member_id": 1, "seq": 1, "voice_open": 1, "voice_last": 1}).to_list(None)
    assert sorted(found, key=lambda d: d["_id"]) == [
        {"_id": "t:1:5", "member_id": 5, "seq": 4, "voice_open": {"checkpoint": 7},
         "voice_last": {"op": 4, "days": []}},
        {"_id": "t:1:6", "member_id": 6}]


async def test_directory_entry_upsert_convert_and_delete_are_guarded_by_their_sequence(db):
    """repositories/voice_sessions.py: `entry_upsert` (guarded upsert), `entry_convert` (guarded update,
    no upsert, `$unset` of fields that may be missing), `entry_delete` (guarded `delete_one`)."""
    await db.c.insert_one({"_id": "1:5", "guild_id": 1, "member_id": 5, "checkpoint": 1000, "camera": 1,
                           "seq": 3})
    converted = await db.c.update_one(_seq_guard("1:5", 8), {"$set": {"seq": 8},
                                      "$unset": {"checkpoint": "", "camera": "", "pending": ""}})
    assert converted.modified_count == 1
    assert await db.c.find_one({"_id": "1:5"}) == {"_id": "1:5", "guild_id": 1, "member_id": 5, "seq": 8}
    late = await db.c.update_one(_seq_guard("1:5", 4), {"$set": {"seq": 4}, "$unset": {"checkpoint": ""}})
    assert late.matched_count == 0  # no upsert: an older operation does nothing, not even an error
    assert (await db.c.delete_one(_seq_guard("1:5", 8))).deleted_count == 0  # not older than itself
    assert (await db.c.delete_one(_seq_guard("1:5", 9))).deleted_count == 1
    await db.c.update_one(_seq_guard("1:5", 12), {"$set": {"guild_id": 1, "member_id": 5, "seq": 12}},
                          upsert=True)
    assert (await db.c.delete_one(_seq_guard("1:5", 9))).deleted_count == 0  # a late, older delete
    assert await db.c.find_one({"_id": "1:5"}) == {"_id": "1:5", "guild_id": 1, "member_id": 5, "seq": 12}


async def test_group_by_member_then_project_renaming_the_group_key_keeps_id(db):
    """The CSV export's period totals: `$group` by member with several `$sum`, then a `$project`
    that names `$_id` `member_id` and includes the sums; `_id` stays (an inclusion projection keeps
    it unless it is excluded)."""
    await _seed_activity(db)
    pipeline = [
        {"$match": {"guild_id": 1, "kind": "day", "day": {"$gte": "2026-03-01"}}},
        {"$group": {"_id": "$member_id", "messages": {"$sum": "$messages"}, "voice_s": {"$sum": "$voice_s"}}},
        {"$project": {"member_id": "$_id", "messages": 1, "voice_s": 1}},
    ]
    rows = sorted(await _agg(db.act, pipeline), key=lambda r: r["member_id"])
    assert rows == [{"_id": 5, "member_id": 5, "messages": 2, "voice_s": 20},
                    {"_id": 6, "member_id": 6, "messages": 3, "voice_s": 0},
                    {"_id": 7, "member_id": 7, "messages": 9, "voice_s": 0}]


async def test_find_sorted_on_two_keys_with_a_range_and_a_small_batch_size(db):
    """The CSV export's joins: `joined_ms >= since`, sorted by joined_ms then _id (ties in the same
    millisecond in a stable order), read through one cursor in batches."""
    await db.j.insert_many([
        {"_id": key, "guild_id": int(key[0]), "joined_ms": int(key.rsplit(":", 1)[1])}
        for key in ("1:9:300", "1:8:300", "1:7:100", "1:6:500", "2:5:400")
    ])
    cursor = db.j.find({"guild_id": 1, "joined_ms": {"$gte": 200}}, batch_size=2).sort(
        [("joined_ms", 1), ("_id", 1)])
    assert [doc["_id"] async for doc in cursor] == ["1:8:300", "1:9:300", "1:6:500"]


# ---- issue 20: /server stats ----------------------------------------------------------------------------


async def test_group_a_guilds_day_documents_by_day_between_two_day_strings(db):
    """`ActivityRepository.guild_days`: the guild's day documents from one day to another (both
    inclusive), summed per day with `$group` on `$day`; other guilds, totals and days outside left out."""
    await _seed_activity(db)
    await db.act.insert_many([
        _full({"_id": "d:1:6:2026-03-01", "kind": "day", "guild_id": 1, "member_id": 6, "day": "2026-03-01",
               "messages": 4, "voice_s": 30}),
        _full({"_id": "d:2:5:2026-03-01", "kind": "day", "guild_id": 2, "member_id": 5, "day": "2026-03-01",
               "messages": 50}),
    ])
    pipeline = [
        {"$match": {"guild_id": 1, "kind": "day", "day": {"$gte": "2026-03-01", "$lte": "2026-03-09"}}},
        {"$group": {"_id": "$day", "messages": {"$sum": "$messages"}, "voice_s": {"$sum": "$voice_s"}}},
    ]
    rows = sorted(await _agg(db.act, pipeline), key=lambda r: r["_id"])
    assert rows == [{"_id": "2026-03-01", "messages": 13, "voice_s": 30},
                    {"_id": "2026-03-09", "messages": 3, "voice_s": 0}]


async def test_channel_day_inc_under_two_sequence_guards_then_group_by_a_64_bit_channel_id(db):
    """repositories/activity.py `channel_updates` and `channel_totals`: a channel-day document `$inc`ed
    by the live writer (`msg_seq`) and the backfill (`fill_seq`), each refusing only its own replays
    and older operations; then the guild's documents of a period summed per `$channel_id` (64-bit
    ids come back as the same ints), other kinds, guilds and days left out."""
    big = 2**62 + 7

    def inc(key, channel, day, n, guard, seq):
        flt = {"$and": [{"_id": key}, {"$or": [{guard: {"$lt": seq}}, {guard: {"$exists": False}}]}]}
        ident = {"kind": "chday", "guild_id": 1, "channel_id": channel, "day": day, guard: seq}
        return UpdateOne(flt, {"$inc": {"messages": n}, "$set": ident}, upsert=True)

    key = f"c:1:{big}:2026-03-09"
    await db.act.bulk_write([inc(key, big, "2026-03-09", 3, "msg_seq", 10)], ordered=False)
    await db.act.bulk_write([inc(key, big, "2026-03-09", 5, "fill_seq", 4)], ordered=False)  # other guard
    for guard, seq in (("msg_seq", 10), ("msg_seq", 9), ("fill_seq", 4)):  # a replay, an older op
        with pytest.raises(BulkWriteError):
            await db.act.bulk_write([inc(key, big, "2026-03-09", 100, guard, seq)], ordered=False)
    await db.act.bulk_write([inc(key, big, "2026-03-09", 1, "msg_seq", 11)], ordered=False)
    doc = await db.act.find_one({"_id": key})
    assert (doc["messages"], doc["msg_seq"], doc["fill_seq"], doc["channel_id"]) == (9, 11, 4, big)
    await db.act.insert_many([
        {"_id": "c:1:20:2026-03-01", "kind": "chday", "guild_id": 1, "channel_id": 20, "day": "2026-03-01",
         "messages": 2},
        {"_id": "c:1:20:2026-03-10", "kind": "chday", "guild_id": 1, "channel_id": 20, "day": "2026-03-10",
         "messages": 40},
        {"_id": "c:2:20:2026-03-05", "kind": "chday", "guild_id": 2, "channel_id": 20, "day": "2026-03-05",
         "messages": 50},
        {"_id": "d:1:5:2026-03-05", "kind": "day", "guild_id": 1, "member_id": 5, "day": "2026-03-05",
         "messages": 60},
        {"_id": "c:1:20", "kind": "chan", "guild_id": 1, "channel_id": 20, "mark": 99},
    ])
    pipeline = [
        {"$match": {"guild_id": 1, "kind": "chday", "day": {"$gte": "2026-03-01", "$lte": "2026-03-09"}}},
        {"$group": {"_id": "$channel_id", "messages": {"$sum": "$messages"}}},
    ]
    rows = sorted(await _agg(db.act, pipeline), key=lambda r: r["_id"])
    assert rows == [{"_id": 20, "messages": 2}, {"_id": big, "messages": 9}]


async def test_find_by_guild_and_a_half_open_int_range_leaves_out_nulls_and_missing_fields(db):
    """`JoinRepository.moves`: joins by `joined_ms`, leaves by `left_ms` in `[start, end)`; a stay
    still open has `left_ms: null` (or, imported, none), which no numeric range matches."""
    await db.j.insert_many([
        {"_id": "1:5:100", "guild_id": 1, "member_id": 5, "joined_ms": 100, "left_ms": 250},
        {"_id": "1:6:200", "guild_id": 1, "member_id": 6, "joined_ms": 200, "left_ms": None},
        {"_id": "1:7:300", "guild_id": 1, "member_id": 7, "joined_ms": 300},
        {"_id": "1:8:50", "guild_id": 1, "member_id": 8, "joined_ms": 50, "left_ms": 300},
        {"_id": "2:5:150", "guild_id": 2, "member_id": 5, "joined_ms": 150, "left_ms": 150},
    ])
    joined = db.j.find({"guild_id": 1, "joined_ms": {"$gte": 100, "$lt": 300}}, {"joined_ms": 1})
    assert sorted([d["joined_ms"] async for d in joined]) == [100, 200]
    left = db.j.find({"guild_id": 1, "left_ms": {"$gte": 100, "$lt": 300}}, {"member_id": 1, "left_ms": 1})
    assert sorted([(d["member_id"], d["left_ms"]) async for d in left]) == [(5, 250)]

# ---- weekly goals (repositories/goals.py) and a member's days (ActivityRepository.daily) -------------
async def test_weekly_goal_guarded_set_keeps_other_targets_and_a_guarded_unset_refuses_older(db):
    """`/goal set` sets only the targets given under the sequence guard (upsert); `/goal clear` unsets
    them under the same guard without upserting, so an older clear matches nothing and an older set
    is a duplicate key; `/data erase` unsets the targets by guild and member, keeping the guard."""
    def set_(seq, **targets):
        fields = {"guild_id": 1, "member_id": 2**60, "seq": seq, **targets}
        return db.c.update_one(_seq_guard("1:5", seq), {"$set": fields}, upsert=True)

    def clear(seq):
        return db.c.update_one(_seq_guard("1:5", seq), {"$unset": {"messages": "", "voice_s": ""},
                                                        "$set": {"seq": seq}})

    await set_(10, messages=20)
    await set_(11, voice_s=18000)
    assert await db.c.find_one({"_id": "1:5"}) == {"_id": "1:5", "guild_id": 1, "member_id": 2**60,
                                                   "seq": 11, "messages": 20, "voice_s": 18000}
    assert (await clear(9)).matched_count == 0  # late and older: nothing changes
    with pytest.raises(DuplicateKeyError):
        await set_(9, messages=1)
    await clear(12)
    assert await db.c.find_one({"_id": "1:5"}) == {"_id": "1:5", "guild_id": 1, "member_id": 2**60, "seq": 12}
    await set_(13, messages=5)
    with_target = {"guild_id": 1, "member_id": 2**60,
                   "$or": [{"messages": {"$exists": True}}, {"voice_s": {"$exists": True}}]}
    assert [d["_id"] async for d in db.c.find(with_target)] == ["1:5"]
    await db.c.update_many({"guild_id": 1, "member_id": 2**60}, {"$unset": {"messages": "", "voice_s": ""}})
    assert await db.c.find_one(with_target) is None
    assert (await db.c.find_one({"_id": "1:5"}))["seq"] == 13


async def test_find_every_day_of_one_member_with_a_projection(db):
    await db.c.insert_many([
        {"_id": "d:1:5:2026-03-09", "kind": "day", "guild_id": 1, "member_id": 5, "day": "2026-03-09",
         "messages": 2, "voice_s": 60, "msg_seq": 7},
        {"_id": "d:1:5:2025-01-01", "kind": "day", "guild_id": 1, "member_id": 5, "day": "2025-01-01",
         "messages": 1, "voice_s": 0},
        {"_id": "t:1:5", "kind": "total", "guild_id": 1, "member_id": 5, "messages": 3},
        {"_id": "d:1:6:2026-03-09", "kind": "day", "guild_id": 1, "member_id": 6, "day": "2026-03-09"},
        {"_id": "d:2:5:2026-03-09", "kind": "day", "guild_id": 2, "member_id": 5, "day": "2026-03-09"},
    ])
    query = {"guild_id": 1, "member_id": 5, "kind": "day"}
    found = await db.c.find(query, {"messages": 1, "voice_s": 1, "day": 1}).to_list(None)
    assert sorted(found, key=lambda d: d["day"]) == [
        {"_id": "d:1:5:2025-01-01", "day": "2025-01-01", "messages": 1, "voice_s": 0},
        {"_id": "d:1:5:2026-03-09", "day": "2026-03-09", "messages": 2, "voice_s": 60}]


async def test_a_day_range_gte_lt_on_strings_with_a_projection(db):
    """`ActivityRepository.scan_days`: `$gte` and `$lt` on "YYYY-MM-DD" strings compare them as
    strings (the end day excluded), with an inclusion projection (`_id` comes too)."""
    await db.activity.insert_many([
        {"_id": f"d:1:5:{day}", "guild_id": 1, "member_id": 5, "kind": "day", "day": day, "messages": 1}
        for day in ("2025-12-31", "2026-01-01", "2026-02-28", "2026-03-01")])
    await db.activity.insert_one({"_id": "t:1:5", "guild_id": 1, "member_id": 5, "kind": "total",
                                  "messages": 4})
    query = {"guild_id": 1, "kind": "day", "day": {"$gte": "2026-01-01", "$lt": "2026-03-01"}}
    found = await db.activity.find(query, {"day": 1, "messages": 1}).sort("day", 1).to_list(None)
    assert found == [{"_id": "d:1:5:2026-01-01", "day": "2026-01-01", "messages": 1},
                     {"_id": "d:1:5:2026-02-28", "day": "2026-02-28", "messages": 1}]


async def test_an_intent_confirmed_or_dropped_only_while_pending(db):
    """`reward_log`: an intent (`pending: true`, `$setOnInsert` upsert), confirmed by `$unset` on
    `{_id, pending: true}` or deleted by `delete_one` on the same filter; a repeat of either, or
    one on a record erased meanwhile, changes nothing and inserts nothing."""
    doc = {"guild_id": 1, "member_id": 5, "action": "granted", "pending": True}
    for key in ("1:5:a", "1:5:a", "1:5:b"):
        await db.r.update_one({"_id": key}, {"$setOnInsert": doc}, upsert=True)
    assert sorted([d["_id"] async for d in db.r.find({"guild_id": 1, "pending": True})]) == ["1:5:a", "1:5:b"]
    for _ in range(2):
        await db.r.bulk_write([UpdateOne({"_id": "1:5:a", "pending": True}, {"$unset": {"pending": ""}}),
                               DeleteOne({"_id": "1:5:b", "pending": True})], ordered=False)
    await db.r.update_one({"_id": "1:5:c", "pending": True}, {"$unset": {"pending": ""}})  # erased: no upsert
    assert [d async for d in db.r.find({})] == [
        {"_id": "1:5:a", "guild_id": 1, "member_id": 5, "action": "granted"}]
    assert await db.r.count_documents({"guild_id": 1, "pending": True}) == 0
