"""Ingest latency: a steady stream of message events; per event, the time until MongoDB acknowledged it.

Method: event i is due at `start + i / rate`; the feeder hands it to `ActivityCog.on_message` at
that moment (a late feeder counts against the latency). The cog's repository is the real
`ActivityRepository` with `add_messages_marked` noting, when the group commit calls it, how many events
had been fed (the batch was taken synchronously just before, so it holds every event fed so far
and nothing later), and the time the guarded bulk write returned. An event's latency is the
return time of the first write that covered it minus its due time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from app.wiring.heap import keep_long_lived
from repositories.activity import ActivityRepository, ChannelCount, ChannelMark, Credit, FillRange
from scripts.bench.checks import message_checks
from scripts.bench.env import LATENCY_GUILD, Bench, activity_cog
from scripts.bench.ingest import authors
from scripts.bench.measure import Check, Row, ms, percentile, stall_row, watch_loop

log = logging.getLogger(__name__)
TARGET_P99 = 0.250


class TimedActivity(ActivityRepository):
    """ActivityRepository recording (events covered, acknowledged at) for each message write."""

    def __init__(self, db: Any, policy: Any, writer: Any) -> None:
        super().__init__(db, policy, writer)
        self.fed = 0
        self.acks: list[tuple[int, float]] = []
        self._covered: dict[str, int] = {}

    async def add_messages_marked(self, credits: Iterable[Credit], op_id: int, marks: Iterable[ChannelMark],
                                  ranges: Iterable[FillRange], channels: Iterable[ChannelCount] = ()) -> None:
        """The live group commit's write (counts with the channels' marks, issue 19)."""
        covered = self._covered.setdefault(str(op_id), self.fed)  # a retry keeps its first batch
        await super().add_messages_marked(credits, op_id, marks, ranges, channels)
        self.acks.append((covered, time.perf_counter()))


def latencies(due: list[float], acks: list[tuple[int, float]]) -> list[float]:
    out: list[float] = []
    ordered = sorted(acks, key=lambda a: a[1])
    j = 0
    for i, due_at in enumerate(due):
        while ordered[j][0] <= i:
            j += 1
        out.append(ordered[j][1] - due_at)
    return out


async def steady(cog: Any, repo: TimedActivity, messages: list[Any], per_second: int) -> list[float]:
    """Feed at `per_second`; the due time of each event. The messages, parsed ahead by the
    benchmark, are frozen out of the collector first, as a running bot's long-lived objects are
    after a guild became available (`app/wiring/heap.py`): a full collection then walks what the
    bot allocates, not the benchmark's 20,000 prepared messages."""
    keep_long_lived("benchmark: the messages to send, parsed ahead")
    start = time.perf_counter()
    due: list[float] = []
    for i, message in enumerate(messages):
        due_at = start + i / per_second
        delay = due_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.append(due_at)
        await cog.on_message(message)
        repo.fed += 1
    await cog.messages.wait_idle()
    return due


async def run(bench: Bench) -> tuple[list[Row], list[Check]]:
    s = bench.sizes
    count = int(s.latency_rate * s.latency_seconds)
    bench.world.add(bench.world.guild_spec(LATENCY_GUILD, s.ingest_members))
    guild = bench.world.attach(bench.bot, LATENCY_GUILD)
    sent = authors(count, s.ingest_members, seed=27)
    messages = bench.world.messages(bench.bot, guild, sent)
    repo = TimedActivity(bench.db, bench.bot.retry_policy, bench.bot.writer)
    cog = activity_cog(bench.bot, repo)

    log.info("ingest latency: %d events/s for %.0f s", s.latency_rate, s.latency_seconds)
    spilled_before = bench.bot.writer.spilled
    async with watch_loop() as watch:
        due = await steady(cog, repo, messages, s.latency_rate)
    spilled = bench.bot.writer.spilled - spilled_before
    await bench.bot.writer.wait_drained()
    lat = latencies(due, repo.acks)
    p99 = percentile(lat, 99)
    info = {"events": count, "rate": s.latency_rate, "p50_s": percentile(lat, 50), "p99_s": p99,
            "max_s": max(lat), "writes": len(repo.acks), "spilled_to_outbox": spilled}
    # A write returns when MongoDB acknowledged it, or when it was kept in the outbox because MongoDB
    # had not within the spill deadline (0.15 s): "durable". With no spill it is MongoDB's ack.
    what = (f"{s.latency_rate:,} events/s for {s.latency_seconds:g} s: p99 event -> durable "
            f"({spilled} of {len(repo.acks)} writes kept in the outbox first)")
    rows = [Row("ingest latency", what,
                f"{ms(p99)} (p50 {ms(info['p50_s'])}, {len(repo.acks)} writes)", "-", None,
                f"< {TARGET_P99 * 1000:.0f} ms", p99 < TARGET_P99, info),
            stall_row("ingest latency", watch.longest_stall)]
    checks = await message_checks(bench.db, "ingest latency", LATENCY_GUILD, Counter(sent))
    return rows, checks
