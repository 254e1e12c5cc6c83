"""`/help` lists every command the tree registers, with what it does, the admin ones marked."""

from __future__ import annotations

import re

from cogs.help import ADMIN_HEADING, MEMBER_HEADING
from scripts.emulator.limits import message_problems
from tests.botharness import Harness
from tests.cogs.test_permissions import ADMIN, MEMBER, leaf_commands

BOB = 102
LINE = re.compile(r"^`/([a-z-]+(?: [a-z-]+)*)(?: [<\[][^`]*)?` - (.+)$")


def listed(section: str) -> dict[str, str]:
    """`/name ...` - what it does, per line of one section."""
    found = {}
    for line in section.splitlines()[1:]:
        match = LINE.match(line)
        assert match, line
        found[match.group(1)] = match.group(2)
    return found


async def test_help_lists_every_registered_command_and_marks_the_admin_ones(tracker: Harness) -> None:
    assert tracker.bot is not None
    rec = await tracker.emu.command(BOB, "help")  # a member may run it
    assert rec.ephemeral and message_problems(rec.message) == []
    description = rec.embed["description"]
    member_part, admin_part = description.split("\n\n")
    assert member_part.startswith(MEMBER_HEADING) and admin_part.startswith(ADMIN_HEADING)
    members, admins = listed(member_part), listed(admin_part)

    registered = set(leaf_commands(tracker.bot.tree))
    assert set(members) | set(admins) == registered
    assert set(admins) == set(ADMIN) and set(members) == MEMBER
    assert all(what and "(Manage Server)" not in what for what in (*members.values(), *admins.values()))


async def test_help_shows_each_commands_options(tracker: Harness) -> None:
    text = (await tracker.emu.command(BOB, "help")).embed["description"]
    assert "`/invites-admin staff add <member> <code>` - Assign an invite code to a staff member" in text
    assert "`/ud [member] [period] [chart]` - " in text
    assert "`/help` - What each command does" in text
    assert "`/settings set [option ...]` - Change one or more settings" in text
