"""Restore a backup written by `scripts.backup` or `/backup-data`: verify everything, then upsert by _id.

    python -m scripts.restore 20260310T120000Z-a1b2c3          # a backup id under DATA_DIR/backups
    python -m scripts.restore /srv/backups/20260310T120000Z-a1b2c3
    python -m scripts.restore ./my-backup --drop-first         # first remove what the backup covers

Every file's checksum and count is checked before anything is written; a damaged or truncated
file is refused with one line naming it. Documents are upserted by _id as they were in the
backup (newer changes to the same documents are overwritten), so running it twice is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pymongo.errors import PyMongoError

from app.operations.backups import BackupError, BackupService, TqdmProgress, resolve_backup
from app.storage.database import EmbeddedServerError
from app.wiring.runtime import open_database
from app.wiring.settings import Settings
from scripts.cli import run_tool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.restore", description=__doc__.splitlines()[0])
    parser.add_argument(
        "backup", help="backup directory (a path with a /) or a backup id in DATA_DIR/backups"
    )
    parser.add_argument(
        "--drop-first", action="store_true",
        help="first delete what the backup covers (a member backup: that member's documents; a guild "
             "backup: its guild's; else its whole collections)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, settings: Settings) -> None:
    directory = resolve_backup(args.backup, settings.data_dir / "backups")
    async with open_database(settings) as database:
        service = BackupService(database.db, settings.data_dir / "backups")
        result = await service.restore(
            directory, drop_first=args.drop_first, progress=TqdmProgress(args.quiet)
        )
    print(f"restored backup {result.backup_id} into database '{settings.mongodb_db}': {result.documents} "
          f"documents in {len(result.collections)} collections ({result.inserted} inserted, "
          f"{result.replaced} replaced)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_tool(lambda settings: asyncio.run(run(args, settings)), "restore refused",
                    (BackupError, EmbeddedServerError, PyMongoError, OSError))


if __name__ == "__main__":
    sys.exit(main())
