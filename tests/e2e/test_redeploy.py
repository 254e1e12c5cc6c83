"""End to end: the real bot process (`python main.py`) against the Discord emulator, killed and
restarted while events flow; afterwards MongoDB must match the ground truth."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import load_scenario

SCENARIOS = Path(__file__).parent / "scenarios"


async def run(name: str, tmp_path: Path, mongo_uri: str | None = None) -> dict[str, Any]:
    report = await run_and_report(load_scenario(SCENARIOS / f"{name}.json"), workdir=tmp_path)
    assert report["ok"], _explain(report)
    return report


def _explain(report: dict[str, Any]) -> str:
    rows = [r for r in report["members"] + report["inviters"] if r["differences"]]
    log = Path(report["bot_log"]).read_text()[-4000:] if report["bot_log"] else ""
    return f"differences: {rows}\nexit codes: {report['bot_exit_codes']}\nbot log tail:\n{log}"


def bot_log(report: dict[str, Any]) -> str:
    return Path(report["bot_log"]).read_text()


def member(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(row for row in report["members"] if row["name"] == name)


async def test_sigterm_mid_voice_loses_nothing(tmp_path):
    report = await run("sigterm_mid_voice", tmp_path)
    assert report["bot_exit_codes"] == [0, 0]
    ada, bob = member(report, "ada"), member(report, "bob")
    assert ada["tracked"]["voice_s"] >= 8 and ada["tracked"]["cam_on_s"] >= 6
    assert bob["tracked"]["stream_s"] >= 7 and bob["tracked"]["messages"] == 1
    assert (ada["unobservable"]["voice_s"], ada["unobservable"]["messages"]) == (0, 0)


async def test_sigkill_mid_voice_credits_the_downtime_of_a_member_who_stayed(tmp_path):
    report = await run("sigkill_member_stays", tmp_path)
    assert report["bot_exit_codes"][0] == -9
    ada = member(report, "ada")
    assert ada["truth"]["cam_on_s"] >= 8  # includes the 3 s the bot was down
    assert member(report, "cy")["tracked"]["voice_s"] == 0  # the AFK channel is not activity


async def test_sigkill_with_a_member_leaving_during_downtime_closes_at_the_checkpoint(tmp_path):
    report = await run("sigkill_member_leaves", tmp_path)
    ada, bob = member(report, "ada"), member(report, "bob")
    assert ada["unobservable"]["voice_s"] == pytest.approx(1.3, abs=0.5)  # left 1.3 s into the downtime
    assert ada["tracked"]["voice_s"] == pytest.approx(2.2, abs=1.5)  # closed at the last checkpoint
    assert bob["tracked"]["voice_s"] == pytest.approx(9.0 - 0.2, abs=1.5)


def report_member_id(report: dict[str, Any], name: str) -> str:
    return next(row["discord_id"] for row in report["members"] if row["name"] == name)


def command(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["commands"] if c["name"] == name)


def embed_fields(response: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in response["embeds"][0]["fields"]}


async def test_joins_during_downtime_are_attributed_when_unambiguous(tmp_path):
    report = await run("joins_during_downtime", tmp_path)
    assert member(report, "finn")["tracked"]["invited_by"] == "bob"  # joined while the bot was killed
    assert member(report, "hana")["tracked"]["invited_by"] == "ada"  # joined during a redeploy
    assert member(report, "ivo")["tracked"]["invited_by"] == "ada"
    assert embed_fields(command(report, "invites who"))["Source"] == "matched after downtime"


async def test_a_staff_code_added_right_before_a_redeploy_is_there_after_it(tmp_path):
    """Seed 001: the staff code added minutes before a redeploy vanished with a stale backup."""
    report = await run("staff_code_before_redeploy", tmp_path)
    staff = command(report, "invites-admin staff list")
    bob = report_member_id(report, "bob")
    assert staff["embeds"][0]["description"] == f"<@{bob}>: code `bobs`, 2 invites, 1 conversion (rate 50%)"


async def test_a_reset_stays_reset_across_a_crash(tmp_path):
    report = await run("reset_then_restart", tmp_path)
    assert "Backup id: `ib-" in command(report, "invites-admin reset")["content"]
    shown = command(report, "invites show")["embeds"][0]["description"]
    assert shown.endswith(": **1 invite** (1 join)"), shown  # only the join after it, no bonus


async def test_sixty_seconds_of_traffic_with_mongodb_stopped_for_twenty(tmp_path):
    report = await run("outage_mixed_traffic", tmp_path)
    assert [member(report, n)["tracked"]["messages"] for n in ("ada", "bob", "cy")] == [40, 40, 40]
    assert [member(report, f"new{i}")["tracked"]["invited_by"] for i in (203, 204, 205)] == ["ada"] * 3
    log = bot_log(report)
    assert "kept in the outbox" in log and "outbox drained" in log  # the outbox was used


async def test_a_crash_and_restart_while_mongodb_is_still_down_lose_nothing(tmp_path):
    report = await run("outage_crash_restart", tmp_path)
    assert member(report, "bob")["tracked"]["messages"] == 3
    assert member(report, "ada")["tracked"]["cam_on_s"] == pytest.approx(9, abs=1.5)
    log = bot_log(report)
    assert "replaying them first" in log  # the new process found the killed one's outbox


# ---- issue 13: write-ahead and bounded shutdown, with the real process -----------------------------
async def test_messages_up_to_250_ms_before_a_sigkill_in_the_first_second_of_an_outage_all_count(tmp_path):
    """Issue 13, 5: the outage is not noticed yet (the 2 s ping), the writes are still retrying; the
    last message comes 300 ms before the SIGKILL. Each must be in MongoDB or the local log by then."""
    report = await run("sigkill_first_second_of_outage", tmp_path)
    assert report["bot_exit_codes"][0] == -9
    assert member(report, "bob")["tracked"]["messages"] == 4
    assert member(report, "cy")["tracked"]["messages"] == 2
    assert "replaying them first" in bot_log(report)


async def test_sigterm_with_mongodb_down_exits_within_8_s_and_the_next_start_has_every_count(
        tmp_path, monkeypatch):
    """Issue 13, 6: the shutdown used to take 45-50 s with MongoDB down (past Docker's 10 s)."""
    from scripts.scenario import runner

    durations: list[tuple[str, float]] = []
    stop = runner.BotProcess.stop

    async def timed(self: Any, sig: str, timeout: float = 60.0) -> int | None:
        started = time.monotonic()
        code = await stop(self, sig, timeout)
        durations.append((sig, time.monotonic() - started))
        return code

    monkeypatch.setattr(runner.BotProcess, "stop", timed)
    report = await run("sigterm_during_outage", tmp_path)
    assert report["bot_exit_codes"] == [0, 0]
    sig, seconds = durations[0]
    assert sig == "SIGTERM" and seconds < 8.0, durations
    assert member(report, "bob")["tracked"]["messages"] == 3
    assert member(report, "cy")["tracked"]["messages"] == 2


async def test_joins_and_a_leave_during_an_outage_with_a_sigkill_inside_it_are_all_attributed(tmp_path):
    """Issue 13, 4 / issue 14, 4: the invite jobs of an outage (four joins a second or more apart, one
    leave) were only in memory; a SIGKILL inside the outage lost them. The invite journal keeps
    them and the invite reads made for them, so each join keeps its inviter, as without the outage."""
    report = await run("joins_and_leave_during_outage_sigkill", tmp_path)
    assert report["bot_exit_codes"][0] == -9
    inviters = [member(report, n)["tracked"]["invited_by"] for n in ("eve", "finn", "gil", "hana")]
    assert inviters == ["ada", "bob", "vanity", "ada"]
    for who in report["commands"]:
        assert embed_fields(who)["Source"] == "invite", who
    assert "events of the previous run are taken up again" in bot_log(report)


async def test_messages_sent_during_sigterm_and_sigkill_redeploys_are_counted_once(tmp_path):
    """Issue 19: five redeploys (SIGTERM and SIGKILL, 2-5 s down) under steady traffic in five
    channels and a thread: what was sent while the bot was down is counted from the channels'
    history after each start, exactly once (the report's `ok` compares every member with the truth)."""
    report = await run("redeploys_under_message_traffic", tmp_path)
    assert report["bot_exit_codes"][:5] == [0, -9, 0, -9, 0]
    rows = [member(report, name) for name in ("ada", "bob", "cy")]
    assert sum(r["truth"]["messages"] for r in rows) == 171
    assert all(r["tracked"]["messages"] == r["truth"]["messages"] for r in rows)
    assert all(r["unobservable"]["messages"] == 0 for r in rows)
    assert "backfill of guild 1: backfilled" in bot_log(report)


async def test_messages_across_a_sigkill_inside_a_mongodb_outage_are_counted_once(tmp_path):
    """Issue 19: MongoDB goes away, the bot is SIGKILLed during the outage and restarts while it is
    still away (writes waited in the outbox), then a SIGTERM redeploy: live counts, outbox replays
    and history backfills add up to the truth, none doubled. One channel's history is not readable:
    what was sent there while the bot was away is unobservable, reported once per start."""
    report = await run("redeploys_with_db_outage", tmp_path)
    assert report["bot_exit_codes"][:2] == [-9, 0]
    rows = [member(report, name) for name in ("ada", "bob", "cy")]
    unobservable = sum(r["unobservable"]["messages"] for r in rows)
    assert sum(r["truth"]["messages"] for r in rows) + unobservable == 104 and unobservable > 0
    assert all(r["tracked"]["messages"] == r["truth"]["messages"] for r in rows)
    assert bot_log(report).count("channel 11: no Read Message History") == 3  # once per start


@pytest.mark.timeout(600)
async def test_twenty_sigterm_and_twenty_sigkill_redeploys_under_steady_traffic_count_every_message_once(
        tmp_path):
    """Issue 19, done-when: 20 consecutive redeploys (2-5 s down each) under steady traffic in five
    channels and a thread, once with SIGTERM and once with SIGKILL; every member's message count
    equals the truth, none doubled. The two runs (each its own bot, emulator and database) go side
    by side: about 4 min together rather than 8 one after the other."""
    expected = {"sigterm": 628, "sigkill": 667}
    reports = await asyncio.gather(*(
        run(f"twenty_{signal}_redeploys_under_traffic", tmp_path / signal) for signal in expected))
    for signal, report in zip(expected, reports, strict=True):
        assert len(report["bot_exit_codes"]) == 21, signal
        rows = [member(report, name) for name in ("ada", "bob", "cy")]
        assert sum(r["truth"]["messages"] for r in rows) == expected[signal]
        assert all(r["unobservable"]["messages"] == 0 for r in rows), signal
