"""Invite tracking end to end: the real bot against the Discord emulator and the test database.

The fixture members joined long before any snapshot (`joined` 2025-01-01), so after a restart
only the members a test lets join while the bot is down count as downtime joiners.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.botharness import GUILD

GID = 1


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    spec = copy.deepcopy(GUILD)
    for member in spec["members"]:
        member["joined"] = "2025-01-01T00:00:00Z"
    return spec


def user(uid: int, name: str, created: str = "2024-01-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"id": uid, "name": name, "created": created, **extra}


async def joins_of(harness: Any, alias: int) -> list[dict[str, Any]]:
    member_id = harness.emu.user_id(alias)
    cursor = harness.db.joins.find({"guild_id": GID, "member_id": member_id}).sort("joined_ms", 1)
    return [doc async for doc in cursor]


async def last_join(harness: Any, alias: int) -> dict[str, Any]:
    docs = await joins_of(harness, alias)
    assert docs, f"no join recorded for {alias}"
    return docs[-1]


def attribution(doc: dict[str, Any]) -> tuple[Any, ...]:
    return doc["source"], doc["code"], doc["inviter_id"], sorted(doc["candidates"])


async def reset_everyone(emu: Any, admin: int) -> Any:
    """`/invites-admin reset` without a member asks first; the admin confirms: the reset's answer."""
    question = await emu.command(admin, "invites-admin reset")
    assert question.ephemeral and question.custom_ids == ["invites:reset:confirm", "invites:reset:cancel"]
    return await emu.click(question, "invites:reset:confirm", admin)


async def summary(harness: Any, alias: int) -> tuple[int, int, int, int, int]:
    s = await harness.bot.repos.invite_stats.member_summary(GID, harness.emu.user_id(alias))
    return s.regular, s.left, s.fake, s.bonus, s.total


# ---- attribution on join ----------


