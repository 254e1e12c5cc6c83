"""The fault campaign: reproducible scenarios, a checker that sees every kind of violation, and a
short run of fixed seeds with the real bot (CI's campaign)."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.campaign.broken import ROOT, broken_copy
from scripts.campaign.check import check
from scripts.campaign.generate import FAULT_KINDS, scenario_for
from scripts.campaign.run import fault_details, faults_of, shrink
from scripts.scenario.model import parse_scenario
from scripts.scenario.runner import CommandResult, confirmed_backup, confirmed_effect

# Between them: a slow member list with a SIGKILL inside it, a SIGTERM, a second process, a guild
# outage, a gateway reconnect, writeConcernErrors, a REST fault, /data erase refused to a member.
CI_SEEDS = (11, 38, 117)


def test_the_same_seed_gives_the_same_scenario_and_every_scenario_is_valid() -> None:
    for seed in range(1, 30):
        first, again = scenario_for(seed), scenario_for(seed)
        assert first == again
        parse_scenario(copy.deepcopy(first))  # raises on anything the runner would refuse
    assert scenario_for(1) != scenario_for(2)


def test_a_long_campaign_draws_every_fault_kind_at_least_40_times() -> None:
    """The long run of docs/reliability.md: 200 seeds with the default parameters."""
    seen: Counter[str] = Counter()
    details: Counter[str] = Counter()
    for seed in range(1, 201):
        seen.update(faults_of(scenario_for(seed)))
        details.update(fault_details(scenario_for(seed)))
    kinds = {"sigterm", "sigkill", "db_outage", "db_proxy", "gateway_reconnect", "invalid_session",
             "guild_outage", "second_process", "member_list_held", "rest"}
    assert set(seen) == kinds and min(seen.values()) >= 40, seen
    assert {"db_faults", "db_late_request", "db_write_concern_error"} <= set(details)
    assert any(d.startswith("rest 429 ") for d in details) and any(d.startswith("rest 503 ") for d in details)
    assert {d.split()[-1] for d in details if d.startswith("rest ")} == {"invites", "history"}
    assert len(FAULT_KINDS) == 11


def test_a_long_campaign_draws_restores_and_staff_codes_and_a_seed_stays_the_same() -> None:
    """The admin commands of the issue: `/invites-admin restore` of the last reset and `staff add`
    (also of a code another member holds: refused), `staff remove`, each also by a member without
    Manage Server (`override`)."""
    drawn: Counter[tuple[str, bool]] = Counter()
    taken_codes = 0
    for seed in range(1, 201):
        scenario = scenario_for(seed)
        assert scenario == scenario_for(seed)
        commands = [s for s in scenario["steps"] if s["do"] == "command"]
        drawn.update((c["name"], bool(c.get("override"))) for c in commands)
        assert all(c["options"] == {"backup_id": "@last_reset"} for c in commands
                   if c["name"] == "invites-admin restore")
        taken_codes += _adds_of_a_held_code(commands)
    for name in ("invites-admin restore", "invites-admin staff add", "invites-admin staff remove"):
        assert drawn[(name, False)] >= 20 and drawn[(name, True)] >= 10, drawn
    assert taken_codes >= 5
    restores = [seed for seed in range(1, 201) if any(
        s.get("name") == "invites-admin restore" for s in scenario_for(seed)["steps"])]
    assert len(restores) >= 50


def _adds_of_a_held_code(commands: list[dict[str, Any]]) -> int:
    """Staff adds by the admin of a code the admin gave another member before (and did not remove)."""
    holders: dict[str, int] = {}
    found = 0
    for command in commands:
        if command.get("override"):
            continue
        options = command.get("options", {})
        if command["name"] == "invites-admin staff remove":
            holders = {code: m for code, m in holders.items() if m != options["member"]}
        elif command["name"] == "invites-admin staff add":
            holder = holders.get(options["code"])
            if holder is not None and holder != options["member"]:
                found += 1
            else:
                holders = {code: m for code, m in holders.items() if m != options["member"]}
                holders[options["code"]] = options["member"]
    return found


def answered(name: str, content: str) -> CommandResult:
    return CommandResult(1, 1.0, 101, name, {}, content, [], True,
                         messages=[{"content": content, "embeds": []}])


def test_the_runner_reads_restores_and_staff_changes_from_the_bots_answers() -> None:
    """What the bot's reply confirms, with the backup id a reset answered or a restore gave back;
    refusals and errors confirm nothing. A confirmation to a member without Manage Server (a
    server override showed them the command) breaks `permissions_respected`."""
    cases = [
        ("invites-admin reset", "Invites of <@102> reset: 2 joins no longer counted. Backup id: "
                                "`ib-0123456789ab` - undo with `/invites-admin restore ib-0123456789ab`.",
         "reset", "ib-0123456789ab"),
        ("invites-admin restore", "Backup `ib-0123456789ab` restored: 2 joins counted again.",
         "restore", "ib-0123456789ab"),
        ("invites-admin restore", "There is no backup `ib-000000000000` in this server: give the id "
                                  "that `/invites-admin reset` answered with.", None, None),
        ("invites-admin restore", "Backup `ib-0123456789ab` was already restored.", None, None),
        ("invites-admin restore", "You need the **Manage Server** permission to use "
                                  "`/invites-admin restore`.", None, None),
        ("invites-admin staff add", "Staff code `abc` saved for <@102>.", "staff", None),
        ("invites-admin staff add", "`abc` already belongs to <@103>; remove it there first with "
                                    "`/invites-admin staff remove`.", None, None),
        ("invites-admin staff remove", "Staff code of <@102> removed.", "staff", None),
        ("invites-admin staff remove", "<@102> has no staff code; `/invites-admin staff list` shows "
                                       "who has one.", None, None),
    ]
    confirmed = []
    for name, content, effect, backup in cases:
        result = answered(name, content)
        result.effect = confirmed_effect(result)
        assert (result.effect, confirmed_backup(result)) == (effect, backup), content
        confirmed += [asdict(result)] if result.effect else []
    verdict = check(report([], commands=confirmed), [], logs=[])
    assert len(verdict.violations["permissions_respected"]) == len(confirmed) == 4


def member(name: str, tracked: dict[str, Any], truth: dict[str, Any], **unseen: Any) -> dict[str, Any]:
    return {"name": name, "tracked": tracked, "truth": truth,
            "unobservable": {"voice_s": 0.0, "messages": 0, "maybe_messages": 0, "losable_messages": 0,
                             **unseen}}


def report(members: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"voice_tolerance_s": 3.0, "members": members, "inviters": [], "commands": [],
            "bot_exit_codes": [0], "second_processes": [], **extra}


def test_the_checker_names_each_broken_promise() -> None:
    base = {"messages": 5, "voice_s": 60, "cam_on_s": 0, "cam_off_s": 60, "stream_s": 0}
    rows = [
        member("double", {**base, "messages": 6}, base),
        member("lost", {**base, "voice_s": 50, "cam_off_s": 50}, base),
        member("wrong", {**base, "invited_by": "bob"}, {**base, "invited_by": "ada"}),
        member("missing", {**base, "invited_by": None}, {**base, "invited_by": "ada"}),
        member("ambiguous", {**base, "invited_by": "unknown"}, {**base, "invited_by": "ada"}),
        member("maybe", {**base, "messages": 7}, base, maybe_messages=2),
        member("losable", {**base, "messages": 4}, base, losable_messages=1),
    ]
    inviters = [{"name": "ada", "tracked": {"regular": 3, "bonus": 0}, "truth": {"regular": 2, "bonus": 1}}]
    too_many_fields = [{"fields": [{"name": "n", "value": "v"}] * 26}]
    commands = [{"name": "top", "at": 1.0, "content": "x" * 2001, "embeds": []},
                {"name": "ud", "at": 2.0, "content": None, "embeds": too_many_fields},
                # a follow-up over the limit, though the first message is fine
                {"name": "invites show", "at": 3.0, "content": "ok", "embeds": [],
                 "messages": [{"content": "ok", "embeds": []}, {"content": "y" * 2001, "embeds": []}],
                 "manage_server": True},
                # a server override showed /invites-admin bonus to a member; the bot confirmed it
                {"name": "invites-admin bonus", "at": 4.0, "content": "+2 bonus invites for <@102>: now 2",
                 "embeds": [], "effect": "bonus", "manage_server": False},
                {"name": "invites-admin bonus", "at": 5.0, "content": "+2 bonus invites for <@102>: now 4",
                 "embeds": [], "effect": "bonus", "manage_server": True}]
    def channel(ident: int, tracked: int, truth: int, **unseen: int) -> dict[str, Any]:
        return {"id": ident, "tracked": tracked, "truth": truth,
                "unobservable": {"maybe_messages": 0, "losable_messages": 0, **unseen}}

    channels = [channel(10, 6, 5), channel(11, 4, 5), channel(12, 7, 5, maybe_messages=2),
                channel(13, 4, 5, losable_messages=1)]  # counted twice, lost, and two within bounds
    run = report(rows, inviters=inviters, commands=commands, bot_exit_codes=[1, 0], channels=channels)
    verdict = check(run, ["SIGTERM"], logs=[])
    found = {name: len(texts) for name, texts in verdict.violations.items() if texts}
    assert found == {"no_double_count": 1, "observed_counted": 2, "no_wrong_inviter": 1,
                     "every_join_recorded": 1, "inviter_figures": 2, "channel_counts": 2,
                     "replies_within_limits": 3, "permissions_respected": 1, "exit_codes": 1}
    assert verdict.violations["channel_counts"] == ["channel 10: 6 messages > truth 5 (+0 maybe seen)",
                                                    "channel 11: 4 messages < truth 5 (-0 losable)"]
    assert verdict.unattributed == 1 and verdict.joins == 3


def test_a_traceback_in_the_bot_log_is_a_violation(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("INFO fine\nTraceback (most recent call last):\n  File x\nKeyError: 'y'\n")
    verdict = check(report([]), [], logs=[log])
    assert list(verdict.violations["clean_log"]) and not verdict.ok


def test_the_shrinker_keeps_only_what_the_failure_needs() -> None:
    scenario = scenario_for(5)
    culprit = next(s for s in scenario["steps"] if s["do"] == "join")

    def still_fails(candidate: dict[str, Any]) -> bool:
        return culprit in candidate["steps"]

    small = shrink(scenario, still_fails, attempts=200)
    assert small["steps"] == [culprit]


async def run_seeds(seeds: tuple[int, ...], folder: Path, cwd: Path | None = None) -> list[dict[str, Any]]:
    """Each seed through `python -m scripts.campaign --seed N` (from `cwd`: another copy of the
    source), side by side."""
    async def one(seed: int) -> dict[str, Any]:
        out = folder / f"seed-{seed}.json"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.campaign", "--seed", str(seed),
            "--workdir", str(folder / f"seed-{seed}"), "--result", str(out),
            cwd=str(cwd or ROOT), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await process.wait()
        return json.loads(out.read_text(encoding="utf-8"))

    return list(await asyncio.gather(*(one(seed) for seed in seeds)))


async def test_ci_campaign_fixed_seeds_with_the_real_bot_break_no_invariant(tmp_path: Path) -> None:
    """CI's campaign: fixed seeds, each a 30 s scenario with faults, the real bot process."""
    for seed, result in zip(CI_SEEDS, await run_seeds(CI_SEEDS, tmp_path), strict=True):
        assert result["ok"], (seed, result["violations"], result.get("bot_log"))
        assert result["events"] > 50 and sum(result["faults"].values()) >= 3


async def test_a_build_without_the_message_guard_is_caught_by_the_ci_seeds(tmp_path: Path) -> None:
    """Issue 15, done-when: the same seeds against a copy of the source whose message counts lost
    their exactly-once guard. A writeConcernError (the write applied, the reply an error) makes the
    bot retry: the broken build counts those messages twice, and the campaign says so."""
    source = broken_copy("message_guard", tmp_path / "broken")
    results = await run_seeds(CI_SEEDS, tmp_path / "runs", cwd=source)
    doubled = [text for r in results for text in r["violations"].get("no_double_count", [])]
    assert any("messages" in text for text in doubled), [r["violations"] for r in results]
