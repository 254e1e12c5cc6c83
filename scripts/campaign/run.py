"""One campaign run (a seed: generate, run the real bot against the emulator, check), a campaign
(many seeds in parallel processes, a table, `campaign-results.json`) and the shrinker."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.campaign.check import INVARIANTS, check
from scripts.campaign.generate import scenario_for
from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import ScenarioError, parse_scenario
from scripts.scenario.report import write_report

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
TRAFFIC = {"message", "voice", "join", "leave", "role_add", "role_remove", "invite_create", "invite_delete",
           "command"}


# The fault kinds of issue 15's list, by the steps that perform them.
KIND_OF_STEP = {"db_faults": "db_proxy", "db_late_request": "db_proxy", "db_write_concern_error": "db_proxy",
                "rest_fault": "rest", "guild_unavailable": "guild_outage"}


def faults_of(scenario: dict[str, Any]) -> Counter[str]:
    """Faults by kind, as the runner performs them (a SIGKILL inside an outage is one of each)."""
    found: Counter[str] = Counter()
    for step in scenario["steps"]:
        if step["do"] == "restart":
            found[step["signal"].lower()] += 1
        elif step["do"] not in TRAFFIC and step["do"] != "guild_available":
            found[KIND_OF_STEP.get(step["do"], step["do"])] += 1
    return found


def fault_details(scenario: dict[str, Any]) -> Counter[str]:
    """The same, finer: which proxy fault, which REST status on which route."""
    found: Counter[str] = Counter()
    for step in scenario["steps"]:
        if step["do"] == "rest_fault":
            found[f"rest {step['status']} {step['route']}"] += 1
        elif KIND_OF_STEP.get(step["do"]) == "db_proxy":
            found[step["do"]] += 1
    return found


def events_of(scenario: dict[str, Any]) -> int:
    return sum(1 for step in scenario["steps"] if step["do"] in TRAFFIC)


async def run_scenario(scenario: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one scenario and check it: {ok, violations, unattributed, joins, events, faults, seconds};
    the full report goes to `workdir/report.json`."""
    started = time.monotonic()
    parsed = parse_scenario(scenario, name=scenario.get("name", "campaign"))
    report = await run_and_report(parsed, workdir=workdir)
    write_report(report, workdir / "report.json")  # the commands' answers, truth and tracked, per member
    signals = [step["signal"] for step in scenario["steps"] if step["do"] == "restart"]
    verdict = check(report, signals, held_restarts=_held_restarts(scenario))
    return {
        "ok": verdict.ok,
        "violations": {k: v for k, v in verdict.violations.items() if v},
        "unattributed": verdict.unattributed,
        "joins": verdict.joins,
        "events": events_of(scenario),
        "faults": dict(faults_of(scenario)),
        "fault_details": dict(fault_details(scenario)),
        "seconds": round(time.monotonic() - started, 1),
        "bot_log": report.get("bot_log"),
    }


def _held_restarts(scenario: dict[str, Any]) -> int:
    held = [(s["at"], s["at"] + s["for"]) for s in scenario["steps"] if s["do"] == "member_list_held"]
    return sum(1 for s in scenario["steps"] if s["do"] == "restart"
               and any(start <= s["at"] <= end for start, end in held))


def run_seed(seed: int, params: dict[str, Any], workdir: Path) -> dict[str, Any]:
    scenario = scenario_for(seed, **params)
    result = asyncio.run(run_scenario(scenario, workdir))
    result["seed"] = seed
    if not result["ok"]:
        path = workdir / f"campaign-{seed}.json"
        path.write_text(json.dumps(scenario, indent=1) + "\n", encoding="utf-8")
        result["scenario_file"] = str(path)
    return result