async def test_two_joins_through_two_codes_go_to_their_inviters(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    since = len(emu.requests)
    emu.join(user(201, "dan"), via="abc")
    # The second join happens right after the bot read the invite list for the first one, while
    # the first is still being processed: it must wait its turn and diff against the new snapshot.
    await emu.wait_for_request("GET", r"/guilds/1/invites", since=since)
    emu.join(user(202, "eve"), via="bobs")
    await tracker.settle()
    assert attribution(await last_join(tracker, 201)) == ("invite", "abc", uid(101), ["abc"])
    assert attribution(await last_join(tracker, 202)) == ("invite", "bobs", uid(102), ["bobs"])
    stored = {d["code"]: d["uses"] async for d in tracker.db.invites.find({"guild_id": GID})}
    assert stored == {"abc": 1, "bobs": 1}


async def test_two_queued_joins_through_one_code_are_attributed_together(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.join(user(201, "dan"), via="abc")
    emu.join(user(202, "eve"), via="abc")
    await tracker.settle()
    for alias in (201, 202):
        assert attribution(await last_join(tracker, alias)) == ("invite", "abc", uid(101), ["abc"])


async def test_vanity_join(tracker):
    tracker.emu.join(user(201, "dan"), via="vanity")
    await tracker.settle()
    doc = await last_join(tracker, 201)
    assert attribution(doc) == ("vanity", "study", None, ["(vanity)"])
    state = await tracker.db.invite_guilds.find_one({"_id": GID})
    assert (state["vanity_code"], state["vanity_uses"]) == ("study", 1)


async def test_used_up_max_uses_invite_is_attributed_and_then_marked_removed(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.invite_create("once", 103, max_uses=1)
    await tracker.settle()
    emu.join(user(201, "dan"), via="once")  # Discord deletes the invite: INVITE_DELETE follows
    await tracker.settle()
    assert "once" not in emu.guild(GID).invites
    assert attribution(await last_join(tracker, 201)) == ("invite", "once", uid(103), ["once"])
    stored = await tracker.db.invites.find_one({"_id": f"{GID}:once"})
    assert stored["status"] == "removed" and stored["max_uses"] == 1


async def test_joins_whose_uses_show_up_in_one_fetch_through_two_codes_are_never_guessed(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    emu.join(user(202, "eve"), via="bobs")  # both uses are visible before the bot reads the list
    await tracker.settle()
    for alias in (201, 202):  # one use each on two codes: either could be either, never "unknown"
        assert attribution(await last_join(tracker, alias)) == ("ambiguous", None, None, ["abc", "bobs"])
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    assert await summary(tracker, 102) == (0, 0, 0, 0, 0)
    rec = await emu.command(101, "invites who", {"member": 201})
    assert "Candidate codes\nabc, bobs" in rec.text() and "ambiguous" in rec.text()


async def test_snapshot_follows_invite_create_and_delete_events(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.invite_create("fresh", 103, max_uses=10, channel=11)
    await tracker.settle()
    doc = await tracker.db.invites.find_one({"_id": f"{GID}:fresh"})
    assert (doc["uses"], doc["max_uses"], doc["inviter_id"], doc["inviter_name"], doc["channel_id"]) == (
        0,
        10,
        uid(103),
        "cy",
        11,
    )
    assert doc["status"] == "live" and doc["created_at"] is not None
    emu.join(user(201, "dan"), via="fresh")  # a fresh invite is attributed, not "unknown"
    await tracker.settle()
    assert attribution(await last_join(tracker, 201)) == ("invite", "fresh", uid(103), ["fresh"])
    emu.invite_delete("fresh")
    await tracker.settle()
    doc = await tracker.db.invites.find_one({"_id": f"{GID}:fresh"})
    assert (doc["status"], doc["uses"]) == ("removed", 1)


async def test_debug_shows_snapshot_live_vs_stored_and_staff_codes(tracker):
    emu = tracker.emu
    await emu.command(101, "invites-admin staff add", {"member": 103, "code": "nosuch"})
    emu.world.add_invite(emu.guild(GID), code="quiet", inviter=102)  # no INVITE_CREATE reached the bot
    rec = await emu.command(101, "invites-admin debug")
    text = rec.text()
    assert rec.ephemeral
    assert rec.embed["description"] == (
        "**Needs attention:** 1 code differs from Discord: `/invites-admin refresh` stores them again "
        "(and 1 more below).")
    assert re.search(r"Snapshot\n2 invites, stored <t:\d+:R>", text)
    assert "3 invites on Discord, 2 stored\nonly on Discord: quiet" in text
    assert f"`nosuch` <@{emu.user_id(103)}> (not in the snapshot)" in text
    assert "Missing bot permissions\nnone" in text
    assert "Vanity URL\n`study`, 0 uses" in text


async def test_an_expired_unused_limited_invite_is_no_candidate(tracker):
    """Issue 14, failure 2: a max_uses=1 invite that expires unused leaves the live list (no
    INVITE_DELETE for an expiry); it stood at max_uses - 1, but it was not used up."""
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.invite_create("brief", 103, max_uses=1, max_age=1)
    await tracker.settle()
    await asyncio.sleep(1.1)
    tracker.clock.set(datetime.now(UTC))
    assert "brief" not in [inv.code for inv in emu.guild(GID).live_invites()]
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    assert attribution(await last_join(tracker, 201)) == ("invite", "abc", uid(101), ["abc"])


async def test_a_failed_vanity_request_keeps_the_invite_list(tracker):
    """Issue 14, failure 3: the vanity request fails (404) but the invite list was read: the join
    is matched with it (the vanity URL no candidate this time, its stored count unchanged)."""
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.fail("GET", r"/guilds/1/vanity-url", status=404, times=1)
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    dan = await last_join(tracker, 201)
    assert attribution(dan) == ("invite", "abc", uid(101), ["abc"]) and dan["awaiting"] == ""
    state = await tracker.db.invite_guilds.find_one({"_id": GID})
    assert (state["vanity_code"], state["vanity_uses"], state["stale"]) == ("study", 0, "no")
    emu.join(user(202, "eve"), via="vanity")  # the count before is still known: dan used abc
    await tracker.settle()
    assert attribution(await last_join(tracker, 202)) == ("vanity", "study", None, ["(vanity)"])


async def test_join_without_any_use_increase_is_unknown(tracker):
    tracker.emu.join(user(201, "dan"), via=None)
    await tracker.settle()
    assert attribution(await last_join(tracker, 201)) == ("unknown", None, None, [])


async def test_revoked_invite_is_no_candidate(tracker):
    emu = tracker.emu
    emu.invite_create("gone", 103, max_uses=5)
    await tracker.settle()
    emu.invite_delete("gone")
    emu.join(user(201, "dan"), via=None)
    await tracker.settle()
    assert attribution(await last_join(tracker, 201)) == ("unknown", None, None, [])


# ---- start order ----------


async def test_join_during_startup_is_queued_and_attributed_after_the_snapshot_loads(make_tracker):
    """A join whose event arrives before the guild is ready waits for the startup sync, which
    attributes it together with a join that happened while the bot was down (both via `abc`: two
    uses, two joiners). Handled on arrival instead, it would see two uses for one joiner
    (ambiguous) and leave the downtime joiner without a use (unknown)."""
    harness = await make_tracker()
    emu, uid = harness.emu, harness.emu.user_id
    await harness.stop()
    emu.join(user(201, "dan"), via="abc")  # while the bot is down
    ready_before = emu.gateway.ready_count
    # The new bot's first invite fetch fails once (discord.py waits and retries): startup is slow.
    emu.fail("GET", r"/guilds/1/invites", status=500, times=1)
    starting = asyncio.create_task(harness.start())
    await emu.wait_ready(count=ready_before + 1)
    emu.join(user(202, "eve"), via="abc")  # GUILD_MEMBER_ADD before the guild is available
    await starting
    await harness.settle()
    assert attribution(await last_join(harness, 201)) == ("downtime", "abc", uid(101), ["abc"])
    eve = await last_join(harness, 202)
    assert attribution(eve) == ("invite", "abc", uid(101), ["abc"])
    assert eve["reason"] == ""
    assert len(await joins_of(harness, 202)) == 1
    assert await summary(harness, 101) == (2, 0, 0, 0, 2)


async def test_a_guild_the_bot_is_added_to_gets_its_own_snapshot_and_attribution(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.add_guild(
        {
            "id": 2,
            "name": "Other",
            "channels": [{"id": 40, "type": "text", "name": "hall"}],
            "members": [{"id": 111, "name": "zed", "created": "2020-01-01T00:00:00Z", "admin": True}],
            "invites": [{"code": "zz", "inviter": 111, "uses": 4, "max_uses": 0}],
        }
    )
    await tracker.settle()
    assert (await tracker.db.invites.find_one({"_id": "2:zz"}))["uses"] == 4
    emu.join(user(201, "dan"), via="zz", guild=2)
    emu.join(user(202, "eve"), via="abc", guild=GID)
    await tracker.settle()
    dan = await tracker.db.joins.find_one({"guild_id": 2, "member_id": uid(201)})
    assert attribution(dan) == ("invite", "zz", uid(111), ["zz"])
    assert attribution(await last_join(tracker, 202)) == ("invite", "abc", uid(101), ["abc"])


# ---- downtime reconciliation ----------


async def test_join_during_downtime_is_attributed_when_unambiguous(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id

    async def while_down() -> None:
        emu.join(user(201, "dan"), via="abc")
        emu.join(user(202, "eve"), via="abc")

    await tracker.restart(crash=True, between=while_down)
    for alias in (201, 202):
        assert attribution(await last_join(tracker, alias)) == ("downtime", "abc", uid(101), ["abc"])
    assert await summary(tracker, 101) == (2, 0, 0, 0, 2)
    stored = await tracker.db.invites.find_one({"_id": f"{GID}:abc"})
    assert stored["uses"] == 2


async def test_downtime_vanity_join_is_attributed(tracker):
    async def while_down() -> None:
        tracker.emu.join(user(201, "dan"), via="vanity")

    await tracker.restart(crash=True, between=while_down)
    assert attribution(await last_join(tracker, 201)) == ("downtime", "study", None, ["(vanity)"])


async def test_downtime_joins_through_different_codes_are_marked_ambiguous(tracker):
    emu = tracker.emu

    async def while_down() -> None:
        emu.join(user(201, "dan"), via="abc")
        emu.join(user(202, "eve"), via="bobs")

    await tracker.restart(crash=True, between=while_down)
    for alias in (201, 202):
        doc = await last_join(tracker, alias)
        assert attribution(doc) == ("ambiguous", None, None, ["abc", "bobs"])
        assert doc["reason"] == "joined_while_offline"
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    assert await summary(tracker, 102) == (0, 0, 0, 0, 0)


async def test_downtime_join_without_a_use_is_unknown_and_leave_during_downtime_is_seen(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()

    async def while_down() -> None:
        emu.leave(201)
        emu.join(user(202, "eve"), via=None)

    await tracker.restart(crash=True, between=while_down)
    assert attribution(await last_join(tracker, 202)) == ("unknown", None, None, [])
    dan = await last_join(tracker, 201)
    assert (dan["stay"], dan["member_status"]) == ("closed", "left")
    assert await summary(tracker, 101) == (1, 1, 0, 0, 0)


async def test_a_restart_while_the_member_list_is_still_loading_loses_no_downtime_join(tracker):
    """Issue 14, failure 5: discord.py fires guild_available when its member request times out,
    with part of the member list (here only the bot). The downtime joiner is not in it: the
    tracker waits for the whole list (the cog resyncs once discord.py's request is answered),
    and a join while it loads waits too; both are then attributed together."""
    emu, uid = tracker.emu, tracker.emu.user_id

    async def while_down() -> None:
        emu.join(user(201, "dan"), via="abc")
        emu.hold_member_list(GID)

    await tracker.restart(crash=True, between=while_down)
    guild = tracker.bot.get_guild(GID)
    assert guild is not None and not guild.chunked
    emu.join(user(202, "eve"), via="abc")
    await tracker.settle()
    assert await tracker.db.joins.count_documents({}) == 0
    loading = tracker.bot.get_cog("Invites").access.loading[GID]  # waiting for discord.py's request
    emu.hold_member_list(GID, held=False)
    await asyncio.wait_for(loading, 10)  # the list is whole: the cog asked for a sync
    await tracker.settle()
    assert attribution(await last_join(tracker, 201)) == ("downtime", "abc", uid(101), ["abc"])
    assert attribution(await last_join(tracker, 202)) == ("invite", "abc", uid(101), ["abc"])
    assert await summary(tracker, 101) == (2, 0, 0, 0, 2)


async def test_a_member_who_left_during_a_guild_outage_is_recorded_as_left(tracker):
    """Found with the fault campaign's guild outages: discord.py keeps its cached members when the
    guild comes back (GUILD_CREATE only adds), so a member who left during the outage stayed
    present and their leave was never recorded: their inviter kept the join."""
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    emu.guild_unavailable(GID)
    await tracker.settle()
    emu.leave(201, guild=GID)  # Discord sends nothing for a guild in an outage
    emu.guild_available(GID)
    await tracker.settle()
    assert tracker.bot.get_guild(GID).get_member(emu.user_id(201)) is None
    dan = await last_join(tracker, 201)
    assert (dan["stay"], dan["member_status"]) == ("closed", "left")
    assert await summary(tracker, 101) == (1, 1, 0, 0, 0)


async def test_joins_seen_live_are_not_reconciled_again_after_a_restart(tracker):
    tracker.emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    await tracker.restart(crash=True)
    docs = await joins_of(tracker, 201)
    assert [d["source"] for d in docs] == ["invite"]
    assert await tracker.db.joins.count_documents({}) == 1


# ---- leaves, rejoins, fakes, bonus ----------


async def test_leave_rejoin_fake_and_bonus_arithmetic(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    young = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    emu.join(user(201, "dan"), via="abc")
    emu.join(user(202, "eve", created=young), via="abc")  # fake: account 1 day old (< 3)
    emu.join(user(203, "fay"), via="abc")
    await tracker.settle()
    assert await summary(tracker, 101) == (3, 0, 1, 0, 2)

    emu.leave(203)
    await tracker.settle()
    assert await summary(tracker, 101) == (3, 1, 1, 0, 1)

    emu.join(203, via="bobs")  # a rejoin counts once, for the original inviter
    await tracker.settle()
    assert await summary(tracker, 101) == (3, 0, 1, 0, 2)
    assert await summary(tracker, 102) == (0, 0, 0, 0, 0)
    fay = await joins_of(tracker, 203)
    assert [(d["counted"], d["credit_to"], d["code"]) for d in fay] == [
        ("first", uid(101), "abc"),
        ("rejoin", 0, "bobs"),
    ]

    emu.leave(202)  # a fake who leaves is subtracted once
    await tracker.settle()
    assert await summary(tracker, 101) == (3, 0, 1, 0, 2)

    rec = await emu.command(101, "invites-admin bonus", {"member": 101, "amount": 5})
    assert rec.ephemeral
    rec = await emu.command(101, "invites-admin bonus", {"member": 101, "amount": -2})
    assert await summary(tracker, 101) == (3, 0, 1, 3, 5)
    assert rec.content == (f"-2 bonus invites for <@{emu.user_id(101)}>: now **5 invites** (3 joins, 1 fake, "
                           "+3 bonus invites).")

    rec = await emu.command(102, "invites show", {"member": 101})
    text = rec.text()
    ada = f"<@{emu.user_id(101)}>"
    assert rec.embed["description"] == f"{ada}: **5 invites** (3 joins, 1 fake, +3 bonus invites)"
    assert f"<@{emu.user_id(201)}> joined <t:" in text and f"<@{emu.user_id(203)}> joined <t:" in text
    assert (f"<@{emu.user_id(202)}> (eve, left) joined <t:" in text
            and "fake: account 1 day old (threshold 3 days)" in text)


async def test_self_invite_is_fake(tracker):
    emu = tracker.emu
    sam = user(205, "sam")
    emu.invite_create("samsown", sam)
    await tracker.settle()
    emu.join(sam, via="samsown")
    await tracker.settle()
    doc = await last_join(tracker, 205)
    assert (doc["source"], doc["fake_reason"]) == ("invite", "self_invite")
    assert await summary(tracker, 205) == (1, 0, 1, 0, 0)


async def test_fake_threshold_comes_from_guild_settings(tracker):
    emu = tracker.emu
    await tracker.bot.repos.guild_settings.set_fields(GID, fake_account_days=30)
    ten_days = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    emu.join(user(201, "dan", created=ten_days), via="abc")
    await tracker.settle()
    assert (await last_join(tracker, 201))["fake_reason"] == "young_account"


# ---- staff codes and conversions ----------


async def test_staff_code_added_just_before_a_restart_is_there_after_it(tracker):
    """Seed 001: a staff invite added minutes before a redeploy vanished. Here it is in MongoDB
    the moment the command answers, and nothing older can be restored over it."""
    emu = tracker.emu
    rec = await emu.command(101, "invites-admin staff add", {"member": 102, "code": "bobs"})
    assert rec.ephemeral and "bobs" in rec.content
    await tracker.restart(crash=True)
    rec = await emu.command(101, "invites-admin staff list")
    assert f"<@{emu.user_id(102)}>: code `bobs`, 0 invites, 0 conversions (rate —)" in rec.text()
    rec = await emu.command(101, "invites-admin debug")
    assert f"`bobs` <@{emu.user_id(102)}>" in rec.text()


async def test_staff_conversion_counts_once(tracker):
    emu = tracker.emu
    await tracker.bot.repos.guild_settings.set_fields(GID, conversion_role=50)
    await emu.command(101, "invites-admin staff add", {"member": 102, "code": "https://discord.gg/bobs"})
    emu.join(user(201, "dan"), via="bobs")
    await tracker.settle()
    emu.join(user(202, "eve"), via="abc")
    await tracker.settle()
    emu.role_add(201, 50)
    emu.role_add(202, 50)  # not through a staff code: no conversion
    await tracker.settle()
    emu.role_remove(201, 50)
    emu.role_add(201, 50)
    await tracker.settle()
    rec = await emu.command(101, "invites-admin staff list")
    assert "code `bobs`, 1 invite, 1 conversion (rate 100%)" in rec.text()
    doc = await last_join(tracker, 201)
    assert doc["converted_by"] == emu.user_id(102)


async def test_staff_remove_and_code_already_taken(tracker):
    emu = tracker.emu
    await emu.command(101, "invites-admin staff add", {"member": 102, "code": "bobs"})
    rec = await emu.command(101, "invites-admin staff add", {"member": 103, "code": "bobs"})
    assert rec.content == (f"`bobs` already belongs to <@{emu.user_id(102)}>; remove it there first with "
                           "`/invites-admin staff remove`.")
    rec = await emu.command(101, "invites-admin staff remove", {"member": 102})
    assert "removed" in rec.content
    rec = await emu.command(101, "invites-admin staff list")
    assert "No staff codes yet" in rec.text()


# ---- reset and restore ----------


async def test_reset_is_backed_up_survives_a_restart_and_restore_brings_the_numbers_back(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    emu.join(user(202, "eve"), via="bobs")
    await tracker.settle()
    await emu.command(101, "invites-admin bonus", {"member": 101, "amount": 4})
    assert await summary(tracker, 101) == (1, 0, 0, 4, 5)

    rec = await emu.command(101, "invites-admin reset", {"member": 101})
    assert rec.ephemeral
    backup_id = rec.text().split("Backup id: `")[1].split("`")[0]
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    assert await summary(tracker, 102) == (1, 0, 0, 0, 1)  # only the member's counts
    backup = await tracker.db.invite_backups.find_one({"_id": backup_id})
    assert (backup["status"], backup["joins"], backup["bonus_members"]) == ("applied", 1, 1)

    await tracker.restart(crash=True)
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)  # seed 002: a reset stays reset

    emu.join(user(203, "fay"), via="abc")  # after the reset: counts from zero, kept by the restore
    await tracker.settle()
    rec = await emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert "restored" in rec.content
    assert await summary(tracker, 101) == (2, 0, 0, 4, 6)
    rec = await emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert "already restored" in rec.content
    assert await summary(tracker, 101) == (2, 0, 0, 4, 6)


async def crash_a_reset_of_ada(tracker) -> str:
    """dan joined through ada's code, eve through bob's, ada has 4 bonus; `/invites-admin reset ada` dies
    at its first bonus write (the process is gone from there on). Returns the backup id."""
    from tests.app.operations.test_invite_resets import CrashingCollection

    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    emu.join(user(202, "eve"), via="bobs")
    await tracker.settle()
    await emu.command(101, "invites-admin bonus", {"member": 101, "amount": 4})
    bonus = tracker.bot.repos.invite_bonus
    bonus.collection = CrashingCollection(bonus.collection, 1, "before")
    rec = await emu.command(101, "invites-admin reset", {"member": 101})
    assert "went wrong" in rec.text()
    bonus.collection = bonus.collection._real
    header = await tracker.db.invite_backups.find_one({"kind": "header"})
    assert header["status"] == "saved"  # ada's join is marked, her bonus not taken yet
    assert await summary(tracker, 101) == (0, 0, 0, 4, 4)
    return header["_id"]


async def test_a_reset_interrupted_by_a_crash_is_finished_at_the_next_start(tracker):
    backup_id = await crash_a_reset_of_ada(tracker)
    await tracker.restart(crash=True)
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    assert await summary(tracker, 102) == (1, 0, 0, 0, 1)
    backup = await tracker.db.invite_backups.find_one({"_id": backup_id})
    assert (backup["status"], backup["joins"], backup["bonus_members"]) == ("applied", 1, 1)
    assert await tracker.bot.repos.invite_backups.in_flight(GID) == []

    rec = await tracker.emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert "restored: 1 join counted again, bonus invites of 1 member given back." in rec.content
    assert await summary(tracker, 101) == (1, 0, 0, 4, 5)


async def test_the_next_reset_finishes_an_interrupted_one_and_says_so(tracker):
    backup_id = await crash_a_reset_of_ada(tracker)
    rec = await reset_everyone(tracker.emu, 101)
    assert (f"An interrupted reset was finished first (1 join no longer counted, bonus invites of 1 member "
            f"cleared): backup `{backup_id}`") in rec.text()
    assert "Invites of everyone reset: 1 join no longer counted." in rec.text()  # eve's, under a new backup
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    rec = await tracker.emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert "restored" in rec.content
    assert await summary(tracker, 101) == (1, 0, 0, 4, 5)
    assert await summary(tracker, 102) == (0, 0, 0, 0, 0)


async def test_restore_undoes_what_an_interrupted_reset_applied(tracker):
    backup_id = await crash_a_reset_of_ada(tracker)
    rec = await tracker.emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert "restored: 1 join counted again." in rec.content
    assert "had been interrupted" in rec.content
    assert await summary(tracker, 101) == (1, 0, 0, 4, 5)
    await tracker.restart(crash=True)  # nothing left to finish: the bonus is never taken
    assert await summary(tracker, 101) == (1, 0, 0, 4, 5)
    rec = await tracker.emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert "already restored" in rec.content


async def test_guild_reset_and_restore_validation(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    emu.join(user(202, "eve"), via="bobs")
    await tracker.settle()
    rec = await reset_everyone(emu, 101)
    backup_id = rec.text().split("Backup id: `")[1].split("`")[0]
    assert "reset: 2 joins no longer counted." in rec.text()
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    assert await summary(tracker, 102) == (0, 0, 0, 0, 0)
    rec = await emu.command(101, "invites-admin restore", {"backup_id": "ib-../../etc"})
    assert "not a backup id" in rec.content
    rec = await emu.command(101, "invites-admin restore", {"backup_id": "ib-000000000000"})
    assert "no backup" in rec.content
    await emu.command(101, "invites-admin restore", {"backup_id": backup_id})
    assert await summary(tracker, 101) == (1, 0, 0, 0, 1)
    assert await summary(tracker, 102) == (1, 0, 0, 0, 1)


async def test_resetting_everyone_waits_for_a_confirmation(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    question = await emu.command(101, "invites-admin reset")
    assert "**everyone**" in question.content and "`/invites-admin restore <id>`" in question.content
    assert await tracker.db.invite_backups.count_documents({}) == 0  # asked, nothing done yet
    assert await summary(tracker, 101) == (1, 0, 0, 0, 1)

    stranger = await emu.click(question, "invites:reset:confirm", 102)
    assert stranger.ephemeral and "Only the admin who ran" in stranger.content
    cancelled = await emu.click(question, "invites:reset:cancel", 101)
    assert cancelled.message["content"] == "Cancelled: nothing was reset."
    assert cancelled.message["components"] == []
    assert await tracker.db.invite_backups.count_documents({}) == 0
    assert await summary(tracker, 101) == (1, 0, 0, 0, 1)

    again = await emu.command(101, "invites-admin reset")
    done = await emu.click(again, "invites:reset:confirm", 101)
    assert done.ephemeral and "Invites of everyone reset: 1 join no longer counted." in done.content
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)
    assert again.message["components"] == [], "the question loses its buttons once confirmed"
    assert again.message["content"].endswith("Confirmed.")


async def test_resetting_one_member_needs_no_confirmation(tracker):
    rec = await tracker.emu.command(101, "invites-admin reset", {"member": 101})
    assert rec.custom_ids == [] and "Backup id: `ib-" in rec.content


# ---- permissions ----------


async def test_without_manage_guild_joins_are_unknown_logged_once_and_shown_in_debug(tracker, caplog):
    emu = tracker.emu
    emu.set_invites_forbidden(GID, True)
    await tracker.settle()
    with caplog.at_level(logging.WARNING, logger="app.tracking.invites"):
        emu.join(user(201, "dan"), via="abc")
        await tracker.settle()
        emu.join(user(202, "eve"), via="abc")
        await tracker.settle()
    warnings = [r for r in caplog.records if "lacks Manage Guild" in r.getMessage()]
    assert len(warnings) == 1
    for alias in (201, 202):
        doc = await last_join(tracker, alias)
        assert (doc["source"], doc["reason"], doc["inviter_id"]) == ("unknown", "missing_permissions", None)
    rec = await emu.command(101, "invites-admin debug")
    assert "Manage Server (needed to read invites)" in rec.text()
    assert await summary(tracker, 101) == (0, 0, 0, 0, 0)

    # Permission back: the uses of the unreadable period are settled with the next join, never guessed.
    emu.set_invites_forbidden(GID, False)
    emu.join(user(203, "fay"), via="bobs")
    await tracker.settle()
    for alias in (201, 202, 203):
        doc = await last_join(tracker, alias)
        assert attribution(doc) == ("ambiguous", None, None, ["abc", "bobs"]), alias
        assert doc["awaiting"] == ""
    rec = await emu.command(101, "invites-admin debug")
    assert "Missing bot permissions\nnone" in rec.text()


async def test_a_failed_fetch_leaves_the_join_waiting_and_the_next_fetch_settles_it(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.fail("GET", r"/guilds/1/invites", status=404, times=1)
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    dan = await last_join(tracker, 201)
    assert (dan["source"], dan["reason"], dan["awaiting"]) == ("unknown", "fetch_failed", "snapshot")
    emu.join(user(202, "eve"), via="abc")  # two uses of abc, two joiners since the last good snapshot
    await tracker.settle()
    for alias in (201, 202):
        doc = await last_join(tracker, alias)
        assert attribution(doc) == ("invite", "abc", uid(101), ["abc"])
        assert doc["awaiting"] == ""
    assert await summary(tracker, 101) == (2, 0, 0, 0, 2)


async def test_refresh_stores_the_snapshot_now(tracker):
    emu = tracker.emu
    emu.set_invites_forbidden(GID, True)
    emu.invite_create("later", 103)
    await tracker.settle()
    rec = await emu.command(101, "invites-admin refresh")
    assert "Could not read the invites (missing_permissions)" in rec.content
    emu.set_invites_forbidden(GID, False)
    rec = await emu.command(101, "invites-admin refresh")
    assert "Snapshot stored: 3 invites" in rec.content
    state = await tracker.db.invite_guilds.find_one({"_id": GID})
    assert (state["permission"], state["stale"]) == ("ok", "no")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("invites-admin bonus", {"member": 102, "amount": 3}),
        ("invites-admin staff add", {"member": 102, "code": "bobs"}),
        ("invites-admin staff remove", {"member": 102}),
        ("invites-admin staff list", {}),
        ("invites-admin debug", {}),
        ("invites-admin refresh", {}),
        ("invites-admin reset", {}),
        ("invites-admin restore", {"backup_id": "ib-000000000000"}),
    ],
)
async def test_admin_subcommands_refuse_members_without_manage_guild(tracker, name, options):
    with pytest.raises(PermissionError):  # the client hides /invites-admin from members
        await tracker.emu.command(102, name, options)
    rec = await tracker.emu.command(102, name, options, check_permissions=False)  # re-granted
    assert rec.ephemeral and "Manage Server" in rec.content
    assert await tracker.db.invite_bonus.count_documents({}) == 0
    assert await tracker.db.staff_codes.count_documents({}) == 0
    assert await tracker.db.invite_backups.count_documents({}) == 0


# ---- reading ----------


async def test_who_shows_inviter_code_and_source(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    rec = await emu.command(102, "invites who", {"member": 201})
    text = rec.text()
    assert f"Invited by\n<@{emu.user_id(101)}>" in text and "Code\n`abc`" in text and "Source\ninvite" in text
    assert re.search(rf"<@{emu.user_id(201)}> joined <t:\d+:f>", text)


async def test_show_defaults_to_yourself_and_respects_members_view_others(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="bobs")
    await tracker.settle()
    rec = await emu.command(102, "invites show")
    assert rec.embed["description"] == f"<@{emu.user_id(102)}>: **1 invite** (1 join)"
    assert f"<@{emu.user_id(201)}> joined <t:" in rec.text() and "Invites of bob" in rec.text()
    await tracker.bot.repos.guild_settings.set_fields(GID, members_view_others=False)
    rec = await emu.command(103, "invites show", {"member": 102})
    assert rec.ephemeral and "only their own" in rec.content
    rec = await emu.command(101, "invites show", {"member": 102})  # Manage Server may look
    assert "Invites of bob" in rec.text()


async def test_leaderboard_pages_with_buttons(tracker):
    emu = tracker.emu
    repo = tracker.bot.repos.invite_bonus
    for n in range(12):
        await repo.add(GID, 900 + n, n + 1, f"seed-{n}")
    rec = await emu.command(102, "invites leaderboard")
    assert "Page 1/2" in rec.text() and rec.custom_ids == ["invites:lb:prev", "invites:lb:next"]
    assert "**1.** <@911> (left) - **12 invites** (+12 bonus invites)" in rec.text()
    page2 = await emu.click(rec, "invites:lb:next", 102)
    assert "Page 2/2" in page2.text()
    assert "**11.** <@901> (left) - **2 invites** (+2 bonus invites)" in page2.text()
    other = await emu.click(page2, "invites:lb:prev", 103)
    assert other.ephemeral and "Only the member who ran" in other.content


async def test_leaderboard_period_counts_only_members_brought_in_during_it(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    await emu.command(101, "invites-admin bonus", {"member": 102, "amount": 7})
    rec = await emu.command(102, "invites leaderboard", {"period": "7d"})
    ada, bob = f"<@{emu.user_id(101)}>", f"<@{emu.user_id(102)}>"
    assert f"{ada} - **1 invite** (1 join)" in rec.text() and bob not in rec.text()  # bonus: all time only
    rec = await emu.command(102, "invites leaderboard", {"period": "all"})
    assert rec.text().index(f"{bob} - **7 invites**") < rec.text().index(f"{ada} - **1 invite**")
    assert "Page 1/1" in rec.text() and rec.custom_ids == [], "no page buttons for a single page"


async def test_ud_shows_the_members_invite_figures(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    await emu.command(101, "invites-admin bonus", {"member": 101, "amount": 2})
    rec = await emu.command(102, "ud", {"member": 101})
    assert "Invites\n**3 invites** (1 join, +2 bonus invites)" in rec.text()
