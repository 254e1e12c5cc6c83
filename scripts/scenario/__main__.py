"""`python -m scripts.scenario SCENARIO.json [--report out.json]`: run a scenario, compare, report.

Exit code 0 when everything MongoDB holds matches the ground truth (voice within 1.5 s per
restart), 1 when something differs, 2 when the scenario file is malformed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from scripts.scenario.model import Scenario, ScenarioError, load_scenario
from scripts.scenario.report import build_report, render_table, write_report
from scripts.scenario.runner import ScenarioRunner


async def run_and_report(scenario: Scenario, *, workdir: Path | None = None,
                         mongodb_uri: str | None = None) -> dict[str, Any]:
    runner = ScenarioRunner(scenario, workdir=workdir, mongodb_uri=mongodb_uri)
    try:
        result = await runner.run()
        return await build_report(result)
    finally:
        runner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.scenario", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path, help="scenario JSON file (format: docs/scenarios.md)")
    parser.add_argument("--report", type=Path, help="write the full report as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep the bot's log and data here (default: a temp dir)")
    parser.add_argument("--mongodb-uri", help="use this MongoDB instead of a fresh embedded one")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scenario = load_scenario(args.scenario)
        report = asyncio.run(run_and_report(scenario, workdir=args.workdir, mongodb_uri=args.mongodb_uri))
    except ScenarioError as exc:
        print(f"scenario: {exc}", file=sys.stderr)
        return 2
    print(render_table(report))
    if args.report:
        write_report(report, args.report)
        print(f"report written to {args.report}")
    print("everything matches" if report["ok"] else f"DIFFERENCES found; bot log: {report['bot_log']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
