"""Backfill: messages sent while the bot was away, counted from channel history over HTTP, with
Discord's rate limits, while live messages keep arriving (issue 19).

Discord is the emulator in a child process (`scripts.bench.remote`), seeded with the whole
story: live messages the first run counted, the messages missed while the bot was down, and the
live messages the restarted bot receives while it backfills. Then, in this process:

1. **Live alone.** A run of the real `ActivityCog` (its ledger loaded from the stored marks)
   counts the first live messages at a fixed rate: per event, the time until MongoDB acknowledged
   it (as in the ingest latency case). No backfill runs.
2. **Restart.** A new `ActivityCog` loads the stored marks, so every channel has a range from its
   mark on. Its `Backfill` reads the history through the production adapter (`ChannelHistory`
   over a discord.py `Client` logged in to the emulator: discord.py's HTTP client, which waits
   out the route's buckets and retries 429s), one guarded write per page. Meanwhile the second
   live stream arrives at the same rate, its first message in every channel closing that
   channel's range.

Reported: messages and pages per second counted from history (fetch + guarded write, end to end),
the 429s met; p99 event -> acknowledged of live messages while the backfill ran, against the same
rate without a backfill, as a ratio. Exactness: every member's stored count equals the messages
in the emulator's history (none lost, none doubled), and live + history counted add up to them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import discord

from app.wiring.discord_endpoints import bot_intents
from repositories.activity import ChannelCount, ChannelMark, Credit, FillRange
from scripts.bench.checks import message_checks
from scripts.bench.env import BACKFILL_GUILD, Bench
from scripts.bench.latency import TimedActivity, steady
from scripts.bench.measure import Check, Row, ms, percentile
from scripts.bench.remote import TOKEN, Plan, Post, RemoteDiscord
from scripts.bench.world import member_id
from scripts.emulator import discord_pointed_at

log = logging.getLogger(__name__)


class CountedActivity(TimedActivity):
    """TimedActivity that also sums the messages each live write carried (a retry once)."""

    def __init__(self, db: Any, policy: Any, writer: Any) -> None:
        super().__init__(db, policy, writer)
        self.counted = 0
        self._seen: set[int] = set()

    async def add_messages_marked(self, credits: Iterable[Credit], op_id: int, marks: Iterable[ChannelMark],
                                  ranges: Iterable[FillRange], channels: Iterable[ChannelCount] = ()) -> None:
        credits = list(credits)
        await super().add_messages_marked(credits, op_id, marks, ranges, channels)
        if op_id not in self._seen:
            self._seen.add(op_id)
            self.counted += sum(c.amounts["messages"] for c in credits)


def make_plan(bench: Bench) -> Plan:
    """Authors at random; live messages round-robin over the channels (every channel gets its first
    live message within `channels / rate` seconds), missed ones at random."""
    s = bench.sizes
    rng = random.Random(19)
    live = int(s.backfill_live_rate * s.backfill_live_seconds)

    def author() -> int:
        return member_id(rng.randrange(s.backfill_members))

    def round_robin(count: int) -> list[Post]:
        return [Post(i % s.backfill_channels, author()) for i in range(count)]

    missed = [Post(rng.randrange(s.backfill_channels), author()) for _ in range(s.backfill_messages)]
    return Plan(BACKFILL_GUILD, s.backfill_channels, s.backfill_members, round_robin(live), missed,
                round_robin(live))


def restarted_cog(bot: Any, activity: CountedActivity) -> Any:
    """A fresh ActivityCog (not added to the bot: listeners called directly), as a process start."""
    from cogs.activity import ActivityCog

    repos = bot.repos
    return ActivityCog(bot, activity, repos.voice_sessions, repos.guild_settings)


async def load_marks(cog: Any) -> None:
    """What the cog does once the outbox backlog is in: the stored marks and ranges into the ledger."""
    marks, ranges = await cog.activity.channel_marks()
    cog.ledger.load(marks, ranges)


def parse(bot: Any, guild: discord.Guild, payloads: list[dict[str, Any]]) -> list[discord.Message]:
    """MESSAGE_CREATE payloads into discord.py messages of `bot`'s connection state."""
    state = bot._connection
    return [discord.Message(state=state, channel=guild.get_channel(int(p["channel_id"])), data=p)  # type: ignore[arg-type]
            for p in payloads]


async def history_client(info: dict[str, Any]) -> discord.Client:
    """A discord.py client logged in to the emulator (no gateway), the guild in its cache."""
    client = discord.Client(intents=bot_intents())
    await client.login(TOKEN)
    client._connection._add_guild_from_data(info["guild"])
    return client


@dataclass
class Live:
    due: list[float]
    repo: CountedActivity


async def live_alone(bench: Bench, messages: list[discord.Message]) -> Live:
    repo = CountedActivity(bench.db, bench.bot.retry_policy, bench.bot.writer)
    cog = restarted_cog(bench.bot, repo)
    await load_marks(cog)
    due = await steady(cog, repo, messages, bench.sizes.backfill_live_rate)
    await bench.bot.writer.wait_drained()
    return Live(due, repo)


