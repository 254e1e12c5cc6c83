"""Write one guild's figures as a CSV file for a spreadsheet: the whole set, never cut.

    python -m scripts.export_csv --guild 123456789 leaderboard --period 30d
    python -m scripts.export_csv --guild 123456789 invites --out invites.csv
    python -m scripts.export_csv --guild 123456789 joins --out - > joins.csv
    python -m scripts.export_csv --guild 123456789 channels --period 7d

Exports: leaderboard (activity per member), invites (figures per inviter, staff codes), joins (one
row per join), channels (messages per channel; no channel names here: that column stays empty).
Periods: today, 7d, 30d, all (default), in the guild's time zone. The file is UTF-8 with a BOM,
ids as text, dates in UTC (columns: docs/export.md); default name
`<export>-<period>-<guild>-<YYYYMMDD>.csv` in the current folder. Connects like the bot:
MONGODB_URI, or the embedded database in DATA_DIR when it is unset. Prints one line with the rows
written (on stderr when the file goes to standard output); exit code 1 on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import BinaryIO

from pymongo.errors import PyMongoError

from app.operations.export import KINDS, ExportRequest, ExportResult, Sources, file_name, write_export
from app.storage.database import EmbeddedServerError
from app.storage.retry import RetryPolicy
from app.tracking.voice import PERIODS, zone
from app.wiring.clock import SystemClock
from app.wiring.container import Repositories
from app.wiring.runtime import open_database
from app.wiring.settings import Settings
from scripts.cli import guild_id, run_tool

STDOUT = "-"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.export_csv", description=__doc__.splitlines()[0])
    parser.add_argument("--guild", type=guild_id, required=True, help="the guild (server) id")
    parser.add_argument("kind", choices=KINDS, help="what to export")
    parser.add_argument("--period", choices=list(PERIODS), default="all", help="default: all")
    parser.add_argument("--out", help="file to write ('-': standard output; default: a name in this folder)")
    parser.add_argument("--plain-ids", action="store_true",
                        help='ids as bare digits (for programs) instead of ="..." (for spreadsheets)')
    return parser.parse_args(argv)


async def export(args: argparse.Namespace, settings: Settings, stream: BinaryIO) -> ExportResult:
    async with open_database(settings) as database:
        repos = Repositories.create(database.db, RetryPolicy())
        config = await repos.guild_settings.get(args.guild)
        request = ExportRequest(args.guild, args.kind, args.period, SystemClock().now(),
                                zone(config.time_zone), plain_ids=args.plain_ids)
        return await write_export(Sources.of(repos), request, stream)


def run(args: argparse.Namespace, settings: Settings) -> str:
    """Export into the chosen file (written aside first: a failure leaves no half file)."""
    if args.out == STDOUT:
        result = asyncio.run(export(args, settings, sys.stdout.buffer))
        sys.stdout.flush()
        return summary(args, result, "standard output")
    target = Path(args.out or file_name(args.kind, args.period, args.guild, SystemClock().now()))
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as stream:
            result = asyncio.run(export(args, settings, stream))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return summary(args, result, str(target))


def summary(args: argparse.Namespace, result: ExportResult, where: str) -> str:
    return (f"export {args.kind} ({args.period}) of guild {args.guild}: {result.rows} rows, "
            f"{result.size} bytes in {where}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def work(settings: Settings) -> None:
        line = run(args, settings)
        print(line, file=sys.stderr if args.out == STDOUT else sys.stdout)

    return run_tool(work, "export failed", (EmbeddedServerError, PyMongoError, OSError))


if __name__ == "__main__":
    sys.exit(main())
