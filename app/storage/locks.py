"""An exclusive lock file in DATA_DIR for the life of a process (flock: released when it dies)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any


class LockHeld(RuntimeError):
    """Another process holds the lock; the message names it (`pid N`)."""


class ProcessLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self) -> None:
        """Take the lock, or raise LockHeld("pid N") naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockHeld(holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
