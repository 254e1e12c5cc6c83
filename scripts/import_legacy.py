"""Import the old bots' JSON files: invite cache, invite counts, join history, member activity.

    python -m scripts.import_legacy --dry-run --guild 123456789 data/*.json   # check, count, write nothing
    python -m scripts.import_legacy --guild 123456789 data/*.json             # import

Every file is read and checked completely before the first write; a malformed file is refused
with one line `file.json:LINE: what is wrong` and nothing is written. Importing the same files
again changes nothing. Connects like the bot: MONGODB_URI, or the embedded database in DATA_DIR.
Formats and mapping: docs/import.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pymongo.errors import PyMongoError

from app.operations.legacy_formats import LegacyData, read_files
from app.operations.legacy_import import ImportConflict, import_legacy
from app.operations.legacy_input import LegacyInputError
from app.storage.database import EmbeddedServerError
from app.storage.retry import RetryPolicy
from app.wiring.clock import SystemClock
from app.wiring.container import Repositories
from app.wiring.runtime import open_database
from app.wiring.settings import Settings
from scripts.cli import guild_id, tool_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.import_legacy",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    parser.add_argument("--guild", type=guild_id,
                        help="the guild of member documents; for the other files: import only this guild")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, settings: Settings, data: LegacyData) -> list[str]:
    async with open_database(settings) as database:
        repos = Repositories.create(database.db, RetryPolicy())
        return await import_legacy(data, repos, SystemClock().now(), args.dry_run)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = read_files(args.files, args.guild)
    except LegacyInputError as exc:
        print(exc, file=sys.stderr)
        return 1
    settings = tool_settings()
    if settings is None:
        return 2
    try:
        lines = asyncio.run(run(args, settings, data))
    except ImportConflict as exc:
        print(f"error: {exc}; nothing was written", file=sys.stderr)
        return 1
    except (EmbeddedServerError, PyMongoError, OSError) as exc:
        print(f"error: import failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
