"""The gate (issue 18, findings 1 and 3): every command, button, select and autocomplete of a member
passes one rule (app/wiring/limits.py); heavy reads one at a time per guild; erases and backups
bounded."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from typing import Any

import discord
from discord import app_commands

import cogs
from app.wiring.commands import GatedView
from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103
VIP = 50  # the harness guild's role
TOO_FAST = "You are going too fast: try again in"


def held_read(h: Harness, method: str) -> tuple[asyncio.Event, asyncio.Event, list[int]]:
    """The Stats cog's `method` waits for `release` (each call counted in `calls`)."""
    assert h.bot is not None
    cog = h.bot.get_cog("Stats")
    original = getattr(cog, method)
    entered, release, calls = asyncio.Event(), asyncio.Event(), []

    async def held(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        entered.set()
        await release.wait()
        return await original(*args, **kwargs)

    setattr(cog, method, held)
    return entered, release, calls


async def test_parallel_ud_by_one_member_is_limited(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    entered, release, calls = held_read(h, "ud_values")
    runs = [asyncio.create_task(emu.command(BOB, "ud", {}, timeout=20)) for _ in range(5)]
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.sleep(0.5)
    release.set()
    answers = await asyncio.gather(*runs)
    refused = [a for a in answers if a.content.startswith(TOO_FAST)]
    assert len(refused) == 5 - h.settings.limit_in_flight, answers
    assert all(a.ephemeral for a in refused)
    assert len(calls) == h.settings.limit_in_flight


async def test_a_second_heavy_read_in_a_guild_waits_then_is_told_to_retry(make_tracker: Any) -> None:
    h = await make_tracker(heavy_read_wait_seconds=0.3)
    emu = h.emu
    entered, release, _ = held_read(h, "ud_values")
    first = asyncio.create_task(emu.command(BOB, "ud", {}, timeout=20))
    await asyncio.wait_for(entered.wait(), 10)
    other = await emu.command(CY, "top", {"board": "messages"})
    assert other.ephemeral
    assert other.text() == "The bot is busy reading this server's numbers: try again in 5s."
    release.set()
    assert (await first).embed is not None
    assert (await emu.command(CY, "top", {"board": "messages"})).embed is not None  # the slot is free


async def seed_board(h: Harness, members: int) -> None:
    """`members` ranked members (raw documents, as the repository writes them), ranks rebuilt."""
    assert h.bot is not None
    docs = [{"_id": f"t:{G}:{900 + i}", "kind": "total", "guild_id": G, "member_id": 900 + i,
             "messages": 100 - i, "voice_s": 0, "cam_on_s": 0, "cam_off_s": 0, "stream_s": 0}
            for i in range(members)]
    await h.db.activity.insert_many(docs)
    h.bot.ranks.rebuild(G)
    await h.bot.ranks.wait_ready(G)


async def test_top_buttons_are_limited_per_member(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await seed_board(h, 35)
    top = await emu.command(BOB, "top", {"board": "messages"})
    limit = h.settings.limit_clicks
    page, custom_id = top, "top:next"
    for n in range(limit):
        page = await emu.click(page, custom_id, BOB)
        assert page.embed is not None and not page.content.startswith(TOO_FAST), (n, page)
        footer = page.embed["footer"]["text"]
        custom_id = "top:prev" if footer == "Page 4/4" else "top:next" if footer == "Page 1/4" else custom_id
    limited = await emu.click(page, custom_id, BOB)
    assert limited.ephemeral and limited.content.startswith(TOO_FAST), limited
    h.clock.advance(h.settings.limit_clicks_seconds)
    assert (await emu.click(page, custom_id, BOB)).embed is not None


async def test_invite_leaderboard_buttons_are_limited_per_member(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    for n in range(12):  # twelve members with bonus invites: two pages
        await h.bot.repos.invite_bonus.add(G, 900 + n, n + 1, f"seed-{n}")
    board = await emu.command(BOB, "invites leaderboard")
    assert board.custom_ids == ["invites:lb:prev", "invites:lb:next"], board
    page, custom_id = board, "invites:lb:next"
    for _ in range(h.settings.limit_clicks):
        page = await emu.click(page, custom_id, BOB)
        assert not page.content.startswith(TOO_FAST), page
        custom_id = "invites:lb:prev" if custom_id == "invites:lb:next" else "invites:lb:next"
    limited = await emu.click(page, custom_id, BOB)
    assert limited.ephemeral and limited.content.startswith(TOO_FAST), limited


async def test_autocomplete_is_limited_per_member(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    for _ in range(h.settings.limit_autocomplete):
        rec = await emu.autocomplete(ADA, "settings set", "time_zone", {"time_zone": "Europe/Pa"})
        assert rec.choices, rec
    limited = await emu.autocomplete(ADA, "settings set", "time_zone", {"time_zone": "Europe/Pa"})
    assert limited.choices == []


def leaf_commands(items: list[Any]) -> list[app_commands.Command[Any, ..., Any]]:
    found: list[app_commands.Command[Any, ..., Any]] = []
    for item in items:
        if isinstance(item, app_commands.Group):
            found += leaf_commands(item.commands)
        else:
            found.append(item)
    return found


def required_options(command: app_commands.Command[Any, ..., Any]) -> dict[str, Any]:
    """A plausible value for each required option (the gate refuses before reading them)."""
    kind = discord.AppCommandOptionType
    values: dict[str, Any] = {}
    for param in command.parameters:
        if not param.required:
            continue
        if param.choices:
            values[param.display_name] = param.choices[0].value
        elif param.type is kind.role:
            values[param.display_name] = VIP
        elif param.type in (kind.user, kind.mentionable):
            values[param.display_name] = ADA
        elif param.type in (kind.integer, kind.number):
            values[param.display_name] = param.min_value or 0
        elif param.type is kind.boolean:
            values[param.display_name] = False
        else:
            values[param.display_name] = "abc"
    return values


async def test_every_command_passes_the_gate(tracker: Harness) -> None:
    """A member whose interactions are all still running is refused by every command of the tree,
    before its options are read: a new command cannot skip the gate."""
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    commands = leaf_commands(h.bot.tree.get_commands())
    assert len(commands) > 10
    bob = emu.user_id(BOB)
    for command in commands:
        h.bot.gate._in_flight[(G, bob)] = set(range(h.settings.limit_in_flight))  # all busy
        options = required_options(command)
        rec = await emu.command(BOB, command.qualified_name, options, check_permissions=False)
        assert rec.ephemeral and rec.content.startswith(TOO_FAST), (command.qualified_name, rec)
    h.bot.gate._in_flight.clear()


def all_views() -> list[type[discord.ui.View]]:
    for module in pkgutil.iter_modules(cogs.__path__):
        importlib.import_module(f"cogs.{module.name}")
    found, todo = [], list(discord.ui.View.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(("cogs.", "app.")):
            found.append(cls)
    return found


def test_every_view_passes_the_gate() -> None:
    views = [v for v in all_views() if v is not GatedView]
    assert len(views) >= 3
    for view in views:
        assert issubclass(view, GatedView), view
        assert "interaction_check" not in view.__dict__, f"{view.__name__} overrides the gate"


def backups(h: Harness) -> list[str]:
    root = h.settings.data_dir / "backups"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


async def test_erase_of_an_id_with_nothing_stored_writes_no_backup(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    for member in (BOB, CY, BOB, CY):  # members with nothing stored yet
        rec = await emu.command(ADA, "data erase", {"member": member})
        assert rec.ephemeral and "nothing erased, no backup written" in rec.content, rec
    assert backups(h) == []


async def test_erases_are_limited_per_guild_and_their_backups_kept_to_the_newest(make_tracker: Any) -> None:
    h = await make_tracker(erase_limit=2, erase_backup_keep_per_guild=1)
    emu = h.emu
    for member in (BOB, CY, ADA):
        emu.message(member, 10)
    await h.settle()
    assert "Backup `" in (await emu.command(ADA, "data erase", {"member": BOB})).content
    assert "Backup `" in (await emu.command(ADA, "data erase", {"member": CY})).content
    assert len(backups(h)) == 1  # retention: the newest erase backup only
    limited = await emu.command(ADA, "data erase", {"member": ADA})
    assert "already erased 2 members' data in the last 60 minutes" in limited.content, limited
    assert TOO_FAST in limited.content and len(backups(h)) == 1


async def test_backup_data_keeps_the_newest_backups_of_the_guild(make_tracker: Any) -> None:
    h = await make_tracker(backup_keep_per_guild=2)
    for _ in range(3):
        assert "written" in (await h.emu.command(ADA, "backup-data")).text()
        h.clock.advance(301)
    assert len(backups(h)) == 2


async def test_no_backup_past_the_quota(make_tracker: Any) -> None:
    h = await make_tracker(backup_quota_mb=1)
    root = h.settings.data_dir / "backups"
    root.mkdir(parents=True, exist_ok=True)
    (root / "ballast").write_bytes(b"x" * 2**20)
    rec = await h.emu.command(ADA, "backup-data")
    assert "The backup failed" in rec.text()
    assert backups(h) == ["ballast"]
