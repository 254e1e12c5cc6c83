"""Abuse limits: per-member cooldowns on heavy commands (on the bot's clock), one reset / restore
/ erase per guild at a time, and clear answers when limited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from app.wiring.clock import ManualClock
from app.wiring.limits import (
    BACKUP_LIMIT,
    LEADERBOARD_LIMIT,
    SERVER_STATS_LIMIT,
    UD_CHART_LIMIT,
    Cooldowns,
    SingleFlight,
    retry_text,
)
from cogs import stats
from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103


def test_cooldowns_allow_n_runs_per_window_per_member_and_command() -> None:
    clock = ManualClock(datetime(2026, 3, 10, 12, tzinfo=UTC))
    cooldowns = Cooldowns(clock.now)
    assert [cooldowns.hit("top", G, BOB, (3, 30.0)) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert cooldowns.hit("top", G, BOB, (3, 30.0)) == 30.0
    assert cooldowns.hit("top", G, CY, (3, 30.0)) == 0.0  # another member
    assert cooldowns.hit("ud chart", G, BOB, (3, 30.0)) == 0.0  # another command
    assert cooldowns.hit("top", 2, BOB, (3, 30.0)) == 0.0  # another guild
    clock.advance(12)
    assert cooldowns.hit("top", G, BOB, (3, 30.0)) == 18.0
    clock.advance(18)
    assert cooldowns.hit("top", G, BOB, (3, 30.0)) == 0.0  # the first run left the window
    assert retry_text(17.2) == "You are going too fast: try again in 18s."


def test_a_short_window_does_not_expire_the_runs_of_a_longer_one() -> None:
    clock = ManualClock(datetime(2026, 3, 10, 12, tzinfo=UTC))
    cooldowns = Cooldowns(clock.now)
    assert cooldowns.hit("backup-data", G, ADA, (1, 300.0)) == 0.0
    clock.advance(40)
    assert cooldowns.hit("top", G, ADA, (3, 30.0)) == 0.0  # prunes what left its own window only
    assert cooldowns.hit("backup-data", G, ADA, (1, 300.0)) == 260.0


def test_single_flight_refuses_a_second_holder_and_frees_on_exit() -> None:
    flight = SingleFlight()
    with flight.hold(G, "an invite reset") as first:
        assert first and flight.running(G) == "an invite reset"
        with flight.hold(G, "an erase") as second:
            assert not second
        with flight.hold(2, "an erase") as other_guild:
            assert other_guild
    assert flight.running(G) is None
    with pytest.raises(RuntimeError), flight.hold(G, "x"):
        raise RuntimeError("boom")
    assert flight.running(G) is None  # released on errors too


@pytest.mark.parametrize(("name", "options", "limit"), [
    ("top", {"board": "messages"}, LEADERBOARD_LIMIT),
    ("invites leaderboard", {}, LEADERBOARD_LIMIT),
    ("ud", {"chart": True}, UD_CHART_LIMIT),
    ("server stats", {}, SERVER_STATS_LIMIT),
])
async def test_heavy_commands_are_limited_per_member_with_a_clear_answer(
    tracker: Harness, monkeypatch: pytest.MonkeyPatch, name: str, options: dict[str, Any],
    limit: tuple[int, float],
) -> None:
    h, emu = tracker, tracker.emu
    monkeypatch.setattr(stats, "render_member_card", lambda *args: b"\x89PNG\r\n\x1a\n")
    runs, window = limit
    for _ in range(runs):
        ok = await emu.command(BOB, name, options)
        assert ok.embed is not None, ok
    h.clock.advance(5)
    limited = await emu.command(BOB, name, options)
    assert limited.ephemeral and limited.embed is None
    assert limited.content == f"You are going too fast: try again in {int(window) - 5}s."
    other = await emu.command(CY, name, options)  # per member
    assert other.embed is not None
    h.clock.advance(window - 5)
    again = await emu.command(BOB, name, options)
    assert again.embed is not None, again


async def test_ud_without_a_chart_is_not_limited(tracker: Harness) -> None:
    for _ in range(UD_CHART_LIMIT[0] + 3):
        rec = await tracker.emu.command(BOB, "ud", {})
        assert rec.embed is not None


async def test_backups_are_limited_per_member(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    runs, window = BACKUP_LIMIT
    for _ in range(runs):
        assert "written" in (await emu.command(ADA, "backup-data")).text()
    limited = await emu.command(ADA, "backup-data")
    assert limited.ephemeral and limited.text() == f"You are going too fast: try again in {int(window)}s."
    assert len(list((h.settings.data_dir / "backups").iterdir())) == runs
    h.clock.advance(window)
    assert "written" in (await emu.command(ADA, "backup-data")).text()


async def test_one_reset_or_restore_per_guild_at_a_time(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    repos = h.bot.repos
    entered, release = asyncio.Event(), asyncio.Event()
    resettable = repos.joins.resettable

    async def held(*args: Any) -> Any:
        entered.set()
        await release.wait()
        return await resettable(*args)

    repos.joins.resettable = held  # type: ignore[method-assign]
    question = await emu.command(ADA, "invites-admin reset")  # everyone's: asks first
    first = asyncio.create_task(emu.click(question, "invites:reset:confirm", ADA, timeout=30))
    await asyncio.wait_for(entered.wait(), 10)
    second = await emu.command(ADA, "invites-admin reset")
    assert second.ephemeral
    assert second.content == ("An invite reset is running in this server; run `/invites-admin reset` again "
                              "when it is done.")
    restore = await emu.command(ADA, "invites-admin restore", {"backup_id": "ib-0123456789ab"})
    assert restore.content.startswith("An invite reset is running in this server")
    erase = await emu.command(ADA, "data erase", {"member": CY})
    assert erase.content.startswith("An invite reset is running in this server")
    release.set()
    done = await first
    assert "Backup id: `ib-" in done.text()
    headers = [d async for d in h.db.invite_backups.find({"status": {"$exists": True}})]
    assert len(headers) == 1  # the refused reset wrote no backup
    after = await emu.command(ADA, "invites-admin restore", {"backup_id": "ib-0123456789ab"})
    assert after.content.startswith("There is no backup `ib-0123456789ab` in this server")  # the lock is free