# ---- the campaign: seeds in parallel processes ----------------------------------------------------
def campaign(seeds: list[int], params: dict[str, Any], *, jobs: int, minutes: float, workdir: Path,
             on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run `seeds` (each `python -m scripts.campaign --seed N` in its own process), `jobs` at a
    time; no new run starts after `minutes`."""
    deadline = time.monotonic() + minutes * 60
    pending = list(seeds)
    running: list[tuple[int, subprocess.Popen[bytes], Path]] = []
    results: list[dict[str, Any]] = []
    while pending or running:
        while pending and len(running) < jobs and time.monotonic() < deadline:
            seed = pending.pop(0)
            running.append(_start(seed, params, workdir))
        if not running:
            break
        time.sleep(0.5)
        for entry in list(running):
            seed, process, out = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            result = _read_result(seed, process, out)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _start(seed: int, params: dict[str, Any], workdir: Path) -> tuple[int, subprocess.Popen[bytes], Path]:
    folder = workdir / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "result.json"
    command = [sys.executable, "-m", "scripts.campaign", "--seed", str(seed), "--result", str(out),
               "--workdir", str(folder), *_param_flags(params)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=(folder / "campaign.log").open("wb"))
    return seed, process, out


def _param_flags(params: dict[str, Any]) -> list[str]:
    flags = []
    for key, value in params.items():
        flags += [f"--{key}", ",".join(value) if isinstance(value, tuple) else str(value)]
    return flags


def _read_result(seed: int, process: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    if out.exists():
        return json.loads(out.read_text(encoding="utf-8"))
    return {"seed": seed, "ok": False, "violations": {"run_failed": [f"exit code {process.returncode}"]},
            "events": 0, "faults": {}, "seconds": 0, "joins": 0, "unattributed": 0}


def table(results: list[dict[str, Any]]) -> str:
    faults: Counter[str] = Counter()
    details: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    for result in results:
        faults.update(result.get("faults", {}))
        details.update(result.get("fault_details", {}))
        violations.update({k: len(v) for k, v in result.get("violations", {}).items()})
    lines = [
        f"runs: {len(results)} ({sum(1 for r in results if r['ok'])} clean), "
        f"events: {sum(r.get('events', 0) for r in results)}, "
        f"joins: {sum(r.get('joins', 0) for r in results)} "
        f"({sum(r.get('unattributed', 0) for r in results)} unattributed, allowed)",
        "",
        "| fault | count |", "|---|---|",
        *(f"| {kind} | {count} |" for kind, count in sorted(faults.items())),
        "",
        "| of which | count |", "|---|---|",
        *(f"| {kind} | {count} |" for kind, count in sorted(details.items())),
        "",
        "| invariant | violations |", "|---|---|",
        *(f"| {name} | {violations.get(name, 0)} |" for name in (*INVARIANTS, "run_failed")),
    ]
    failing = [r for r in results if not r["ok"]]
    if failing:
        lines += ["", "failing seeds (replay: python -m scripts.campaign --seed N):"]
        lines += [f"- {r['seed']}: {', '.join(r['violations'])} {r.get('scenario_file', '')}"
                  for r in failing]
    return "\n".join(lines)


# ---- the shrinker ----------------------------------------------------------------------------------
def shrink(scenario: dict[str, Any], still_fails: Callable[[dict[str, Any]], bool],
           *, attempts: int = 16) -> dict[str, Any]:
    """Cut steps from a failing scenario while it still fails (delta debugging on the step list:
    halves, then quarters, ...; a cut that makes the scenario invalid does not count)."""
    steps = list(scenario["steps"])
    chunk = max(len(steps) // 2, 1)
    while chunk >= 1 and attempts > 0:
        start, cut_any = 0, False
        while start < len(steps) and attempts > 0:
            candidate = {**scenario, "steps": steps[:start] + steps[start + chunk:]}
            if _valid(candidate):
                attempts -= 1
                if still_fails(candidate):
                    steps, cut_any = candidate["steps"], True
                    continue
            start += chunk
        if not cut_any:
            chunk //= 2
    return {**scenario, "steps": steps}


def _valid(scenario: dict[str, Any]) -> bool:
    try:
        parse_scenario(scenario)
    except ScenarioError:
        return False
    return bool(scenario["steps"])


def fails_like(result: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for the shrinker: the candidate breaks one of the invariants `result` broke."""
    broken = set(result["violations"])

    def still_fails(candidate: dict[str, Any]) -> bool:
        with tempfile.TemporaryDirectory(prefix="shrink-") as folder:
            again = asyncio.run(run_scenario(candidate, Path(folder)))
        return bool(broken & set(again["violations"]))

    return still_fails
