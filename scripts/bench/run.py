"""Run every case on one database, in order; collect rows and exactness checks."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.bench import backfill, commands, flush, ingest, invite_board, joins, latency, restart
from scripts.bench.env import Bench
from scripts.bench.measure import Check, Row, max_rss_bytes, mib
from scripts.bench.sizes import Sizes

log = logging.getLogger(__name__)
Case = Callable[[Bench], Awaitable[tuple[list[Row], list[Check]]]]
# names for --only
CASES = ("ingest", "latency", "flush", "restart", "commands", "invites", "joins", "backfill")
NEEDS = {"restart": "flush"}  # the restart case reconciles the sessions the flush case leaves


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "exact": self.exact,
            "rows": [row.to_json() for row in self.rows],
            "checks": [vars(check) for check in self.checks],
        }


async def run_all(db: Any, sizes: Sizes, *, real_mongodb: bool = False,
                  only: frozenset[str] | None = None) -> Results:
    """Every case (or those in `only`) on `db` (which should be empty), flush before restart."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as data_dir:
        bench = Bench(db, sizes, Path(data_dir))
        await bench.setup()
        try:
            results = await _cases(bench, real_mongodb, only)
        finally:
            await bench.close()
    peak = max_rss_bytes()
    results.rows.append(Row("memory", "peak RSS of the whole run (getrusage)", mib(peak),
                            values={"bytes": peak}))
    results.seconds = time.perf_counter() - started
    return results


async def _cases(bench: Bench, real_mongodb: bool, only: frozenset[str] | None) -> Results:
    cases: list[tuple[str, str, Case]] = [
        ("ingest", "ingest", ingest.run),
        ("latency", "ingest latency", latency.run),
        ("flush", "flush", flush.run),
        ("restart", "restart", restart.run),
        ("commands", "/ud /top", lambda b: commands.run(b, real_mongodb)),
        ("invites", "/invites", invite_board.run),
        ("joins", "join burst", joins.run),
        ("backfill", "backfill", backfill.run),
    ]
    wanted = set(CASES if only is None else only)
    wanted |= {NEEDS[key] for key in wanted if key in NEEDS}
    results = Results()
    for key, name, case in cases:
        if key not in wanted:
            continue
        case_started = time.perf_counter()
        rows, checks = await case(bench)
        results.rows += rows
        results.checks += checks
        failed = [c.name for c in checks if not c.ok]
        log.info("%s done in %.1f s; exactness: %s", name, time.perf_counter() - case_started,
                 "FAILED " + ", ".join(failed) if failed else "ok")
    return results
