"""The real bot against the emulator: startup order, lifecycle record, graceful and crash stops."""

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
