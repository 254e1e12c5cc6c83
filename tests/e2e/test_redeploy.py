"""End to end: the real bot process (`python main.py`) against the Discord emulator, killed and
restarted while events flow; afterwards MongoDB must match the ground truth."""

from __future__ import annotations

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


def member(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(row for row in report["members"] if row["name"] == name)


async def test_sigterm_mid_voice_loses_nothing(tmp_path):
    report = await run("sigterm_mid_voice", tmp_path)
    assert report["bot_exit_codes"] == [0, 0]
    ada, bob = member(report, "ada"), member(report, "bob")
    assert ada["tracked"]["voice_s"] >= 8 and ada["tracked"]["cam_on_s"] >= 6
    assert bob["tracked"]["stream_s"] >= 7 and bob["tracked"]["messages"] == 1
    assert ada["unobservable"] == {"voice_s": 0, "messages": 0}


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
