"""End to end, issue 15: the scenario runner's truth about commands (Discord's permission model)
and the faults it injects between the bot and MongoDB (the fault proxy) and on REST routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from scripts.campaign.check import check
from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import load_scenario

SCENARIOS = Path(__file__).parent / "scenarios"


async def run(name: str, tmp_path: Path) -> dict[str, Any]:
    return await run_and_report(load_scenario(SCENARIOS / f"{name}.json"), workdir=tmp_path)


def row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["name"] == name)


async def test_bonus_and_reset_by_members_without_manage_server_change_nothing(tmp_path):
    """A server override shows `/invites-admin bonus` and `/invites-admin reset` to members: the
    bot's own check refuses them, and the truth (Discord's permission model) counts neither; the
    admin's do count."""
    report = await run("commands_without_manage_server", tmp_path)
    assert report["ok"], report
    commands = report["commands"]
    assert [c["manage_server"] for c in commands] == [True, False, False, True, True]
    assert [c["effect"] for c in commands[:4]] == ["bonus", None, None, "reset"]
    assert "Manage Server" in commands[1]["content"] and "Manage Server" in commands[2]["content"]
    bob = row(report["inviters"], "bob")
    assert bob["truth"]["bonus"] == bob["tracked"]["bonus"] == 2
    assert bob["truth"]["regular"] == bob["tracked"]["regular"] == 1  # cy's reset of bob was refused
    # every message a command produced is in the report, with its components and attachments
    seen = {"content", "embeds", "components", "attachments", "flags"}
    assert all(c["messages"] and seen <= set(c["messages"][0]) for c in commands)
    assert check(report, []).ok


async def test_lost_replies_late_writes_write_concern_errors_and_rest_faults_lose_and_double_nothing(
        tmp_path):
    """Replies lost after MongoDB applied a write, a write delivered 2 s late after the bot moved on,
    writeConcernErrors, and 429/503 on the invite reads while members join: every count and every
    inviter equal to the truth."""
    report = await run("db_proxy_and_rest_faults", tmp_path)
    assert report["ok"], [r for r in report["members"] + report["inviters"] if r["differences"]]
    assert [row(report["members"], n)["tracked"]["messages"] for n in ("ada", "bob", "cy")] == [6, 4, 4]
    assert row(report["members"], "eve")["tracked"]["invited_by"] == "ada"
    assert row(report["members"], "finn")["tracked"]["invited_by"] == "bob"
    log = Path(report["bot_log"]).read_text()  # noqa: ASYNC240 (a small file, after the run)
    assert "AutoReconnect" in log or "WriteConcernError" in log  # the faults reached the bot
    assert check(report, []).ok


async def test_an_erase_in_the_truth_counts_only_what_follows_it(tmp_path):
    """`/data erase` of eve (refused to bob, done by the admin): her messages and voice before it
    are gone; the message after it counts, her voice counts again from her next voice change, her
    join through bob's code is gone, so her rejoin through ada's is a first join."""
    report = await run("erase_during_traffic", tmp_path)
    assert report["ok"], [r for r in report["members"] + report["inviters"] if r["differences"]]
    assert [c["effect"] for c in report["commands"][:2]] == [None, "erase"]
    eve = row(report["members"], "eve")
    assert eve["truth"]["messages"] == eve["tracked"]["messages"] == 1
    assert 2.0 <= eve["tracked"]["voice_s"] <= 4.0  # 7.0 to 10.0
    assert eve["truth"]["invited_by"] == eve["tracked"]["invited_by"] == "ada"
    assert [r["name"] for r in report["inviters"]] == ["ada"]  # bob's join of eve was erased
    assert check(report, []).ok


async def test_a_command_during_a_guild_outage_waits_for_the_guild_without_blocking_the_steps(tmp_path):
    """Found by the campaign (seeds 6 and 41 on the latest code): a command drawn inside a guild
    outage waited for the guild in the step loop, so the step that ends the outage never ran and
    the run never ended."""
    report = await asyncio.wait_for(run("command_during_guild_outage", tmp_path), 120)
    assert report["ok"]
    assert len(report["commands"]) == 1 and report["commands"][0]["messages"]
