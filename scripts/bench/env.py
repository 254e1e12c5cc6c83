"""The benchmark's database (embedded nx-27017 or MONGODB_URI), its bot objects and the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pymongo import IndexModel

from app.storage.database import EmbeddedServer, host_of
from app.wiring.bot import TrackerBot
from app.wiring.clock import ManualClock
from app.wiring.settings import load_settings
from repositories.activity import ActivityRepository
from scripts.bench.sizes import Sizes
from scripts.bench.world import BenchWorld

T = TypeVar("T")

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
VOICE_GUILD, INGEST_GUILD, LATENCY_GUILD, STATS_GUILD, BACKFILL_GUILD = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Server:
    uri: str
    kind: str  # what the table says about the database


@contextlib.contextmanager
def server() -> Iterator[Server]:
    """MONGODB_URI when set, otherwise an embedded nx-27017 in a temporary directory."""
    uri = os.environ.get("MONGODB_URI", "").strip()
    if uri:
        yield Server(uri, f"MongoDB at {host_of(uri)} (MONGODB_URI)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        embedded = EmbeddedServer(Path(tmp))
        try:
            yield Server(embedded.start(), f"nx-27017 {metadata.version('nx-27017')} (embedded, file db)")
        finally:
            embedded.stop()


def database_name() -> str:
    return f"bench_{uuid.uuid4().hex[:10]}"


def machine(server_kind: str) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_total": f"{int(meminfo[1]) / 2**20:.1f} GiB",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "database": server_kind,
    }


def make_bot(db: Any, clock: ManualClock, data_dir: Path) -> TrackerBot:
    """A TrackerBot that never connects: its repositories, writer, clock and discord.py state are real."""
    settings = load_settings(discord_token="bench", mongodb_db=db.name, data_dir=data_dir)
    return TrackerBot(settings, db, "bench", clock=clock, cog_factories=[])


def activity_indexes() -> list[IndexModel]:
    """The activity collection's indexes, so the raw baselines write to the same collection shape."""
    return list(ActivityRepository.indexes)


class Bench:
    """What every case shares: the database, sizes, the clock, the payload world and a bot."""

    def __init__(self, db: Any, sizes: Sizes, data_dir: Path) -> None:
        self.db = db
        self.sizes = sizes
        self.data_dir = data_dir
        self.clock = ManualClock(START)
        self.world = BenchWorld()
        self.bots: list[TrackerBot] = []
        self.bot = self.new_bot()

    def new_bot(self) -> TrackerBot:
        """A bot (a second one: the restarted process) on the same database, its own outbox."""
        bot = make_bot(self.db, self.clock, self.data_dir / f"bot{len(self.bots)}")
        self.bots.append(bot)
        return bot

    async def start_writer(self, bot: TrackerBot) -> None:
        """What setup_hook does before any write: open the outbox, start the writer, take the
        lease (its token is the term of every operation sequence the bot writes)."""
        await bot.outbox.open()
        await bot.writer.start()
        await bot.lease.step()

    async def setup(self) -> None:
        await self.start_writer(self.bot)
        await self.bot.repos.ensure_indexes()

    async def close(self) -> None:
        for bot in self.bots:
            await bot.writer.stop()
            await bot.outbox.close()

    async def raw_collection(self, name: str) -> Any:
        collection = self.db[name]
        await collection.create_indexes(activity_indexes())
        return collection


async def acknowledged(bot: TrackerBot, work: Awaitable[T]) -> T:
    """`work`, then until MongoDB acknowledged every write it made: a unit the writer kept in the
    outbox (not acknowledged within its spill deadline) counts only once replayed, so the bot's
    time is comparable to a raw write's."""
    result = await work
    await bot.writer.wait_drained()
    return result


def activity_cog(bot: TrackerBot, activity: ActivityRepository | None = None) -> Any:
    """The real ActivityCog of `bot` (not added to the bot: no scheduler job, listeners called directly)."""
    from cogs.activity import ActivityCog

    repos = bot.repos
    cog = ActivityCog(bot, activity or repos.activity, repos.voice_sessions, repos.guild_settings)
    cog.ledger.load({}, [])  # a fresh database, no guild_available here: live counting writes at once
    return cog
