"""Write a backup of all data, or of one guild, as mongoexport-compatible JSON with a manifest.

    python -m scripts.backup                     # everything -> DATA_DIR/backups/<backup_id>/
    python -m scripts.backup --guild 123456789   # one guild's documents
    python -m scripts.backup --out /srv/backups  # -> /srv/backups/<backup_id>/

Connects like the bot: MONGODB_URI, or the embedded database in DATA_DIR when it is unset.
Prints one line with the backup id, file count and document count; exit code 1 on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pymongo.errors import PyMongoError

from app.operations.backups import BackupError, BackupService, TqdmProgress
from app.storage.database import EmbeddedServerError
from app.wiring.clock import SystemClock
from app.wiring.runtime import open_database
from app.wiring.settings import Settings
from scripts.cli import guild_id, run_tool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.backup", description=__doc__.splitlines()[0])
    parser.add_argument("--guild", type=guild_id, help="back up only this guild's documents")
    parser.add_argument("--out", type=Path, help="folder to create the backup in (default DATA_DIR/backups)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, settings: Settings) -> None:
    async with open_database(settings) as database:
        service = BackupService(database.db, settings.data_dir / "backups")
        result = await service.create(
            now=SystemClock().now(), guild_id=args.guild, out_root=args.out, progress=TqdmProgress(args.quiet)
        )
    print(f"backup {result.backup_id}: {result.files} files, {result.documents} documents in {result.path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda settings: asyncio.run(run(args, settings)), "backup failed",
                    (BackupError, EmbeddedServerError, PyMongoError, OSError))


if __name__ == "__main__":
    sys.exit(main())