@dataclass
class Backfilled:
    live: Live
    seconds: float  # the backfill, start to end (pages fetched and written)
    started: float
    counted: int  # messages the backfill counted from history


async def live_while_backfilling(bench: Bench, messages: list[discord.Message],
                                 client: discord.Client) -> Backfilled:
    from cogs.activity import ChannelHistory

    repo = CountedActivity(bench.db, bench.bot.retry_policy, bench.bot.writer)
    cog = restarted_cog(bench.bot, repo)
    await load_marks(cog)
    history = ChannelHistory(client)
    started = time.perf_counter()

    async def backfill() -> float:
        await cog.backfill.run_guild(BACKFILL_GUILD, history)
        await bench.bot.writer.wait_drained()
        return time.perf_counter() - started

    task = asyncio.create_task(backfill(), name="bench-backfill")
    due = await steady(cog, repo, messages, bench.sizes.backfill_live_rate)
    seconds = await task
    await bench.bot.writer.wait_drained()
    return Backfilled(Live(due, repo), seconds, started, cog.backfill.progress.messages)


def latencies(due: list[float], acks: list[tuple[int, float]]) -> list[float]:
    """As `latency.latencies`, for the events some write covered: a live message the backfill had
    read first is refused by the ledger (counted from history), and the last ones may be."""
    out: list[float] = []
    ordered = sorted(acks, key=lambda a: a[1])
    j = 0
    for i, due_at in enumerate(due):
        while j < len(ordered) and ordered[j][0] <= i:
            j += 1
        if j == len(ordered):
            break
        out.append(ordered[j][1] - due_at)
    return out


def p99(live: Live, until: float | None = None) -> tuple[float | None, int]:
    """p99 event -> acknowledged over the events due before `until` (all: None), and how many."""
    lat = latencies(live.due, live.repo.acks)
    if until is not None:
        lat = [latency for latency, due in zip(lat, live.due, strict=False) if due < until]
    return (percentile(lat, 99) if lat else None), len(lat)


def rows(bench: Bench, alone: Live, run: Backfilled, requests: int, hits: int) -> list[Row]:
    s = bench.sizes
    base, _ = p99(alone)
    during, overlapped = p99(run.live, run.started + run.seconds)
    pages = requests - hits  # a request answered 429 brought no page
    per_s = run.counted / run.seconds
    pages_per_s = pages / run.seconds
    info = {"missed": s.backfill_messages, "channels": s.backfill_channels,
            "counted_from_history": run.counted,
            "seconds": run.seconds, "history_requests": requests, "pages": pages,
            "rate_limited_429": hits,
            "live_rate": s.backfill_live_rate, "live_events_during": overlapped,
            "live_p99_alone_s": base, "live_p99_during_s": during}
    ratio = during / base if during is not None and base else None
    return [
        Row("backfill", f"{s.backfill_messages:,} missed messages over {s.backfill_channels} channels, "
            "from history over HTTP (emulator, Discord's rate limits)",
            f"{per_s:,.0f} msg/s ({pages} pages, {pages_per_s:.1f} pages/s, {hits} 429s)", values=info),
        Row("backfill", f"live ingest at {s.backfill_live_rate:,} events/s while backfilling vs without: "
            f"p99 event -> acknowledged ({overlapped} events during)",
            ms(during) if during is not None else "-", ms(base) if base is not None else "-", ratio,
            values=info),
    ]


def split_check(alone: Live, run: Backfilled, total: int) -> Check:
    """Live counts + history counts add up to the messages that exist: nothing counted by both."""
    live = alone.repo.counted + run.live.repo.counted
    ok = live + run.counted == total
    detail = f"{live} counted live + {run.counted} from history = {live + run.counted}, {total} exist"
    return Check("backfill: live + history = messages that exist", ok, detail)


async def run(bench: Bench) -> tuple[list[Row], list[Check]]:
    plan = make_plan(bench)
    discord_side = RemoteDiscord(plan)
    log.info("backfill: seeding %d missed messages over %d channels in the emulator process",
             len(plan.missed), plan.channels)
    try:
        info = await discord_side.start()
        guild = bench.bot._connection._add_guild_from_data(info["guild"])
        first = parse(bench.bot, guild, info["before"])
        second = parse(bench.bot, guild, info["during"])
        log.info("backfill: live alone, %d events/s for %.0f s", bench.sizes.backfill_live_rate,
                 bench.sizes.backfill_live_seconds)
        alone = await live_alone(bench, first)
        with discord_pointed_at(info["api_base"], info["gateway_url"]):
            client = await history_client(info)
            try:
                log.info("backfill: restart; history over HTTP while live messages arrive")
                backfilled = await live_while_backfilling(bench, second, client)
            finally:
                await client.close()
        stats = await discord_side.stats()
    finally:
        await discord_side.stop()
    checks = await message_checks(bench.db, "backfill", BACKFILL_GUILD, stats.exist)
    checks.append(split_check(alone, backfilled, sum(stats.exist.values())))
    return rows(bench, alone, backfilled, stats.history_requests, stats.rate_limited), checks
