"""`python -m scripts.import_legacy`: the seeds' JSON formats into the real repositories, exactly once.

Formats of the files (seed 000 invite cache, seed 002 invite counts and join history, seed 003 member
documents) are described in docs/import.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.operations.legacy_formats import read_files
from app.operations.legacy_import import ImportConflict, import_legacy
from app.operations.legacy_input import LegacyInputError
from app.wiring.clock import ManualClock
from app.wiring.container import Repositories
from repositories.activity import Counters, Credit
from repositories.invites import StoredInvite

ROOT = Path(__file__).resolve().parents[2]
G = 1
BIG = 900719925474099301  # above 2**53
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

INVITE_CACHE = """{
  "1": {
    "abc": {"uses": 4, "inviter_id": 101, "inviter_name": "ada", "code": "abc"},
    "old1": {"uses": 9, "inviter_id": "900719925474099301", "inviter_name": "big", "code": "old1"}
  },
  "2": {
    "zzz": {"uses": 1, "inviter_id": 5, "inviter_name": "x", "code": "zzz"}
  }
}
"""
INVITE_COUNTS = """{
  "1": {
    "101": {"regular": 5, "fake": 1, "left": 1, "bonus": 2},
    "102": {"regular": 1, "fake": 0, "left": 0, "bonus": 0}
  }
}
"""
JOIN_HISTORY = """{
  "1": [
    {"userId": "201", "username": "nia", "inviterId": "101", "inviterName": "ada", "inviteCode": "abc",
     "joinedAt": "2025-01-20T10:00:00.000Z", "leftAt": "2025-02-20T10:00:00.000Z"},
    {"userId": "202", "username": "oli", "inviterId": "101", "inviterName": "ada", "inviteCode": "abc",
     "joinedAt": "2025-01-21T10:00:00.000Z", "leftAt": "2025-02-01T00:00:00Z"},
    {"userId": "203", "username": "pat", "inviterId": "102", "inviterName": "bob", "inviteCode": "bobs",
     "joinedAt": 1737453600000, "leftAt": null},
    {"userId": "201", "username": "nia", "inviterId": "102", "inviterName": "bob", "inviteCode": "bobs",
     "joinedAt": "2025-03-01T09:00:00+00:00", "leftAt": null},
    {"userId": "204", "username": "vee", "inviterId": null, "inviterName": null, "inviteCode": "vanity",
     "joinedAt": "2025-03-02T09:00:00Z", "leftAt": null}
  ]
}
"""
USERS_ARRAY = """[
  {"_id": "101", "data": {"message_count": 120, "voice_cam_on_minutes": 30, "voice_cam_off_minutes": 90}},
  {"_id": "900719925474099301", "data": {"message_count": 3, "voice_cam_on_minutes": 0,
                                          "voice_cam_off_minutes": 1}},
  {"_id": "mongodb_test", "test": true}
]
"""
USERS_LINES = (
    '{"_id":"102","data":{"message_count":{"$numberInt":"7"},"voice_cam_on_minutes":{"$numberInt":"2"},'
    '"voice_cam_off_minutes":{"$numberLong":"15"}}}\n'
    '{"_id":"103","data":{"message_count":0}}\n'
)


def write_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"invite_cache_backup.json": INVITE_CACHE, "invites.json": INVITE_COUNTS,
             "join-history.json": JOIN_HISTORY, "users.json": USERS_ARRAY, "users-export.json": USERS_LINES}
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return [folder / name for name in files]


@pytest.fixture
def repos(db, policy) -> Repositories:
    return Repositories.create(db, policy)


async def run_import(repos: Repositories, paths: list[Path], dry_run: bool = False) -> list[str]:
    return await import_legacy(read_files(paths, G), repos, ManualClock(NOW).now(), dry_run)


async def dump(db: Any) -> dict[str, list[dict[str, Any]]]:
    names = sorted(await db.list_collection_names())
    return {name: [doc async for doc in db[name].find().sort("_id", 1)] for name in names}


FIRST_SUMMARY = [
    "invite snapshot: 2 code(s): 2 added, 0 already stored",
    "joins: 5: 5 added, 0 already stored",
    "invite counts: 2 member(s): 1 bonus adjustment(s) added, 0 already imported, "
    "1 matched by the join history",
    "activity totals: 4 member(s): 4 added, 0 already imported",
    "skipped: 1 guild entries not selected by --guild",
    "skipped: 1 old bot test documents",
    "done",
]


async def test_each_format_lands_in_the_repositories(repos: Repositories, tmp_path: Path) -> None:
    assert await run_import(repos, write_files(tmp_path)) == FIRST_SUMMARY

    # seed 000 invite cache -> the invite snapshot (live: the guild had no snapshot yet); guild 2 left out
    live = await repos.invites.live(G)
    assert {c: (i.uses, i.inviter_id, i.inviter_name) for c, i in live.items()} == {
        "abc": (4, 101, "ada"), "old1": (9, BIG, "big")}
    assert await repos.invites.live(2) == {}

    # seed 002 join history -> joins; invite counts -> bonus so that the totals equal the old bot's
    first = await repos.joins.first_for_member(G, 201)
    assert first is not None
    assert (first.source, first.code, first.inviter_id, first.counted, first.member_status) == (
        "invite", "abc", 101, "first", "present")
    latest = await repos.joins.latest_for_member(G, 201)
    assert latest is not None and (latest.counted, latest.inviter_id) == ("rejoin", 102)
    vanity = await repos.joins.first_for_member(G, 204)
    assert vanity is not None and (vanity.source, vanity.inviter_id) == ("vanity", None)
    ada = await repos.invite_stats.member_summary(G, 101)
    assert (ada.regular, ada.left, ada.fake, ada.bonus, ada.total) == (2, 1, 0, 4, 5)
    bob = await repos.invite_stats.member_summary(G, 102)
    assert (bob.regular, bob.left, bob.fake, bob.bonus, bob.total) == (1, 0, 0, 0, 1)
    assert await repos.joins.open_member_ids(G) == {201, 203, 204}

    # seed 003 member documents -> all-time totals in seconds, voice = camera on + off
    assert await repos.activity.member_counters(G, 101, None) == Counters(120, 7200, 1800, 5400, 0)
    assert await repos.activity.member_counters(G, BIG, None) == Counters(3, 60, 0, 60, 0)
    assert await repos.activity.member_counters(G, 102, None) == Counters(7, 1020, 120, 900, 0)
    assert await repos.activity.member_counters(G, 103, None) == Counters()
    assert await repos.activity.member_counters(G, 101, "2000-01-01") == Counters()  # no day documents
    assert await repos.activity.leaderboard(G, "messages", None, 0, 10) == [(101, 120), (102, 7), (BIG, 3)]


async def test_importing_twice_changes_nothing(repos: Repositories, db: Any, tmp_path: Path) -> None:
    paths = write_files(tmp_path)
    await run_import(repos, paths)
    once = await dump(db)
    again = await run_import(repos, paths)
    assert again == [
        "invite snapshot: 2 code(s): 0 added, 2 already stored",
        "joins: 5: 0 added, 5 already stored",
        "invite counts: 2 member(s): 0 bonus adjustment(s) added, 1 already imported, "
        "1 matched by the join history",
        "activity totals: 4 member(s): 0 added, 4 already imported",
        "skipped: 1 guild entries not selected by --guild",
        "skipped: 1 old bot test documents",
        "done",
    ]
    assert await dump(db) == once
    # the bot counting on in between does not make a repeated import count again
    await repos.invite_bonus.add(G, 101, 1, "cmd-1")
    await run_import(repos, paths)
    assert (await repos.invite_stats.member_summary(G, 101)).total == 6


async def test_dry_run_writes_nothing(repos: Repositories, db: Any, tmp_path: Path) -> None:
    summary = await run_import(repos, write_files(tmp_path), dry_run=True)
    assert summary == [line.replace(" added", " to add") for line in FIRST_SUMMARY[:-1]] + [
        "dry run: nothing written"]
    assert await db.list_collection_names() == []


async def test_an_existing_snapshot_is_never_overwritten(repos: Repositories, tmp_path: Path) -> None:
    fresh = StoredInvite("abc", 10, 0, 101, "ada", 10, NOW, None)
    await repos.invites.store(G, [fresh], NOW)
    await repos.invite_guilds.snapshot_stored(G, NOW, None, None)
    paths = write_files(tmp_path)
    summary = await import_legacy(read_files(paths[:1], G), repos, NOW, False)
    assert summary[0] == "invite snapshot: 2 code(s): 1 added, 1 already stored"
    live = await repos.invites.live(G)
    assert {c: i.uses for c, i in live.items()} == {"abc": 10}  # old1 is kept as removed history
    doc = await repos.invites.collection.find_one({"_id": "1:old1"})
    assert (doc["status"], doc["uses"], doc["inviter_id"], doc["imported"]) == ("removed", 9, BIG, "legacy")


async def test_counts_and_history_imported_apart_are_refused(repos: Repositories, db: Any,
                                                             tmp_path: Path) -> None:
    paths = write_files(tmp_path)
    history = [p for p in paths if p.name == "join-history.json"]
    counts = [p for p in paths if p.name == "invites.json"]
    await import_legacy(read_files(history, G), repos, NOW, False)
    before = await dump(db)
    with pytest.raises(ImportConflict, match="guild 1: its join history was imported before"):
        await import_legacy(read_files(counts, G), repos, NOW, False)
    assert await dump(db) == before


BAD_CASES = [
    ("users.json", '[\n  {"_id": "101", "data": {"message_count": 1}},\n  {"_id": "102" "data": {}}\n]\n',
     "users.json:3: invalid JSON: Expecting ',' delimiter"),
    ("users.json", '[\n  {"_id": "101",\n   "data": {"message_count": -4}}\n]\n',
     "users.json:2: data.message_count must be a whole number >= 0, got -4"),
    ("users.json", '{"_id": "101", "data": {}}\n{"_id": "abc", "data": {}}\n',
     "users.json:2: _id must be a Discord id (a positive 64-bit integer), got 'abc'"),
    ("invite_cache_backup.json", '{\n "1": {\n  "abc": {"uses": 1, "code": "abd"}\n }\n}\n',
     "invite_cache_backup.json:3: code 'abd' does not match its key 'abc'"),
    ("join-history.json", '{"1": [\n {"userId": "5", "joinedAt": "2025-01-01T10:00:00"}\n]}\n',
     "join-history.json:2: joinedAt must be an ISO 8601 time with a zone or epoch milliseconds, "
     "got '2025-01-01T10:00:00'"),
    ("invites.json", '{"1": {\n "5": {"regular": 1},\n "5": {"regular": 2}\n}}\n',
     "invites.json:1: key '5' appears twice"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_CASES)
def test_malformed_input_names_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LegacyInputError) as caught:
        read_files([path], G)
    assert str(caught.value) == message.replace(name, str(path), 1)


def test_the_same_member_twice_across_files_is_refused(tmp_path: Path) -> None:
    paths = write_files(tmp_path)
    (tmp_path / "more.json").write_text('[\n{"_id": "101", "data": {"message_count": 1}}\n]\n')
    with pytest.raises(LegacyInputError) as caught:
        read_files([*paths, tmp_path / "more.json"], G)
    assert str(caught.value) == f"{tmp_path / 'more.json'}:2: member (1, 101) is already given at " \
                                f"{tmp_path / 'users.json'}:2"


def test_member_documents_need_a_guild(tmp_path: Path) -> None:
    path = write_files(tmp_path)[3]
    with pytest.raises(LegacyInputError, match=r"users\.json:2: member documents carry no guild id"):
        read_files([path], None)


async def cli(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "DATA_DIR", "DISCORD_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.import_legacy", *args, cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_command_line_dry_run_import_and_a_refused_file(db: Any, mongo_uri: str,
                                                              tmp_path: Path) -> None:
    paths = [str(p) for p in write_files(tmp_path / "in")]
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": db.name}

    bad = tmp_path / "in" / "broken.json"
    bad.write_text(json.dumps([{"_id": "7", "data": {"message_count": 1}}]) + "\n{", encoding="utf-8")
    code, out, err = await cli("--guild", "1", *paths, str(bad), cwd=tmp_path, **env)
    assert (code, out) == (1, "")
    assert err == f"{bad}:2: invalid JSON: Expecting property name enclosed in double quotes\n"
    assert await db.list_collection_names() == []

    code, out, err = await cli("--dry-run", "--guild", "1", *paths, cwd=tmp_path, **env)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "dry run: nothing written"
    assert await db.list_collection_names() == []

    code, out, err = await cli("--guild", "1", *paths, cwd=tmp_path, **env)
    assert (code, err) == (0, "")
    assert out.splitlines() == FIRST_SUMMARY
    assert (await db.activity.find_one({"_id": "t:1:101"}))["voice_s"] == 7200


HUGE_CASES = [
    ("invites.json", '{"1": {\n "101": {"regular": 18446744073709551616, "fake": 0}\n}}\n',
     "invites.json:2: regular must be at most 9,007,199,254,740,991 (2^53 - 1), got 18446744073709551616"),
    ("invites.json", '{"1": {\n "101": {"regular": 9007199254740991, "bonus": 9007199254740991}\n}}\n',
     "invites.json:2: the invite total (regular - fake - left + bonus) must be at most 9,007,199,254,740,991 "
     "(2^53 - 1), got 18014398509481982"),
    ("users.json",
     '[\n {"_id": "101", "data": {"message_count": {"$numberLong": "9223372036854775807"}}}\n]\n',
     "users.json:2: data.message_count must be at most 9,007,199,254,740,991 (2^53 - 1), "
     "got 9223372036854775807"),
    ("users.json", '[\n {"_id": "101", "data": {"voice_cam_on_minutes": 150119987579017}}\n]\n',
     "users.json:2: voice time in seconds ((camera on + off minutes) * 60) must be at most "
     "9,007,199,254,740,991 (2^53 - 1), got 9007199254741020"),
    ("invite_cache_backup.json", '{"1": {\n "abc": {"uses": 1e300, "code": "abc"}\n}}\n',
     "invite_cache_backup.json:2: uses must be at most 9,007,199,254,740,991 (2^53 - 1), got 1e+300"),
]


@pytest.mark.parametrize(("name", "content", "message"), HUGE_CASES)
async def test_numbers_past_2_53_are_refused_before_anything_is_written(
        repos: Repositories, db: Any, tmp_path: Path, name: str, content: str, message: str) -> None:
    paths = [p for p in write_files(tmp_path / "in") if p.name != name]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LegacyInputError) as caught:
        await import_legacy(read_files([*paths, path], G), repos, NOW, False)
    assert str(caught.value) == message.replace(name, str(path), 1)
    assert await db.list_collection_names() == []  # not one file of the run was written


async def test_the_largest_accepted_numbers_import_and_leave_room_to_count(repos: Repositories,
                                                                          tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text('[{"_id": "101", "data": {"message_count": 9007199254740991}}]', encoding="utf-8")
    await import_legacy(read_files([path], G), repos, NOW, False)
    await repos.activity.add_messages([Credit(G, 101, "2026-03-10", {"messages": 1})], 1)
    assert (await repos.activity.member_counters(G, 101, None)).messages == 2**53
