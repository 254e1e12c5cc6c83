"""`python -m scripts.campaign --seed N` runs one seeded scenario and checks it;
`python -m scripts.campaign --runs N --minutes M` runs a campaign (docs/reliability.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from scripts.campaign.generate import FAULT_KINDS, scenario_for
from scripts.campaign.run import campaign, fails_like, run_seed, shrink, table


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.campaign", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--runs", type=int, help="run a campaign of this many seeds")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=60.0, help="no new run starts after this")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--seconds", type=float, default=30.0, help="scenario length")
    parser.add_argument("--rate", type=float, default=3.0, help="traffic events per second")
    parser.add_argument("--faults", type=int, default=3, help="faults per run (at most)")
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS), help="fault kinds to draw from")
    parser.add_argument("--print-scenario", action="store_true", help="print the seed's scenario and stop")
    parser.add_argument("--shrink", action="store_true", help="cut a failing seed's scenario to a small one")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--result", type=Path, help="write the run's result here (JSON)")
    parser.add_argument("--out", type=Path, default=Path("campaign-results.json"))
    return parser.parse_args(argv)


def params(args: argparse.Namespace) -> dict[str, Any]:
    return {"seconds": args.seconds, "rate": args.rate, "faults": args.faults,
            "kinds": tuple(k for k in args.kinds.split(",") if k)}


def one(args: argparse.Namespace) -> int:
    if args.print_scenario:
        print(json.dumps(scenario_for(args.seed, **params(args)), indent=1))
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"campaign-{args.seed}-"))
    result = run_seed(args.seed, params(args), workdir)
    if args.result:
        args.result.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    verdict = "clean" if result["ok"] else f"VIOLATIONS {json.dumps(result['violations'], indent=1)}"
    print(f"seed {args.seed}: {result['events']} events, faults {result['faults']}: {verdict}")
    if not result["ok"] and args.shrink:
        small = shrink(scenario_for(args.seed, **params(args)), fails_like(result))
        path = workdir / f"campaign-{args.seed}-shrunk.json"
        path.write_text(json.dumps(small, indent=1) + "\n", encoding="utf-8")
        print(f"shrunk to {len(small['steps'])} steps: {path} (run it: python -m scripts.scenario {path})")
    if not result["ok"]:
        print(f"scenario: {result.get('scenario_file')}; bot log: {result.get('bot_log')}")
    return 0 if result["ok"] else 1


def many(args: argparse.Namespace) -> int:
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="campaign-"))

    def progress(result: dict[str, Any]) -> None:
        state = "clean" if result["ok"] else "VIOLATIONS: " + ", ".join(result["violations"])
        print(f"seed {result['seed']}: {result['events']} events, {result.get('seconds', 0)}s, {state}",
              flush=True)

    results = campaign(seeds, params(args), jobs=args.jobs, minutes=args.minutes, workdir=workdir,
                       on_result=progress)
    print(table(results))
    args.out.write_text(json.dumps({"params": {**params(args), "kinds": args.kinds}, "results": results},
                                   indent=1) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0 if all(r["ok"] for r in results) and len(results) == len(seeds) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.seed is not None:
        return one(args)
    if args.runs:
        return many(args)
    print("give --seed N or --runs N", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
