"""Ingest: message events through the real listener -> group commit -> guarded repository write.

Bot path: `ActivityCog.on_message(message)` for every event (real discord.Message objects, built
before the clock starts), yielding to the loop after each one as the gateway reader does, until
`MessageCounter.wait_idle()` says everything is acknowledged. Baselines on collections with the
same indexes: (a) one awaited `update_one($inc, upsert)` per event, (b) one unordered `bulk_write`
of one `$inc` UpdateOne per event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

from pymongo import UpdateOne

from repositories.activity import total_key
from scripts.bench.checks import compare, message_checks, raw_counts
from scripts.bench.env import INGEST_GUILD, Bench, acknowledged, activity_cog
from scripts.bench.measure import Check, Row, mib, rate, timed, watch_loop
from scripts.bench.world import member_id

log = logging.getLogger(__name__)


def authors(count: int, members: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [member_id(rng.randrange(members)) for _ in range(count)]


async def feed(cog: Any, messages: list[Any]) -> None:
    """Each message to the listener, one loop turn each, then wait until all are written."""
    for message in messages:
        await cog.on_message(message)
        await asyncio.sleep(0)
    await acknowledged(cog.bot, cog.messages.wait_idle())


async def per_event(collection: Any, keys: list[str]) -> None:
    for key in keys:
        await collection.update_one({"_id": key}, {"$inc": {"messages": 1}}, upsert=True)


async def one_bulk(collection: Any, keys: list[str]) -> None:
    ops = [UpdateOne({"_id": key}, {"$inc": {"messages": 1}}, upsert=True) for key in keys]
    await collection.bulk_write(ops, ordered=False)


async def run(bench: Bench) -> tuple[list[Row], list[Check]]:
    s = bench.sizes
    bench.world.add(bench.world.guild_spec(INGEST_GUILD, s.ingest_members))
    guild = bench.world.attach(bench.bot, INGEST_GUILD)
    sent = authors(s.ingest_events, s.ingest_members, seed=8)
    messages = bench.world.messages(bench.bot, guild, sent)
    keys = [total_key(INGEST_GUILD, m) for m in sent]
    cog = activity_cog(bench.bot)

    log.info("ingest: %d events over %d members through ActivityCog.on_message", len(sent), s.ingest_members)
    async with watch_loop() as watch:
        bot_s, _ = await timed(lambda: feed(cog, messages))
    raw_a = await bench.raw_collection("bench_ingest_a")
    log.info("ingest baseline (a): one awaited update_one per event")
    a_s, _ = await timed(lambda: per_event(raw_a, keys))
    raw_b = await bench.raw_collection("bench_ingest_b")
    log.info("ingest baseline (b): one unordered bulk_write")
    b_s, _ = await timed(lambda: one_bulk(raw_b, keys))

    n = len(sent)
    bot_rate, a_rate, b_rate = n / bot_s, n / a_s, n / b_s
    info = {"events": n, "bot_seconds": bot_s, "a_seconds": a_s, "b_seconds": b_s,
            "writes": cog.messages.writes, "longest_stall_s": watch.longest_stall}
    rows = [
        Row("ingest", f"{n:,} events, vs (a) update_one per event", rate(bot_rate), rate(a_rate),
            bot_rate / a_rate, ">= 3x", bot_rate / a_rate >= 3, info),
        Row("ingest", f"{n:,} events, vs (b) one bulk_write", rate(bot_rate), rate(b_rate),
            bot_rate / b_rate, ">= 1.0x", bot_rate / b_rate >= 1.0, info),
        Row("memory", "peak RSS during ingest", mib(watch.peak_rss), values={"bytes": watch.peak_rss}),
    ]
    expected = Counter(sent)
    checks = await message_checks(bench.db, "ingest", INGEST_GUILD, expected)
    checks.append(compare("ingest baseline (a)", expected, await raw_counts(raw_a)))
    checks.append(compare("ingest baseline (b)", expected, await raw_counts(raw_b)))
    return rows, checks
