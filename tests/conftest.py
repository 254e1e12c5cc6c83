"""Shared fixtures: one real wire-protocol MongoDB server per session, a fresh database per test.

With MONGODB_TEST_URI set, the same suite runs against that server instead of nx-27017.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.storage.database import make_client
from app.storage.retry import RetryPolicy
from app.wiring.clock import ManualClock
from scripts.faultproxy import FaultPlan, FaultProxy
from tests.nxserver import NxServer

pytest_plugins = ["tests.botharness"]

# Fast retries for tests: the same code paths, shorter sleeps.
TEST_POLICY = RetryPolicy(attempts=8, max_seconds=20, initial_wait=0.01, max_wait=0.2)


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("MONGODB_TEST_URI")
    if external:
        yield external
        return
    server = NxServer(tmp_path_factory.mktemp("nx")).start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def mongo_client(mongo_uri: str) -> AsyncIterator[object]:
    client = make_client(mongo_uri)
    yield client
    await client.close()


@pytest.fixture
async def db(mongo_client) -> AsyncIterator[object]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    database = mongo_client[name]
    yield database
    await mongo_client.drop_database(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
def policy() -> RetryPolicy:
    return TEST_POLICY


@pytest.fixture
async def fault_proxy(mongo_uri: str) -> AsyncIterator[FaultProxy]:
    host, port = mongo_uri.split("://", 1)[1].rstrip("/").split("/")[0].rsplit(":", 1)
    proxy = await FaultProxy(host, int(port), FaultPlan()).start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def nx_factory(tmp_path: Path) -> Iterator[object]:
    """Start private nx-27017 servers (for tests that kill their database); all stopped at the end."""
    servers: list[NxServer] = []

    def start(data_dir: Path | None = None, port: int | None = None) -> NxServer:
        server = NxServer(data_dir or tmp_path / f"nx{len(servers)}", port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _thaw_the_heap() -> Iterator[None]:
    """The bot freezes long-lived objects (app.wiring.heap); a test's bot is not long-lived: thaw
    after each test so the suite's garbage is collected as usual."""
    yield
    gc.unfreeze()
