"""`python main.py --demo`: a compressed day in a study server, run offline against the emulator."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import parse_scenario
from scripts.scenario.report import render_table

DEMO = Path(__file__).with_name("demo.json")


def _ud_text(report: dict[str, Any]) -> str:
    for command in report["commands"]:
        if command["name"] == "ud" and command["embeds"]:
            embed = command["embeds"][0]
            lines = [embed.get("title") or "/ud"]
            lines += [f"  {f['name']}: {f['value']}" for f in embed.get("fields", [])]
            return "\n".join(lines)
    return "(no /ud response was recorded)"


def run_demo() -> int:
    scenario = parse_scenario(json.loads(DEMO.read_text(encoding="utf-8")), name="demo")
    print(f"Demo: {len(scenario.steps)} events in a study server, with a SIGTERM redeploy and a SIGKILL "
          "crash of the real bot process, on the embedded database; no Discord token needed.", flush=True)
    report = asyncio.run(run_and_report(scenario))
    print()
    print(render_table(report))
    print()
    print(_ud_text(report))
    print()
    if report["ok"]:
        print("Every count in MongoDB matches the ground truth.")
        return 0
    print(f"DIFFERENCES found (see above); bot log: {report['bot_log']}")
    return 1
