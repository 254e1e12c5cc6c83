"""/data erase: a member's activity, voice session and joins are backed up to a file, then deleted;
leaderboards follow at once; members they brought in keep their records."""

from __future__ import annotations

import json
import re
from typing import Any

from app.operations.backups import BackupService
from repositories.activity import ActivityRepository
from tests.botharness import Harness

G, ADA, BOB, ZED, YU = 1, 101, 102, 201, 202
GENERAL, FOCUS = 10, 20
BACKUP_ID = re.compile(r"Backup `(\d{8}T\d{6}Z-[0-9a-f]{6})`")


def user(uid: int, name: str) -> dict[str, Any]:
    return {"id": uid, "name": name, "created": "2020-01-01T00:00:00Z"}


async def docs(h: Harness, collection: str, member: int) -> list[dict[str, Any]]:
    """The collection's documents of `member` (a fixture id: the emulator maps it to a snowflake)."""
    return [d async for d in h.db[collection].find({"member_id": h.emu.user_id(member)})]


async def counted(h: Harness, member: int) -> list[dict[str, Any]]:
    """The member's activity documents that hold data (an erase leaves tombstones: counters 0, the
    write guards kept, so a write still in flight from before it is refused)."""
    query = ActivityRepository(h.db, h.bot.retry_policy).member_filter(G, h.emu.user_id(member))
    return [d async for d in h.db.activity.find(query)]


async def zed_with_data(h: Harness) -> None:
    """zed joins through ada's code, talks, sits in voice, and brings yu in through his own code."""
    emu = h.emu
    emu.join(user(ZED, "zed"), via="abc")
    await h.settle()
    for _ in range(3):
        emu.message(ZED, GENERAL)
    emu.message(BOB, GENERAL)
    emu.voice(ZED, FOCUS)
    await h.settle()
    h.clock.advance(600)
    await h.bot.get_cog("Activity").flush_voice()
    emu.invite_create("zeds", ZED, guild=G)
    await h.settle()
    emu.join(user(YU, "yu"), via="zeds")
    await h.settle()


async def test_erase_backs_up_then_deletes_and_leaderboards_follow(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await zed_with_data(h)
    zed, bob, ada = (f"<@{emu.user_id(m)}>" for m in (ZED, BOB, ADA))
    top = await emu.command(BOB, "top", {"board": "messages"})
    assert top.embed["description"].splitlines() == [f"`#1` {zed} - 3 messages", f"`#2` {bob} - 1 message"]
    board = await emu.command(BOB, "invites leaderboard")
    assert f"{ada} - **1 invite** (1 join)" in board.text() and f"{zed} - **1 invite**" in board.text()
    assert len(await docs(h, "activity", ZED)) == 2  # total + today
    assert len(await docs(h, "voice_sessions", ZED)) == 1
    await emu.command(ZED, "goal set", {"messages": 50})

    rec = await emu.command(ADA, "data erase", {"member": ZED})
    assert rec.ephemeral, rec
    backup_id = BACKUP_ID.search(rec.content).group(1)
    assert rec.content.startswith(f"Erased the data of {zed}: ")
    for erased in ("2 activity records (messages and voice time)", "1 open voice session",
                   "1 join record (how they joined)", "1 weekly goal"):
        assert erased in rec.content
    assert "voice_sessions" not in rec.content

    assert await counted(h, ZED) == []
    assert await docs(h, "voice_sessions", ZED) == []
    assert await docs(h, "joins", ZED) == []
    assert (await h.bot.repos.goals.get(G, emu.user_id(ZED))).empty
    kept = await docs(h, "joins", YU)
    assert [(j["inviter_id"], j["code"]) for j in kept] == [(emu.user_id(ZED), "zeds")]  # yu's record stays
    # Voice tracking of zed was forgotten: a flush and his leaving write nothing back.
    await h.bot.get_cog("Activity").flush_voice()
    emu.voice(ZED, None)
    await h.settle()
    assert await counted(h, ZED) == []

    top = await emu.command(BOB, "top", {"board": "messages"})
    assert top.embed["description"].splitlines() == [f"`#1` {bob} - 1 message"]
    board = await emu.command(BOB, "invites leaderboard")
    assert ada not in board.text() and f"{zed} - **1 invite** (1 join)" in board.text()

    again = await emu.command(ADA, "data erase", {"member": ZED})  # the tombstones are not data
    assert "nothing erased, no backup written" in again.content, again

    # The backup holds exactly what was erased, and restoring it brings it back.
    path = h.settings.data_dir / "backups" / backup_id
    manifest = json.loads((path / "manifest.json").read_text())
    assert (manifest["guild_id"], manifest["member_id"]) == (G, emu.user_id(ZED))
    assert {k: v["count"] for k, v in manifest["collections"].items()} == {
        "activity": 2, "joins": 1, "voice_sessions": 1, "weekly_goals": 1, "reward_log": 0}
    await BackupService(h.db, path.parent).restore(path)
    assert len(await docs(h, "activity", ZED)) == 2
    assert len(await docs(h, "joins", ZED)) == 1
    assert len(await docs(h, "joins", YU)) == 1
    assert (await h.bot.repos.goals.get(G, emu.user_id(ZED))).messages == 50


async def test_member_backup_restore_with_drop_first_clears_only_that_member(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await zed_with_data(h)
    service = BackupService(h.db, h.settings.data_dir / "backups")
    result = await service.create(now=h.clock.now(), guild_id=G, member_id=emu.user_id(ZED),
                                  only={"activity"})
    await service.restore(result.path, drop_first=True)
    assert [d["messages"] for d in await docs(h, "activity", BOB)] == [1, 1]  # bob's were not cleared
    assert [d["messages"] for d in await docs(h, "activity", ZED)] == [3, 3]


async def test_erase_is_refused_without_manage_server_and_one_at_a_time(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await zed_with_data(h)
    refused = await emu.command(BOB, "data erase", {"member": ZED}, check_permissions=False)
    assert refused.ephemeral and "Manage Server" in refused.content
    assert len(await docs(h, "activity", ZED)) == 2
    with h.bot.guild_jobs.hold(G, "an invite reset"):
        busy = await emu.command(ADA, "data erase", {"member": ZED})
    assert busy.ephemeral and busy.content.startswith("An invite reset is running in this server")
    assert len(await docs(h, "activity", ZED)) == 2


async def test_erase_of_a_member_who_left_by_id(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await zed_with_data(h)
    emu.leave(ZED)
    await h.settle()
    rec = await emu.command(ADA, "data erase", {"member": ZED})
    assert BACKUP_ID.search(rec.content), rec
    assert await counted(h, ZED) == []
    assert await docs(h, "joins", ZED) == []
