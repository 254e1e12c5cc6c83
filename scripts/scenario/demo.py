"""`python main.py --demo`: a compressed day in a study server, run offline against the emulator."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import parse_scenario
from scripts.scenario.report import render_table

DEMO = Path(__file__).with_name("demo.json")


MENTION = re.compile(r"<@!?(\d+)>")
TIMESTAMP = re.compile(r"<t:(-?\d+)(?::[tTdDfFR])?>")
MARKDOWN = re.compile(r"\*\*|__|`")
ESCAPED = re.compile(r"\\([*_`~|>\\])")


def plain(text: str, names: dict[str, str]) -> str:
    """Discord markup as a terminal shows it: `<@id>` as @name, `<t:..>` as a UTC time, no bold,
    underline or code marks, markdown escapes undone."""
    text = MENTION.sub(lambda m: "@" + names.get(m.group(1), "unknown member"), text)
    text = TIMESTAMP.sub(
        lambda m: datetime.fromtimestamp(int(m.group(1)), UTC).strftime("%Y-%m-%d %H:%M UTC"), text)
    return ESCAPED.sub(r"\1", MARKDOWN.sub("", text))


def _ud_text(report: dict[str, Any]) -> str:
    names = {str(row["discord_id"]): str(row["name"]) for row in report["members"]}
    for command in report["commands"]:
        if command["name"] == "ud" and command["embeds"]:
            embed = command["embeds"][0]
            lines = [embed.get("title") or "/ud"]
            lines += [f"  {embed['description']}"] if embed.get("description") else []
            # a field of several lines (the streak, the weekly goal) keeps its lines under its name
            lines += [f"  {f['name']}: " + f["value"].replace("\n", "\n    ")
                      for f in embed.get("fields", [])]
            return plain("\n".join(lines), names)
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
