"""Conversions found at settlement and at start, join hints (Discovery / widget), the optional fake
rules and the audit-log match: the real bot against the Discord emulator and the test database
(issue 14, failure 8 and Deliver 3)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.cogs.test_invites import GID, attribution, guild_spec, joins_of, last_join, summary, user

__all__ = ["guild_spec"]  # the fixture: members joined long before any snapshot

VIP = 50


async def staff_setup(harness: Any) -> None:
    """bob (102) owns the staff code `bobs`; VIP is the conversion role."""
    await harness.bot.repos.guild_settings.set_fields(GID, conversion_role=VIP)
    await harness.emu.command(101, "invites-admin staff add", {"member": 102, "code": "bobs"})


async def staff_list(harness: Any) -> str:
    return (await harness.emu.command(101, "invites-admin staff list")).text()


# ---- failure 8: conversions missed ----------


async def test_a_role_granted_while_the_bot_was_down_is_a_conversion_after_the_restart(tracker):
    await staff_setup(tracker)
    tracker.emu.join(user(201, "dan"), via="bobs")
    await tracker.settle()

    async def while_down() -> None:
        tracker.emu.role_add(201, VIP)  # no GUILD_MEMBER_UPDATE reaches the bot

    await tracker.restart(crash=True, between=while_down)
    dan = await last_join(tracker, 201)
    assert dan["converted_by"] == tracker.emu.user_id(102)
    assert "code `bobs`, 1 invite, 1 conversion (rate 100%)" in await staff_list(tracker)
    await tracker.restart(crash=True)  # reconciled again on the next start: still one
    assert "code `bobs`, 1 invite, 1 conversion (rate 100%)" in await staff_list(tracker)


async def test_a_role_granted_while_the_join_awaits_attribution_converts_when_it_is_settled(tracker):
    emu = tracker.emu
    await staff_setup(tracker)
    emu.fail("GET", r"/guilds/1/invites", status=404, times=1)
    emu.join(user(201, "dan"), via="bobs")
    await tracker.settle()
    assert (await last_join(tracker, 201))["awaiting"] == "snapshot"
    emu.role_add(201, VIP)  # handled now: the join has no code yet, so no conversion yet
    await tracker.settle()
    assert (await last_join(tracker, 201))["converted_by"] == 0
    rec = await emu.command(101, "invites-admin refresh")
    assert "Snapshot stored" in rec.content
    dan = await last_join(tracker, 201)
    assert attribution(dan) == ("invite", "bobs", emu.user_id(102), ["bobs"])
    assert dan["converted_by"] == emu.user_id(102)
    assert "code `bobs`, 1 invite, 1 conversion (rate 100%)" in await staff_list(tracker)


async def test_a_downtime_join_through_a_staff_code_holding_the_role_converts_once(tracker):
    emu = tracker.emu
    await staff_setup(tracker)

    async def while_down() -> None:
        emu.join(user(201, "dan"), via="bobs")
        emu.role_add(201, VIP)

    await tracker.restart(crash=True, between=while_down)
    dan = await last_join(tracker, 201)
    assert attribution(dan) == ("downtime", "bobs", emu.user_id(102), ["bobs"])
    assert dan["converted_by"] == emu.user_id(102)
    assert "code `bobs`, 1 invite, 1 conversion (rate 100%)" in await staff_list(tracker)
    assert await summary(tracker, 102) == (1, 0, 0, 0, 1)
    assert len(await joins_of(tracker, 201)) == 1



# ---- Deliver 3: fake rules "left within N seconds" and "repeat joiner" (off by default) ----------


def settings_fields(record: Any) -> dict[str, str]:
    """The "Fake invites" group of /settings show, as label -> value."""
    group = next(f["value"] for f in record.embed["fields"] if f["name"] == "Fake invites")
    return dict(line.split(": ", 1) for line in group.splitlines())


async def test_fake_rules_are_off_by_default_and_set_with_the_settings_command(tracker):
    emu = tracker.emu
    shown = settings_fields(await emu.command(101, "settings show"))
    assert (shown["Left within"], shown["Rejoins"]) == ("off", "no")
    rec = await emu.command(101, "settings set", {"fake_left_within_seconds": 60, "fake_repeat_joiner": True})
    assert rec.content == "Changed:\nLeft within: off -> 1m\nRejoins: no -> yes"
    await tracker.restart(crash=True)
    shown = settings_fields(await emu.command(101, "settings show"))
    assert (shown["Left within"], shown["Rejoins"]) == ("1m", "yes")
    await emu.command(101, "settings set", {"clear": "fake_left_within_seconds"})
    config = await tracker.bot.repos.guild_settings.get(GID)
    assert (config.fake_left_within_seconds, config.fake_repeat_joiner) == (0, True)


async def leave_after(harness: Any, alias: int, seconds: float) -> None:
    """The member leaves `seconds` after their recorded join (the bot's clock says so)."""
    joined = (await last_join(harness, alias))["joined_at"].replace(tzinfo=UTC)
    harness.clock.set(joined + timedelta(seconds=seconds))
    harness.emu.leave(alias)
    await harness.settle()


async def test_a_member_who_leaves_within_n_seconds_is_fake_when_the_rule_is_on(tracker):
    emu = tracker.emu
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    await leave_after(tracker, 201, 5)  # rule off: a plain leave
    assert (await last_join(tracker, 201))["fake_reason"] == ""
    assert await summary(tracker, 101) == (1, 1, 0, 0, 0)

    await tracker.bot.repos.guild_settings.set_fields(GID, fake_left_within_seconds=60)
    emu.join(user(202, "eve"), via="abc")
    emu.join(user(203, "fay"), via="abc")
    await tracker.settle()
    await leave_after(tracker, 202, 59)
    await leave_after(tracker, 203, 61)
    assert (await last_join(tracker, 202))["fake_reason"] == "left_quickly"
    assert (await last_join(tracker, 203))["fake_reason"] == ""
    assert await summary(tracker, 101) == (3, 2, 1, 0, 0)  # regular - left - fake
    rec = await emu.command(101, "invites show", {"member": 101})
    eve = f"<@{emu.user_id(202)}> (eve, left)"
    assert f"{eve} joined <t:" in rec.text() and "fake: left after 59s (threshold 1m)" in rec.text()


async def test_a_repeat_joiner_is_fake_when_the_rule_is_on(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id
    emu.join(user(201, "dan"), via="abc")
    await tracker.settle()
    emu.leave(201)
    await tracker.settle()
    emu.join(201, via="bobs")  # rule off: a rejoin, not fake
    await tracker.settle()
    emu.leave(201)
    await tracker.settle()
    await tracker.bot.repos.guild_settings.set_fields(GID, fake_repeat_joiner=True)
    emu.join(201, via="bobs")
    await tracker.settle()
    docs = await joins_of(tracker, 201)
    assert [(d["counted"], d["credit_to"], d["fake_reason"]) for d in docs] == [
        ("first", uid(101), ""), ("rejoin", 0, ""), ("rejoin", 0, "repeat_joiner")]
    assert await summary(tracker, 101) == (1, 0, 0, 0, 1)  # counted once, for the first inviter
    assert await summary(tracker, 102) == (0, 0, 0, 0, 0)
    rec = await emu.command(101, "invites who", {"member": 201})
    assert "fake: rejoined (this server counts rejoins as fake)" in rec.text()
    assert "rejoin (counted once, for the original inviter)" in rec.text()


# ---- Deliver 3: joins without an invite use, labelled (never credited) ----------


def announced(harness: Any) -> list[str]:
    return [m["content"] for m in harness.emu.bot_messages if int(m["channel_id"]) == 11]


async def test_a_join_without_a_use_in_a_discoverable_guild_is_labelled_never_credited(tracker):
    emu = tracker.emu
    await emu.command(101, "settings set", {"announcement_channel": 11})
    emu.set_features(GID, ["DISCOVERABLE"])
    await tracker.settle()
    emu.join(user(201, "dan"), via=None)
    await tracker.settle()
    emu.join(user(202, "eve"), via="abc")  # a join with a use is attributed as always
    await tracker.settle()
    dan = await last_join(tracker, 201)
    assert attribution(dan) == ("unknown", None, None, [])
    assert (dan["reason"], dan["hint"], dan["credit_to"]) == ("no_invite_use", "discovery", 0)
    eve = await last_join(tracker, 202)
    assert (eve["source"], eve["code"], eve["hint"]) == ("invite", "abc", "")
    assert "dan joined without an invite; probably via Server Discovery." in announced(tracker)
    rec = await emu.command(101, "invites who", {"member": 201})
    assert "probably via Server Discovery" in rec.text() and "Invited by\nunknown" in rec.text()


async def test_a_join_without_a_use_with_the_widget_on_is_labelled_widget(tracker):
    emu = tracker.emu
    emu.set_features(GID, [], widget=True)
    await tracker.settle()
    emu.join(user(201, "dan"), via=None)
    await tracker.settle()
    dan = await last_join(tracker, 201)
    assert (dan["source"], dan["reason"], dan["hint"]) == ("unknown", "no_invite_use", "widget")
    rec = await emu.command(101, "invites who", {"member": 201})
    assert "probably via the server widget" in rec.text()


async def test_a_join_without_a_use_and_no_discovery_or_widget_has_no_hint(tracker):
    tracker.emu.join(user(201, "dan"), via=None)
    await tracker.settle()
    dan = await last_join(tracker, 201)
    assert (dan["source"], dan["reason"], dan["hint"]) == ("unknown", "no_invite_use", "")


# ---- Deliver 3: an invite created and used up between reads, found in the audit log ----------


async def test_an_invite_created_and_used_up_while_the_bot_was_down_is_matched_from_the_audit_log(tracker):
    emu, uid = tracker.emu, tracker.emu.user_id

    async def while_down() -> None:
        emu.invite_create("once1", 103, max_uses=1)
        emu.join(user(201, "dan"), via="once1")  # used up: Discord deletes it (no audit entry)
        await asyncio.sleep(1.2)  # the bot's clock is past the creation by more than the skew margin
        tracker.clock.set(datetime.now(UTC))

    await tracker.restart(crash=True, between=while_down)
    assert attribution(await last_join(tracker, 201)) == ("downtime", "once1", uid(103), ["once1"])
    assert await summary(tracker, 103) == (1, 0, 0, 0, 1)
    assert any(r.path.endswith("/guilds/1/audit-logs") for r in emu.requests)
    stored = await tracker.db.invites.find_one({"_id": f"{GID}:once1"})
    assert (stored["status"], stored["max_uses"], stored["inviter_id"]) == ("removed", 1, uid(103))


async def test_a_revoked_invite_in_the_audit_log_is_no_candidate(tracker):
    emu = tracker.emu

    async def while_down() -> None:
        emu.invite_create("once2", 103, max_uses=1)
        emu.invite_delete("once2")  # revoked by someone: an INVITE_DELETE audit entry
        emu.join(user(201, "dan"), via=None)
        await asyncio.sleep(1.2)
        tracker.clock.set(datetime.now(UTC))

    await tracker.restart(crash=True, between=while_down)
    dan = await last_join(tracker, 201)
    assert attribution(dan) == ("unknown", None, None, [])
    assert await summary(tracker, 103) == (0, 0, 0, 0, 0)
