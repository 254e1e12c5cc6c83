"""The MongoDB client factory and the embedded nx-27017 server.

The client is PyMongo's own async API (`pymongo.AsyncMongoClient`): motor, which the first version
used, reached end of life on 2026-05-14, and its maintainers name this API as its successor (no
thread pool; measured faster here). Its `close()` and `aggregate()` are coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from app.storage.locks import LockHeld, ProcessLock
from app.storage.private_files import PRIVATE_UMASK

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """The embedded database could not be started; the message says why."""


def make_client(
    uri: str, *, app_name: str = "activity-invite-tracker", socket_timeout_ms: int = 10000
) -> AsyncMongoClient[dict[str, Any]]:
    """A client with aware UTC datetimes, retryable writes and timeouts that fail fast enough to retry.

    `socket_timeout_ms`: the benchmark raises it to time reads that take longer than the bot allows.
    """
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        retryWrites=True,
        retryReads=True,
        appname=app_name,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        socketTimeoutMS=socket_timeout_ms,
        maxPoolSize=50,
    )


def database(client: AsyncMongoClient[dict[str, Any]], name: str) -> AsyncDatabase[dict[str, Any]]:
    return client[name]


async def ping_ms(db: Any, deadline: float) -> float | None:
    """Round trip of a `ping` in milliseconds, or None when MongoDB does not answer within `deadline`."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(db.command("ping"), deadline)
    except (TimeoutError, PyMongoError):
        return None
    return (time.perf_counter() - started) * 1000


def host_of(uri: str) -> str:
    """The host part of a MongoDB URI, without credentials, for messages."""
    rest = uri.split("://", 1)[-1]
    rest = rest.rsplit("@", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the server when the bot process dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # a Ctrl-C in the terminal reaches the bot, which then stops the server in order


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedServerError(f"embedded database exited at start with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise EmbeddedServerError(f"embedded database did not listen on port {port} within {timeout:.0f}s")


class EmbeddedServer:
    """An nx-27017 child process on a free loopback port, its files under `data_dir/db`.

    A lock file keeps two bots from serving the same files; the parent-death signal keeps the
    server from outliving a killed bot.
    """

    def __init__(self, data_dir: Path, port: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.db_dir = data_dir / "db"
        self.port = port
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = ProcessLock(data_dir / "embedded-db.lock")

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def _take_lock(self) -> None:
        try:
            self._lock.acquire()
        except LockHeld as held:
            raise EmbeddedServerError(
                f"{self.data_dir} is in use by {held}; stop it or set DATA_DIR to another folder"
            ) from None

    def start(self, timeout: float = 20.0) -> str:
        """Start the server (blocking, from the main thread) and return its URI."""
        self._take_lock()
        self.db_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        attempts = 1 if self.port else 3
        for attempt in range(attempts):
            port = self.port or free_port()
            process = self._spawn(port)
            try:
                _wait_for_port(port, process, timeout)
            except EmbeddedServerError:
                _stop_process(process)
                if attempt + 1 == attempts:
                    self._release_lock()
                    raise
                continue
            self.port, self.process = port, process
            log.info("embedded database (nx-27017) pid %d on 127.0.0.1:%d, files in %s",
                     process.pid, port, self.db_dir)
            return self.uri
        raise EmbeddedServerError("embedded database could not start")  # pragma: no cover

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "nx_27017.nx_27017",
            "--data-dir", str(self.db_dir),
            "--host", "127.0.0.1", "-p", str(port),
            "--log-file", str(self.data_dir / "nx-27017.log"),
            "--pid-file", str(self.data_dir / "nx-27017.pid"),
            *self.extra_args,
        ]
        out = os.open(self.data_dir / "nx-27017.out", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        log_out = os.fdopen(out, "ab")
        try:
            return subprocess.Popen(
                command, stdout=log_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for the parent-death signal
                umask=PRIVATE_UMASK,  # its database files and logs: owner only
            )
        finally:
            log_out.close()

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            log.info("embedded database stopped")
            self.process = None
        self._release_lock()

    def _release_lock(self) -> None:
        self._lock.release()

def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
