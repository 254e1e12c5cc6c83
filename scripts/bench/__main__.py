"""`python -m scripts.bench [--quick] [--only CASE ...]`: run the cases, print and write the table,
write bench-results.json.

Exit code 1 when an exactness check failed (speed never fails the run), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.storage.database import make_client
from scripts.bench import env, report
from scripts.bench.run import CASES, run_all
from scripts.bench.sizes import FULL, QUICK, with_members

log = logging.getLogger("scripts.bench")
BENCH_SOCKET_TIMEOUT_MS = 600_000


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every case small (CI); checks exactness only")
    parser.add_argument("--only", nargs="+", choices=CASES, metavar="CASE",
                        help=f"run only these cases ({', '.join(CASES)}; restart brings flush along)")
    parser.add_argument("--members", type=int, metavar="N",
                        help="members of the server in the cases that grow with it (commands, invites); "
                             "default: 100,000 (2,000 with --quick)")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="results file")
    parser.add_argument("--table", type=Path, default=Path("bench-results.md"), help="Markdown table file")
    return parser.parse_args(argv)


async def is_real_mongodb(db: Any) -> bool:
    """nx-27017 answers buildInfo too; only a server that is not it can show real query plans."""
    info = await db.command("buildInfo")
    return info.get("process") != "nx_27017"


async def bench(server: env.Server, args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    if args.members is not None:
        sizes = with_members(sizes, args.members)
    # nx-27017 answers the /ud and /top aggregations over 400,000 documents more slowly than the
    # bot's 10 s socket timeout; the benchmark waits, to report how long they take.
    client = make_client(server.uri, app_name="bench", socket_timeout_ms=BENCH_SOCKET_TIMEOUT_MS)
    name = env.database_name()
    try:
        db = client[name]
        real = await is_real_mongodb(db)
        log.info("benchmark (%s sizes) on %s, database %s", sizes.name, server.kind, name)
        only = frozenset(args.only) if args.only else None
        results = await run_all(db, sizes, real_mongodb=real, only=only)
    finally:
        await client.drop_database(name)
        await client.close()
    command = ("python -m scripts.bench" + (" --quick" if args.quick else "")
               + (f" --members {args.members}" if args.members is not None else "")
               + (" --only " + " ".join(args.only) if args.only else ""))
    machine = env.machine(server.kind)
    table = report.table(results.rows, results.checks)
    header = (f"Ran {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{command}` ({sizes.name} sizes, "
              f"{results.seconds:.0f} s); {machine['nproc']} CPUs, {machine['memory_total']} RAM, "
              f"Python {machine['python']}, {machine['database']}.")
    report.write(args.json, {"command": command, "sizes": vars(sizes), "machine": machine,
                             **results.to_json()})
    args.table.write_text(header + "\n\n" + table + "\n")
    print(header + "\n\n" + table)
    if not results.exact:
        print("\nExactness FAILED:\n" + report.failed_checks(results.checks))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("discord", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log.info("command: %s", shlex.join([sys.executable, "-m", "scripts.bench", *(argv or sys.argv[1:])]))
    with env.server() as server:
        return asyncio.run(bench(server, args))


if __name__ == "__main__":
    sys.exit(main())
