"""Files private by default: what the bot keeps on disk is readable by its own user only.

`DATA_DIR` holds member data: the embedded database (`db/*.db`), the outbox, the invite journal,
backups, and the embedded server's logs. `make_private` runs before anything is created there
(the bot, the `--check` run and every command-line tool that opens the database):

- the process umask becomes 077, so every file the bot and its children (the embedded nx-27017
  server) create from then on is 0600, every folder 0700;
- `DATA_DIR` itself and every file and folder already under it lose their group and other
  permission bits (files from before this version were 0644); one log line says how many.

Files owned by another user (e.g. copied in as root) cannot be changed: one warning names the
first. The embedded server still answers every local user on its loopback port: see
`docs/security.md`, "Local files and the embedded database".
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077
OTHERS = 0o077  # group and other permission bits


def make_private(data_dir: Path) -> int:
    """Umask 077 for this process (and its children), `data_dir` 0700, and everything under it
    owner-only. Returns how many files and folders were tightened."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tightened, refused = 0, []
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            tightened += _tighten(path)
        except OSError as exc:
            refused.append(f"{path} ({exc.strerror})")
    if tightened:
        log.warning("DATA_DIR %s: %d file(s) and folder(s) were readable by other local users; now owner "
                    "only", data_dir, tightened)
    if refused:
        log.warning("DATA_DIR %s: %d file(s) could not be made private (owned by another user?), "
                    "first: %s", data_dir, len(refused), refused[0])
    return tightened


def _tighten(path: Path) -> int:
    """1 when `path` had group or other bits and now has none (symlinks are left alone)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return 0
    mode = stat.S_IMODE(info.st_mode)
    if not mode & OTHERS:
        return 0
    os.chmod(path, mode & ~OTHERS)
    return 1
