"""Retention for the backups volume (the backup-retention service of docker-compose.yml).

Deletes backup folders (`DATA_DIR/backups/<backup_id>/`, from `python -m scripts.backup`,
`/backup-data` and `/data erase`) older than BACKUP_KEEP_DAYS days, but always keeps the newest
BACKUP_KEEP_MIN of them; deletes a half-written `.<backup_id>.partial/` folder after a day (a
backup that was interrupted). The age is the UTC time in the backup id, so copying a backup does
not make it young again. Anything else in the folder is left alone.

Standard library only. `--once`: one pass, then exit; otherwise a pass every
BACKUP_PRUNE_INTERVAL_SECONDS (default 3600).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BACKUP_ID = re.compile(r"\A(\d{8}T\d{6}Z)-[0-9a-f]{6}\Z")
PARTIAL = re.compile(r"\A\.(\d{8}T\d{6}Z-[0-9a-f]{6})\.partial\Z")
PARTIAL_MAX_AGE = timedelta(days=1)


def created_at(backup_id: str) -> datetime:
    match = BACKUP_ID.match(backup_id)
    assert match, backup_id
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def to_delete(names: list[str], now: datetime, keep_days: float, keep_min: int) -> list[str]:
    """The entries of the backups folder to delete (names only, oldest first)."""
    backups = sorted((n for n in names if BACKUP_ID.match(n)), key=created_at, reverse=True)
    old = [n for n in backups[keep_min:] if now - created_at(n) > timedelta(days=keep_days)]
    stale = [n for n in names if (m := PARTIAL.match(n)) and BACKUP_ID.match(m.group(1))
             and now - created_at(m.group(1)) > PARTIAL_MAX_AGE]
    return sorted(old + stale, key=lambda n: created_at(n.strip(".").removesuffix(".partial")))


def prune(root: Path, now: datetime, keep_days: float, keep_min: int) -> list[str]:
    if not root.is_dir():
        return []
    entries = {e.name: e for e in root.iterdir() if e.is_dir() and not e.is_symlink()}
    deleted = []
    for name in to_delete(list(entries), now, keep_days, keep_min):
        try:
            shutil.rmtree(entries[name])
        except OSError as exc:  # e.g. copied in as root (docker compose cp): say so, go on
            print(f"prune_backups: cannot delete {entries[name]}: {exc}", file=sys.stderr, flush=True)
            continue
        deleted.append(name)
    return deleted


def number(name: str, default: str, kind: type[float] | type[int]) -> float | int:
    raw = os.environ.get(name, "").strip() or default
    try:
        value = kind(raw)
    except ValueError:
        sys.exit(f"prune_backups: {name} must be a number, not {raw!r}")
    if value < 0:
        sys.exit(f"prune_backups: {name} must not be negative")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("DATA_DIR", "data")) / "backups"
    keep_days = number("BACKUP_KEEP_DAYS", "30", float)
    keep_min = int(number("BACKUP_KEEP_MIN", "3", int))
    interval = number("BACKUP_PRUNE_INTERVAL_SECONDS", "3600", float)
    print(f"prune_backups: {root}: keeping {keep_days:g} days, at least the newest {keep_min}", flush=True)
    while True:
        for name in prune(root, datetime.now(UTC), keep_days, keep_min):
            print(f"prune_backups: deleted {root / name}", flush=True)
        if args.once:
            return 0
        time.sleep(max(interval, 60))


if __name__ == "__main__":
    sys.exit(main())
