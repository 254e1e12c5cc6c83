"""The real bot against the emulator: startup order, lifecycle record, graceful and crash stops."""

import asyncio

import discord

from tests.botharness import Harness


async def test_startup_runs_probe_indexes_and_records_the_run(tracker: Harness) -> None:
    bot = tracker.bot
    assert bot is not None
    assert bot.probe_result is not None and bot.probe_result.attempts >= 1
    assert (await bot.repos.lifecycle.load())["running"] is True
    assert bot.scheduler is not None and bot.scheduler.running
    assert bot.get_guild(1) is not None


async def test_graceful_stop_runs_shutdown_hooks_and_a_crash_does_not(tracker: Harness) -> None:
    ran: list[str] = []

    async def hook() -> None:
        ran.append("flush")

    assert tracker.bot is not None
    tracker.bot.add_shutdown_hook("test flush", hook)
    await tracker.restart()
    assert ran == ["flush"]
    assert (await tracker.bot.repos.lifecycle.load())["running"] is True  # started again
    assert tracker.bot is not None
    repos = tracker.bot.repos
    tracker.bot.add_shutdown_hook("test flush", hook)
    await tracker.stop(crash=True)
    assert ran == ["flush"]
    assert (await repos.lifecycle.load())["running"] is True  # no clean stop recorded


async def test_a_guild_reported_ready_during_its_outage_waits_until_it_is_back(tracker: Harness) -> None:
    """discord.py's start reports a guild ready after its member-list wait even when its outage
    began meanwhile; reconciled then, every voice session closed as if everyone had left
    (tests/e2e/scenarios/restart_during_guild_outage.json lost 19 s per member). Held back until the
    guild is available: by its own GUILD_CREATE, or by the end of the start (`ready`) when discord.py
    queued that GUILD_CREATE and never reported it."""
    bot = tracker.bot
    assert bot is not None
    guild = bot.get_guild(1)
    assert guild is not None
    seen: list[tuple[str, int]] = []

    async def available(g: discord.Guild) -> None:
        seen.append(("available", g.id))

    async def joined(g: discord.Guild) -> None:
        seen.append(("join", g.id))

    bot.add_listener(available, "on_guild_available")
    bot.add_listener(joined, "on_guild_join")
    guild.unavailable = True
    bot.dispatch("guild_join", guild)  # what discord.py's start does for it
    bot.dispatch("ready")  # still in its outage: held on
    await asyncio.sleep(0.05)
    assert seen == []
    guild.unavailable = False  # its GUILD_CREATE was parsed, and queued by discord.py's start
    bot.dispatch("ready")
    await asyncio.sleep(0.05)
    assert seen == [("available", 1)]
    bot.dispatch("ready")  # released once
    bot.dispatch("guild_available", guild)  # an available guild passes as always
    await asyncio.sleep(0.05)
    assert seen == [("available", 1), ("available", 1)]
