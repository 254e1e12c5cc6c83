"""Autocomplete through the emulator (interaction type 4, answered with type 8): time zones,
invite backup ids and invite codes; at most 25 suggestions, none for a member without Manage Server."""

from __future__ import annotations

import re

from tests.botharness import Harness

ADA, BOB = 101, 102


async def test_time_zones_are_suggested_from_what_is_typed(tracker: Harness) -> None:
    emu = tracker.emu
    rec = await emu.autocomplete(ADA, "settings set", "time_zone", {"time_zone": "berl"})
    assert rec.callback_type == 8 and rec.choices[0] == {"name": "Europe/Berlin", "value": "Europe/Berlin"}
    nothing_typed = await emu.autocomplete(ADA, "settings set", "time_zone")
    assert len(nothing_typed.choices) == 25 and nothing_typed.choices[0]["value"] == "UTC"
    york = await emu.autocomplete(ADA, "settings set", "time_zone",
                                  {"time_zone": "YORK", "mention_member": True})
    assert [c["value"] for c in york.choices] == ["America/New_York"]
    chosen = await emu.command(ADA, "settings set", {"time_zone": york.choices[0]["value"]})
    assert "Europe" not in chosen.content and "America/New_York" in chosen.content


async def test_backup_ids_are_suggested_newest_first_with_whose_invites(tracker: Harness) -> None:
    emu = tracker.emu
    ids = []
    for member in (ADA, BOB):
        reset = await emu.command(ADA, "invites-admin reset", {"member": member})
        ids.append(re.search(r"Backup id: `(ib-[0-9a-f]{12})`", reset.content).group(1))
        tracker.clock.advance(60)
    rec = await emu.autocomplete(ADA, "invites-admin restore", "backup_id")
    assert [c["value"] for c in rec.choices] == ids[::-1]
    assert re.fullmatch(rf"{ids[1]} · bob · 2026-03-10 12:01 UTC · applied", rec.choices[0]["name"])
    typed = await emu.autocomplete(ADA, "invites-admin restore", "backup_id", {"backup_id": ids[0][:9]})
    assert [c["value"] for c in typed.choices] == [ids[0]]
    member = await emu.autocomplete(BOB, "invites-admin restore", "backup_id")
    assert member.choices == [], "no backup ids for a member without Manage Server"


async def test_invite_codes_are_suggested_with_uses_and_staff(tracker: Harness) -> None:
    emu = tracker.emu
    await emu.command(ADA, "invites-admin staff add", {"member": BOB, "code": "bobs"})
    rec = await emu.autocomplete(ADA, "invites-admin staff add", "code", {"member": BOB})
    assert {c["value"]: c["name"] for c in rec.choices} == {
        "abc": "abc · 0 uses · by ada", "bobs": "bobs · 0 uses · by bob · staff code of bob"}
    typed = await emu.autocomplete(ADA, "invites-admin staff add", "code", {"code": "BO"})
    assert [c["value"] for c in typed.choices] == ["bobs"]
    assert (await emu.autocomplete(BOB, "invites-admin staff add", "code")).choices == []
