"""/backup-data through the emulator: the admin gets the guild's backup, a member is refused, one at once."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from app.operations.backups import verify_backup

REPLY = re.compile(r"Backup `(\d{8}T\d{6}Z-[0-9a-f]{6})` written: ([\d,]+) files?, ([\d,]+) documents?\.")
FAILED_TEXT = "The backup failed; the bot's log says why. Nothing was kept; run `/backup-data` again."


async def seed(db: Any) -> None:
    await db.activity.insert_many([
        {"_id": "1:101:2026-03-10", "guild_id": 1, "user_id": 101, "messages": 3},
        {"_id": "1:102:2026-03-10", "guild_id": 1, "user_id": 102, "messages": 1},
        {"_id": "9:5:2026-03-10", "guild_id": 9, "user_id": 5, "messages": 8},
    ])
    await db.joins.insert_one({"_id": 2**62 + 1, "guild_id": 1, "member_id": 201})


async def test_backup_data_writes_this_guilds_backup(tracker: Any) -> None:
    await seed(tracker.db)
    rec = await tracker.emu.command(101, "backup-data")
    assert rec.ephemeral
    match = REPLY.search(rec.text())
    assert match, rec.text()
    backup_id = match.group(1)
    files, documents = (int(match.group(n).replace(",", "")) for n in (2, 3))

    manifest = verify_backup(tracker.settings.data_dir / "backups" / backup_id)
    assert manifest.guild_id == 1 and manifest.database == tracker.db.name
    stored = {
        name: await tracker.db[name].count_documents({"guild_id": 1})
        for name in await tracker.db.list_collection_names()
        if not name.startswith("_") and name != "lifecycle"
    }
    assert {e.name: e.count for e in manifest.collections} == stored
    # The backfill's channel watermarks and ranges are in the backup too: restored with the counts
    # they account for, they keep a later backfill from counting those messages again.
    watermarks = await tracker.db.activity.count_documents({"guild_id": 1, "kind": {"$in": ["chan", "fill"]}})
    assert stored["activity"] - watermarks == 2, "guild 9's document is not in guild 1's backup"
    assert stored["joins"] == 1
    assert (files, documents) == (len(stored), sum(stored.values()))


async def test_backup_data_refuses_a_member_without_manage_server(tracker: Any) -> None:
    with pytest.raises(PermissionError):  # the client hides it: default permission Manage Server
        await tracker.emu.command(102, "backup-data")
    # A server override can re-grant the command: the bot checks again itself.
    rec = await tracker.emu.command(102, "backup-data", check_permissions=False)
    assert rec.ephemeral
    assert rec.text() == "You need the **Manage Server** permission to use `/backup-data`."
    assert rec.callback is not None and rec.callback["data"]["allowed_mentions"] == {"parse": []}
    assert not (tracker.settings.data_dir / "backups").exists()


async def test_one_backup_per_guild_at_a_time(tracker: Any) -> None:
    await seed(tracker.db)
    cog = tracker.bot.get_cog("Backup")
    entered, release = asyncio.Event(), asyncio.Event()
    create = cog.service.create

    async def held_create(**kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await create(**kwargs)

    cog.service.create = held_create
    first = asyncio.create_task(tracker.emu.command(101, "backup-data", timeout=30))
    await asyncio.wait_for(entered.wait(), 10)
    assert cog._running == {1}
    second = await tracker.emu.command(101, "backup-data")
    assert second.text() == ("A backup of this server is already running; run `/backup-data` again when it "
                             "is done.")
    release.set()
    assert REPLY.search((await first).text())
    third = await tracker.emu.command(101, "backup-data")
    assert REPLY.search(third.text()), "the lock is released after the backup"
    assert len(list((tracker.settings.data_dir / "backups").iterdir())) == 2


async def test_a_failed_backup_says_so_and_keeps_nothing(tracker: Any, caplog: Any) -> None:
    tracker.settings.data_dir.mkdir(parents=True, exist_ok=True)
    (tracker.settings.data_dir / "backups").write_text("a file where the backups folder should be")
    rec = await tracker.emu.command(101, "backup-data")
    assert rec.ephemeral
    assert rec.text() == FAILED_TEXT
    assert any("backup of guild 1 failed" in r.getMessage() for r in caplog.records)
    again = await tracker.emu.command(101, "backup-data")
    assert "failed" in again.text(), "the guild's lock was released after the failure"
