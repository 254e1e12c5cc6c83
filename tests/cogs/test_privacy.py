"""`members_view_others: false` on every surface that shows a member's numbers: boards, their
selects and buttons, lookups and join/leave announcements. Manage Server still sees everything."""

from __future__ import annotations

import json
from typing import Any

import discord
import pytest

from app.wiring.privacy import SURFACES, Surface
from cogs.help import is_admin, leaf_commands
from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103
OLD = "2023-01-01T00:00:00Z"
ANNOUNCEMENTS = 11


async def restrict(h: Harness) -> None:
    assert h.bot is not None
    await h.bot.repos.guild_settings.set_fields(G, members_view_others=False)


def shown(record: Any) -> str:
    """Everything the member sees: the text, the embeds and the components of every message."""
    return json.dumps(record.messages)


def mention(h: Harness, member: int) -> str:
    return f"<@{h.emu.user_id(member)}>"


async def busy_members(h: Harness) -> None:
    """CY sent 3 messages, BOB 1: CY leads the messages board."""
    for _ in range(3):
        h.emu.message(CY, 10)
    h.emu.message(BOB, 10)
    await h.settle()


async def test_top_shows_a_restricted_member_only_their_own_rank(tracker: Harness) -> None:
    h = tracker
    await busy_members(h)
    await restrict(h)
    rec = await h.emu.command(BOB, "top", {"board": "messages"})
    assert rec.ephemeral and rec.embed is not None
    assert mention(h, CY) not in shown(rec) and "3 messages" not in shown(rec)
    assert {f["name"]: f["value"] for f in rec.embed["fields"]} == {"Your rank": "#2 - 1 message"}
    assert "only their own" in rec.embed["description"]
    assert "top:prev" not in rec.custom_ids and "top:next" not in rec.custom_ids


async def test_the_top_selects_follow_the_setting_when_it_changes_after_the_board_was_shown(
    tracker: Harness,
) -> None:
    h = tracker
    await busy_members(h)
    rec = await h.emu.command(BOB, "top", {"board": "messages"})  # members may look: the board
    assert mention(h, CY) in shown(rec) and not rec.ephemeral
    await restrict(h)
    switched = await h.emu.click(rec, "top:period", BOB, values=["7d"])
    assert mention(h, CY) not in json.dumps(switched.message)
    assert "only their own" in switched.message["embeds"][0]["description"]


async def test_an_admin_sees_the_whole_board_privately_when_members_may_not(tracker: Harness) -> None:
    h = tracker
    await busy_members(h)
    await restrict(h)
    rec = await h.emu.command(ADA, "top", {"board": "messages"})
    assert rec.ephemeral  # not posted to the channel, where members would read it
    assert mention(h, CY) in shown(rec) and "3 messages" in shown(rec)


async def inviters(h: Harness) -> None:
    """ADA brought in two members, BOB one (one join at a time: joins at once are ambiguous)."""
    for member, code in ((201, "abc"), (202, "abc"), (203, "bobs")):
        h.emu.join({"id": member, "name": f"m{member}", "created": OLD}, via=code)
        await h.settle()


async def test_the_invite_leaderboard_shows_a_restricted_member_only_their_own_row(tracker: Harness) -> None:
    h = tracker
    await inviters(h)
    await restrict(h)
    rec = await h.emu.command(BOB, "invites leaderboard")
    assert rec.ephemeral and rec.embed is not None
    assert mention(h, ADA) not in shown(rec) and "2 invites" not in shown(rec)
    assert mention(h, BOB) in rec.embed["description"] and "1 invite" in rec.embed["description"]
    assert "only their own" in rec.embed["description"]
    admin = await h.emu.command(ADA, "invites leaderboard")
    assert admin.ephemeral and mention(h, BOB) in shown(admin) and mention(h, ADA) in shown(admin)


async def test_announcements_leave_out_the_inviters_total_when_members_may_not_see_it(
    tracker: Harness,
) -> None:
    h = tracker
    await h.emu.command(ADA, "settings set", {"announcement_channel": ANNOUNCEMENTS})
    await restrict(h)
    h.emu.join({"id": 201, "name": "eve", "created": OLD}, via="abc")
    await h.settle()
    h.emu.leave(201)
    await h.settle()
    assert h.bot is not None
    own_template = "{member} came; {inviter} has {invites} invites"
    await h.bot.repos.guild_settings.set_fields(G, join_template=own_template)
    h.emu.join({"id": 202, "name": "fay", "created": OLD}, via="abc")
    await h.settle()
    texts = [m["content"] for m in h.emu.bot_messages if int(m["channel_id"]) == ANNOUNCEMENTS]
    assert texts == ["eve joined; invited by ada (invite, code abc)",
                     "eve left; they were invited by ada",
                     "fay came; ada has invites not shown"]


# ---- every command is classified, and the classification holds ------------------------------------
def tree_commands(h: Harness) -> dict[str, Any]:
    assert h.bot is not None
    return {c.qualified_name: c for c in leaf_commands(h.bot.tree)}


def of_kind(kind: Surface) -> list[str]:
    return sorted(name for name, surface in SURFACES.items() if surface is kind)


async def test_every_command_says_what_it_shows_of_other_members(tracker: Harness) -> None:
    names = set(tree_commands(tracker))
    missing = names - set(SURFACES)
    assert not missing, f"add to app.wiring.privacy.SURFACES (and honour the policy): {missing}"
    assert set(SURFACES) <= names, set(SURFACES) - names  # no stale entries
    for name in of_kind(Surface.ADMIN):  # Manage Server sees everything; the command refuses others
        assert is_admin(tree_commands(tracker)[name]), name


def options_for(command: Any, h: Harness) -> dict[str, Any]:
    """Another member for a member option, the first choice for each required choice option."""
    options: dict[str, Any] = {}
    for param in command.parameters:
        if param.type is discord.AppCommandOptionType.user:
            options[param.display_name] = CY
        elif param.required and param.choices:
            options[param.display_name] = param.choices[0].value
        elif param.required:
            pytest.fail(f"/{command.qualified_name}: give the test a value for option {param.display_name}")
    return options


@pytest.mark.parametrize("name", of_kind(Surface.LOOKUP) + of_kind(Surface.BOARD))
async def test_no_surface_shows_a_restricted_member_another_members_numbers(
    tracker: Harness, name: str
) -> None:
    h = tracker
    await busy_members(h)
    await inviters(h)  # CY leads the messages boards, ADA the invite board
    await restrict(h)
    command = tree_commands(h)[name]
    rec = await h.emu.command(BOB, name, options_for(command, h))
    assert rec.ephemeral, rec
    for other in (ADA, CY):
        assert mention(h, other) not in shown(rec), (name, shown(rec))
    assert "only their own" in rec.text()


@pytest.mark.parametrize("name", of_kind(Surface.NONE))
async def test_a_surface_without_members_numbers_names_no_other_member(tracker: Harness, name: str) -> None:
    """`/server stats` and `/help` are posted whatever the setting: they must name nobody."""
    h = tracker
    await busy_members(h)
    await restrict(h)
    command = tree_commands(h)[name]
    rec = await h.emu.command(BOB, name, options_for(command, h))
    assert rec.messages, rec
    for other in (ADA, CY):
        assert mention(h, other) not in shown(rec), (name, shown(rec))
        assert str(h.emu.user_id(other)) not in shown(rec), (name, shown(rec))
