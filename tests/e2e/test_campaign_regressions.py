"""End to end: the fault campaign's findings, each cut to a small scenario that failed before its
fix (docs/reliability.md lists them)."""

from __future__ import annotations

from pathlib import Path

from scripts.campaign.check import check
from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import load_scenario

SCENARIOS = Path(__file__).parent / "scenarios"


async def test_seed_23_members_who_left_voice_or_the_guild_during_a_guild_outage(tmp_path):
    """bob leaves voice and eve leaves the guild while it is unavailable: bob is credited up to the
    outage only (was: through it and until his next voice change), eve's leave is recorded (was:
    never, her inviter kept the join)."""
    scenario = load_scenario(SCENARIOS / "voice_and_member_leave_during_guild_outage.json")
    report = await run_and_report(scenario, workdir=tmp_path)
    bob = next(r for r in report["members"] if r["name"] == "bob")
    assert bob["tracked"]["voice_s"] <= bob["truth"]["voice_s"] + report["voice_tolerance_s"]
    ada = next(r for r in report["inviters"] if r["name"] == "ada")
    assert ada["tracked"]["left"] == ada["truth"]["left"] == 1
    assert check(report, []).ok, check(report, []).violations


async def test_seed_36_a_voice_change_while_sigterm_shuts_the_bot_down(tmp_path):
    """bob moves to AFK just after the SIGTERM, while the bot still flushes with its gateway open,
    and back into voice while it is down. The bot sees the move (its last state is AFK, so the
    downtime is not credited); the truth took the signal as the moment the bot went down (its last
    state then: in voice, downtime credited) and asked for seconds the bot rightly did not count."""
    scenario = load_scenario(SCENARIOS / "voice_change_during_sigterm_shutdown.json")
    report = await run_and_report(scenario, workdir=tmp_path)
    bob = next(r for r in report["members"] if r["name"] == "bob")
    assert abs(bob["tracked"]["voice_s"] - bob["truth"]["voice_s"]) <= report["voice_tolerance_s"], bob
    verdict = check(report, ["SIGTERM"])
    assert verdict.ok, verdict.violations
