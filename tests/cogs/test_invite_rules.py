"""Conversions found at settlement and at start, join hints (Discovery / widget), the optional fake
rules and the audit-log match: the real bot against the Discord emulator and the test database
(issue 14, failure 8 and Deliver 3)."""

from __future__ import annotations

from typing import Any

from tests.cogs.test_invites import GID, attribution, guild_spec, joins_of, last_join, summary, user

__all__ = ["guild_spec"]  # the fixture: members joined long before any snapshot

VIP = 50


async def staff_setup(harness: Any) -> None:
    """bob (102) owns the staff code `bobs`; VIP is the conversion role."""
    await harness.bot.repos.guild_settings.set_fields(GID, conversion_role=VIP)
    await harness.emu.command(101, "invites staff add", {"member": 102, "code": "bobs"})


async def staff_list(harness: Any) -> str:
    return (await harness.emu.command(101, "invites staff list")).text()


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
    assert "Invites: 1 | Conversions: 1" in await staff_list(tracker)
    await tracker.restart(crash=True)  # reconciled again on the next start: still one
    assert "Invites: 1 | Conversions: 1" in await staff_list(tracker)


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
    rec = await emu.command(101, "invites refresh")
    assert "Snapshot stored" in rec.content
    dan = await last_join(tracker, 201)
    assert attribution(dan) == ("invite", "bobs", emu.user_id(102), ["bobs"])
    assert dan["converted_by"] == emu.user_id(102)
    assert "Invites: 1 | Conversions: 1" in await staff_list(tracker)


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
    assert "Invites: 1 | Conversions: 1" in await staff_list(tracker)
    assert await summary(tracker, 102) == (1, 0, 0, 0, 1)
    assert len(await joins_of(tracker, 201)) == 1

