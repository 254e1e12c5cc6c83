"""The background builds of the ranks and the invite boards run no automatic garbage collection: a
full (generation 2) one walks every object made since the last freeze, an event-loop stall of
70-150 ms at 100,000 members in the benchmark (`docs/benchmarks.md`). They collect the young
generations themselves between batches, and automatic collections resume when they end."""

from __future__ import annotations

import gc
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.wiring.clock import ManualClock
from repositories.activity import Credit
from tests.app.tracking.test_invite_boards import World
from tests.app.tracking.test_invite_boards import Writer as JoinWriter
from tests.app.tracking.test_invite_boards import traffic as join_traffic
from tests.app.tracking.test_ranks import Bot


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection while the test runs."""
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        yield generations
    finally:
        gc.callbacks.remove(seen)
        gc.unfreeze()


def watched(scan: Callable[..., AsyncIterator[list[Any]]], automatic: list[bool]) -> Callable[..., Any]:
    """`scan`, noting at every batch whether automatic collections are on."""

    async def batches(*args: Any, **kwargs: Any) -> AsyncIterator[list[Any]]:
        async for rows in scan(*args, **kwargs):
            automatic.append(gc.isenabled())
            yield rows

    return batches


async def test_the_ranks_build_pauses_automatic_collections(db, policy, collections) -> None:
    bot = Bot(db, policy, ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC)), batch=50)
    credits = [Credit(7, member, "2026-03-01", {"messages": 1}) for member in range(1, 400)]
    await bot.activity.add_messages(credits, 1000)
    automatic: list[bool] = []
    bot.activity.scan = watched(bot.activity.scan, automatic)
    collections.clear()
    bot.ranks.ensure(7)
    await bot.ranks.wait_ready(7)
    assert automatic and not any(automatic)  # 16 batches, none with automatic collections on
    assert 1 in collections and 2 not in collections  # the young generations, collected by the build
    assert gc.isenabled()


async def test_the_invite_boards_build_pauses_automatic_collections(db, policy, collections) -> None:
    world = World(db, policy, ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC)), batch=20)
    writer = JoinWriter(random.Random(5))
    await join_traffic(world, writer, 150)
    automatic: list[bool] = []
    world.boards.joins.scan_figures = watched(world.boards.joins.scan_figures, automatic)
    collections.clear()
    world.boards.ensure(7)
    await world.boards.wait_ready(7)
    assert automatic and not any(automatic)
    assert 1 in collections and 2 not in collections
    assert gc.isenabled()
