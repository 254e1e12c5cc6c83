"""Every command is classified admin or member; every admin command has Manage Server as its
default permission (on its top-level command: the only place Discord takes one) AND refuses at runtime, so a
server override that re-grants it changes nothing. /ud on others follows `members_view_others`."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord import app_commands

from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103
MANAGE_GUILD = discord.Permissions(manage_guild=True).value

# Admin commands with options that would change something if the command ran.
ADMIN: dict[str, dict[str, Any]] = {
    "invites-admin staff add": {"member": BOB, "code": "bobs"},
    "invites-admin staff remove": {"member": BOB},
    "invites-admin staff list": {},
    "invites-admin bonus": {"member": BOB, "amount": 5},
    "invites-admin debug": {},
    "invites-admin refresh": {},
    "invites-admin reset": {},
    "invites-admin restore": {"backup_id": "ib-0123456789ab"},
    "backup-data": {},
    "export leaderboard": {},
    "export invites": {"period": "7d"},
    "export joins": {},
    "export channels": {"period": "7d"},
    "data-status": {},
    "rewards add": {"role": 50, "metric": "messages", "reach": 10},
    "rewards remove": {"rule": "123"},
    "rewards list": {},
    "season start": {"name": "Spring"},
    "season list": {},
    "settings show": {},
    "settings set": {"members_view_others": False},
    "data erase": {"member": CY},
}
MEMBER = {"help", "ud", "top", "invites show", "invites who", "invites leaderboard", "server stats",
          "goal set", "goal clear", "invites retention"}


def leaf_commands(tree: app_commands.CommandTree) -> dict[str, app_commands.Command[Any, ..., Any]]:
    found: dict[str, Any] = {}

    def walk(item: Any) -> None:
        if isinstance(item, app_commands.Group):
            for child in item.commands:
                walk(child)
        else:
            found[item.qualified_name] = item

    for command in tree.get_commands():
        walk(command)
    return found


async def stored_state(h: Harness) -> dict[str, list[dict[str, Any]]]:
    """Everything a command could change (not the bot's own lifecycle/probe/outbox bookkeeping)."""
    names = sorted(n for n in await h.db.list_collection_names()
                   if n not in ("lifecycle", "invites", "invite_guilds") and not n.startswith("_"))
    return {n: [d async for d in h.db[n].find({}).sort("_id", 1)] for n in names}


async def test_every_command_is_classified(tracker: Harness) -> None:
    assert tracker.bot is not None
    names = set(leaf_commands(tracker.bot.tree))
    unclassified = names - set(ADMIN) - MEMBER
    assert not unclassified, f"classify these commands as admin or member in this test: {unclassified}"
    assert set(ADMIN) | MEMBER <= names


async def test_top_level_admin_commands_default_to_manage_server(tracker: Harness) -> None:
    synced = {c["name"]: c for c in tracker.emu.commands.get(None, [])}
    admin_roots, member_roots = {n.split()[0] for n in ADMIN}, {n.split()[0] for n in MEMBER}
    # Discord takes a default permission only on a top-level command: no group mixes the two kinds.
    assert not admin_roots & member_roots, admin_roots & member_roots
    for name in admin_roots:
        assert int(synced[name]["default_member_permissions"]) == MANAGE_GUILD, name
    for name in member_roots:
        assert synced[name].get("default_member_permissions") is None, name


@pytest.mark.parametrize("name", sorted({n.split()[0] for n in ADMIN}))
async def test_the_client_hides_top_level_admin_commands_from_members(tracker: Harness, name: str) -> None:
    full = next(n for n in ADMIN if n.split()[0] == name)
    with pytest.raises(PermissionError):
        await tracker.emu.command(BOB, full, ADMIN[full])


@pytest.mark.parametrize("name", sorted(ADMIN))
async def test_every_admin_command_refuses_a_member_at_runtime_and_changes_nothing(
    tracker: Harness, name: str
) -> None:
    h = tracker
    h.emu.message(CY, 10)
    await h.settle()
    before = await stored_state(h)
    backups = h.settings.data_dir / "backups"
    rec = await h.emu.command(BOB, name, ADMIN[name], check_permissions=False)  # re-granted by an override
    assert rec.ephemeral, rec
    assert "Manage Server" in rec.text(), rec.text()
    await h.settle()
    assert await stored_state(h) == before
    assert not backups.exists() or not any(backups.iterdir())


async def test_ud_on_others_follows_members_view_others(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    emu.message(CY, 10)
    await h.settle()
    allowed = await emu.command(BOB, "ud", {"member": CY})  # the default lets members look
    assert allowed.embed is not None and not allowed.ephemeral
    await emu.command(ADA, "settings set", {"members_view_others": False})
    refused = await emu.command(BOB, "ud", {"member": CY})
    assert refused.ephemeral and refused.embed is None
    assert refused.content == ("This server lets members see only their own `/ud`; an admin can change it "
                               "with `/settings set members_view_others:True`.")
    own = await emu.command(BOB, "ud", {})
    assert own.embed is not None
    staff = await emu.command(ADA, "ud", {"member": CY})  # Manage Server may always look
    assert staff.embed is not None
    also_invites = await emu.command(BOB, "invites show", {"member": CY})
    assert also_invites.ephemeral and "only their own" in also_invites.content
    also_who = await emu.command(BOB, "invites who", {"member": CY})
    assert also_who.ephemeral and "only their own" in also_who.content
    assert (await emu.command(BOB, "invites who", {"member": BOB})).embed is not None
    assert (await emu.command(ADA, "invites who", {"member": CY})).embed is not None


@pytest.mark.parametrize("name", ["ud", "invites show", "invites who"])
async def test_an_admins_lookup_of_another_member_is_ephemeral(tracker: Harness, name: str) -> None:
    emu = tracker.emu
    emu.message(CY, 10)
    await tracker.settle()
    admin_on_other = await emu.command(ADA, name, {"member": CY})
    assert admin_on_other.embed is not None and admin_on_other.ephemeral  # fake verdicts stay private
    admin_on_self = await emu.command(ADA, name, {"member": ADA})
    assert admin_on_self.embed is not None and not admin_on_self.ephemeral
    member_on_other = await emu.command(BOB, name, {"member": CY})  # members_view_others: on by default
    assert member_on_other.embed is not None and not member_on_other.ephemeral
