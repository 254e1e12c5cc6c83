"""Hostile option values through real slash-command invocations (the emulator and the real bot):
every one is answered cleanly (no "something went wrong"), and nothing malformed is written.
The volume is in tests/app/wiring/test_input_validation.py; these show the whole path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from app.wiring.validation import INVITE_CODE
from cogs.invites import NOT_A_CODE
from tests.botharness import Harness
from tests.fuzz import HOSTILE_INT, HOSTILE_TEXT, examples

G, ADA, BOB = 1, 101, 102
CRASH = "Something went wrong"


def strip_choices(h: Harness) -> None:
    """Make the emulator send any value (like a client that does not follow the synced command)."""
    def walk(options: list[dict[str, Any]]) -> None:
        for option in options:
            option.pop("choices", None)
            option.pop("min_value", None)
            option.pop("max_value", None)
            option.pop("min_length", None)
            option.pop("max_length", None)
            walk(option.get("options") or [])

    for scope in h.emu.commands.values():
        for command in scope:
            walk(command.get("options") or [])


def clean(rec: Any) -> str:
    assert rec.acknowledged, rec
    text = rec.text()
    assert CRASH not in text, text
    return text


async def test_staff_add_with_hostile_codes(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    for value in [*examples(HOSTILE_TEXT, 12), '{"$gt": ""}', "$where", "bo\x00bs", "https://discord.gg/bobs"]:
        text = clean(await emu.command(ADA, "invites-admin staff add", {"member": BOB, "code": value}))
        assert text == NOT_A_CODE or text.startswith("Staff code `"), (value, text)
    async for doc in h.db.staff_codes.find({}):
        assert INVITE_CODE.fullmatch(doc["code"]), doc
        assert isinstance(doc["guild_id"], int) and isinstance(doc["member_id"], int)


async def test_restore_with_hostile_backup_ids(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    for value in [*examples(HOSTILE_TEXT, 10), "ib-0123456789ab", '{"$ne": null}', "ib-0123456789ab\x00"]:
        text = clean(await emu.command(ADA, "invites-admin restore", {"backup_id": value}))
        assert text in ("That is not a backup id (they look like `ib-0123456789ab`).",
                        "There is no backup `ib-0123456789ab` in this server: give the id that "
                        "`/invites-admin reset` answered with."), (value, text)
    assert await h.db.invite_backups.count_documents({}) == 0
    assert await h.db.joins.count_documents({"reset_id": {"$nin": ["", None]}}) == 0


async def test_settings_with_hostile_strings(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    for value in [*examples(HOSTILE_TEXT, 10), "Europe/Berlin\x00", "../../etc/passwd", "{member.__class__}"]:
        for option in ("time_zone", "join_template"):
            text = clean(await emu.command(ADA, "settings set", {option: value}))
            assert text.startswith(("Changed:", "Nothing changed:", "Not changed:", "The value of")), (
                option, value, text)
    doc = await h.db.guild_settings.find_one({"_id": G}) or {}
    for name in ("time_zone", "join_template"):
        assert name not in doc or isinstance(doc[name], str)
    assert all(not k.startswith("$") for k in doc)


async def test_bonus_with_hostile_amounts(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    strip_choices(h)  # the bounds are enforced by the bot, not only by the client
    accepted = 0
    for value in [*examples(HOSTILE_INT, 10), 1000, -1000, 1001, 2 ** 63 - 1, -2 ** 63]:
        text = clean(await emu.command(ADA, "invites-admin bonus", {"member": BOB, "amount": value}))
        if -1000 <= value <= 1000:
            assert text.startswith(f"{value:+,d} bonus invite"), (value, text)
            assert f" for <@{emu.user_id(BOB)}>: now " in text, (value, text)
            accepted += value
        else:
            assert text == "The value of `amount` is not valid for this command.", (value, text)
    assert await h.bot.repos.invite_bonus.get(G, emu.user_id(BOB)) == accepted


@pytest.mark.parametrize(("name", "option", "base"), [
    ("ud", "period", {}),
    ("top", "board", {}),
    ("top", "period", {"board": "voice"}),
    ("invites leaderboard", "period", {}),
])
async def test_choice_options_refuse_anything_else(tracker: Harness, name: str, option: str,
                                                  base: dict[str, Any]) -> None:
    h, emu = tracker, tracker.emu
    strip_choices(h)
    values = examples(st.one_of(HOSTILE_TEXT, st.sampled_from(["$where", "all\x00", "7D"])), 4)
    for n, value in enumerate(values):
        h.clock.advance(60)  # past the cooldowns of /top and the leaderboard
        rec = await emu.command(BOB + n % 2, name, {**base, option: value})
        text = clean(rec)
        expected = f"The value of `{option}` is not valid for this command."
        assert rec.ephemeral and text == expected, (value, text)
    ok = await emu.command(ADA, name, {**base, option: "all" if option == "period" else "messages"})
    assert ok.embed is not None


def forge_option_type(h: Harness, command: str, option: str, option_type: int) -> None:
    """Make the emulator send `option` with another type (a forged interaction: `"999999999"`)."""
    def walk(options: list[dict[str, Any]]) -> None:
        for item in options:
            if item.get("name") == option and item.get("type") not in (1, 2):
                item["type"] = option_type
            walk(item.get("options") or [])

    for scope in h.emu.commands.values():
        for definition in scope:
            if definition.get("name") == command:
                walk(definition.get("options") or [])


async def test_a_forged_string_amount_is_refused_and_nothing_is_stored(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    strip_choices(h)
    forge_option_type(h, "invites-admin", "amount", 3)  # a string option, whatever the synced command says
    for value in ["999999999", "5", "-1000", "1e9", "0x10"]:
        text = clean(await emu.command(ADA, "invites-admin bonus", {"member": BOB, "amount": value}))
        assert text == "The value of `amount` is not valid for this command.", (value, text)
    forge_option_type(h, "invites-admin", "amount", 10)  # a number (float) where an integer is declared
    text = clean(await emu.command(ADA, "invites-admin bonus", {"member": BOB, "amount": 7}))
    assert text == "The value of `amount` is not valid for this command.", text
    assert await h.bot.repos.invite_bonus.get(G, emu.user_id(BOB)) == 0
    assert await h.db.invite_bonus.count_documents({}) == 0
