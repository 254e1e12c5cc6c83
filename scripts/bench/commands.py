"""`/ud` and `/top` reads: p99 of the repository reads (and embed) the commands do vs raw find_one.

Data: `stats_members` members with an all-time document, `stats_active` of them with a day
document for each of the last `stats_days` days, inserted raw in the shape the repository writes
(every counter present). `/ud` = `member_counters` + `rank` (messages) + `rank` (voice) +
`build_ud_embed`; `/top` = `StatsCog.top_page` (count, page, caller's rank and counters, names,
embed). Afterwards the reads are checked against the values computed here, and the leaderboard
pipeline is explained by the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from datetime import timedelta
from typing import Any

from tqdm import tqdm

from app.tracking.voice import COUNTERS, period_start_day, zone
from cogs.stats import StatsCog, Window, build_ud_embed
from repositories.activity import ActivityRepository, day_key, total_key
from scripts.bench.env import STATS_GUILD, Bench, activity_cog
from scripts.bench.ingest import authors
from scripts.bench.latency import TimedActivity, latencies, steady
from scripts.bench.measure import Check, Row, ms, percentile, samples, stall_row, watch_loop
from scripts.bench.world import member_id

log = logging.getLogger(__name__)
G = STATS_GUILD
TARGET = 5.0
LOAD_CEILING = 0.250
COMMAND_GAP = 0.005  # between two commands under load (about 200 commands a second)
SEED_BATCH = 5_000


def total_values(i: int) -> dict[str, int]:
    voice = (i * 104_729) % 36_000
    return {"messages": (i * 7_919) % 1_000, "voice_s": voice, "cam_on_s": voice // 3,
            "cam_off_s": voice - voice // 3, "stream_s": voice // 5}


def day_values(i: int, d: int) -> dict[str, int]:
    voice = (i * 31 + d * 17) % 3_600
    return {"messages": (i * 13 + d * 7) % 25, "voice_s": voice, "cam_on_s": voice // 2,
            "cam_off_s": voice - voice // 2, "stream_s": 0}


class CapturingActivity(ActivityRepository):
    """The activity repository, keeping the last pipeline of each kind of read (for explain)."""

    def __init__(self, db: Any, policy: Any, writer: Any) -> None:
        super().__init__(db, policy, writer)
        self.pipelines: dict[str, list[dict[str, Any]]] = {}

    async def aggregate(self, pipeline: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        self.pipelines[what] = pipeline
        return await super().aggregate(pipeline, what)


class Data:
    """The seeded values, to check the reads against."""

    def __init__(self, bench: Bench) -> None:
        s = bench.sizes
        today = bench.clock.now().date()
        self.days = [(today - timedelta(days=d)).isoformat() for d in range(s.stats_days)]
        self.totals = {member_id(i): total_values(i) for i in range(s.stats_members)}
        self.by_day = {member_id(i): {day: day_values(i, d) for d, day in enumerate(self.days)}
                       for i in range(s.stats_active)}

    def documents(self) -> Any:
        for member, values in self.totals.items():
            yield {"_id": total_key(G, member), "kind": "total", "guild_id": G, "member_id": member, **values}
        for member, days in self.by_day.items():
            for day, values in days.items():
                yield {"_id": day_key(G, member, day), "kind": "day", "day": day, "guild_id": G,
                       "member_id": member, **values}

    def values(self, field: str, since: str | None) -> dict[int, int]:
        if since is None:
            return {m: v[field] for m, v in self.totals.items()}
        return {m: sum(v[field] for day, v in days.items() if day >= since)
                for m, days in self.by_day.items()}

    def board(self, field: str, since: str | None, limit: int) -> list[tuple[int, int]]:
        rows = [(m, v) for m, v in self.values(field, since).items() if v > 0]
        rows.sort(key=lambda r: (-r[1], r[0]))
        return rows[:limit]

    def rank(self, field: str, since: str | None, member: int) -> int | None:
        values = self.values(field, since)
        own = values.get(member, 0)
        return None if own <= 0 else 1 + sum(1 for v in values.values() if v > own)


async def seed(bench: Bench, data: Data) -> None:
    s = bench.sizes
    count = s.stats_members + s.stats_active * s.stats_days
    batch: list[dict[str, Any]] = []
    bar = tqdm(total=count, desc="seed /ud /top data", unit="doc", mininterval=2, leave=False, disable=None)
    with bar:
        for doc in data.documents():
            batch.append(doc)
            if len(batch) == SEED_BATCH:
                await bench.db.activity.insert_many(batch, ordered=False)
                bar.update(len(batch))
                batch = []
        if batch:
            await bench.db.activity.insert_many(batch, ordered=False)
            bar.update(len(batch))


async def ud(cog: StatsCog, member: int, window: Window) -> None:
    """What `/ud` reads and builds: counters and ranks, the member's days for the streaks."""
    config = await cog.guild_settings.get(G)
    today = cog.bot.clock.now().astimezone(zone(config.time_zone)).date()
    values, extra, _, habits = await cog.ud_read(config, member, window, today)
    build_ud_embed(f"member {member}", window.period, *values, extra, member_habits=habits,
                   period_text=window.label)


def plan_summary(answer: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether an explain answer shows an index scan, and the plan stages it names."""
    text = json.dumps(answer, default=str)
    stages = sorted(set(re.findall(r'"stage": "([A-Z_]+)"', text)))
    indexes = sorted(set(re.findall(r'"indexName": "([^"]+)"', text)))
    if not stages:
        return None, f"no plan stages in the answer (keys: {', '.join(sorted(answer))})"
    uses = any(stage in {"IXSCAN", "COUNT_SCAN", "DISTINCT_SCAN", "EXPRESS_IXSCAN"} for stage in stages)
    return uses, f"stages {', '.join(stages)}" + (f"; indexes {', '.join(indexes)}" if indexes else "")


async def explain(bench: Bench, pipeline: list[dict[str, Any]]) -> tuple[bool | None, str, Any]:
    try:
        answer = await bench.db.command("aggregate", "activity", pipeline=pipeline, explain=True)
    except Exception as exc:
        return None, f"explain failed: {type(exc).__name__}: {exc}", None
    uses, summary = plan_summary(answer)
    return uses, summary, json.loads(json.dumps(answer, default=str))


async def run(bench: Bench, real_mongodb: bool) -> tuple[list[Row], list[Check]]:
    s = bench.sizes
    data = Data(bench)
    log.info("/ud /top: seeding %d totals and %d day documents", s.stats_members,
             s.stats_active * s.stats_days)
    await seed(bench, data)
    bench.world.add(bench.world.guild_spec(STATS_GUILD, min(s.stats_members, 100)))
    guild = bench.world.attach(bench.bot, STATS_GUILD)
    repo = CapturingActivity(bench.db, bench.bot.retry_policy, bench.bot.writer)
    cog = StatsCog(bench.bot, repo, bench.bot.repos.guild_settings)
    since30 = period_start_day("30d", bench.clock.now(), zone("UTC"))
    rng = random.Random(4)
    active = list(data.by_day)
    pick = lambda: rng.choice(active)  # noqa: E731

    # as after a start: the guild's ranks are built in the background from MongoDB
    ranks = bench.bot.ranks
    ranks.activity = repo
    started = time.perf_counter()
    async with watch_loop() as build_watch:
        ranks.ensure(G)
        await ranks.wait_ready(G)
    build_s = time.perf_counter() - started
    assert ranks.ready(G), "the lease is not held: the ranks would not be used"
    log.info("/ud /top: raw find_one x%d", s.raw_samples)
    raw = await samples(lambda: bench.db.activity.find_one({"_id": total_key(G, pick())}), s.raw_samples)
    raw_p99 = percentile(raw, 99)
    all_time, days30 = Window("all", None), Window("30d", since30)
    ops = {
        "/ud all time": lambda: ud(cog, pick(), all_time),
        "/ud 30 days": lambda: ud(cog, pick(), days30),
        "/top messages, all time": lambda: cog.top_page(guild, pick(), "messages", all_time, 0),
        "/top voice, 30 days": lambda: cog.top_page(guild, pick(), "voice", days30, 0),
    }
    docs = s.stats_members + s.stats_active * s.stats_days
    rows = [Row("ranks build", f"{docs:,} activity documents, in the background after start (with "
                "the boards of today, 7 and 30 days)", f"{build_s:.3f} s", "-", None, "reported", None,
                {"seconds": build_s}),
            stall_row("ranks build", build_watch.longest_stall)]
    for name, call in ops.items():
        log.info("%s x%d", name, s.command_samples)
        timings = await samples(call, s.command_samples)
        p99 = percentile(timings, 99)
        rows.append(Row(name, f"p99 of {len(timings)} (p50 {ms(percentile(timings, 50))})", ms(p99),
                        f"{ms(raw_p99)} (find_one p99 of {len(raw)})", p99 / raw_p99, f"<= {TARGET:g}x",
                        p99 / raw_p99 <= TARGET, {"samples_s": timings, "raw_p99_s": raw_p99}))
    rows += await explain_rows(bench, repo, since30, real_mongodb)
    checks = await read_checks(cog, data, since30)  # before the load phase adds messages
    rows += await under_load(bench, guild, cog, ops, raw_p99)
    return rows, checks


async def under_load(bench: Bench, guild: Any, cog: StatsCog, ops: dict[str, Any],
                     raw_p99: float) -> list[Row]:
    """The same commands, one every COMMAND_GAP, while message events arrive at `latency_rate` a
    second through the real listener (the ranks kept current meanwhile); each timed from when it
    was due to its answer."""
    s = bench.sizes
    count = int(s.latency_rate * s.latency_seconds)
    members = min(s.stats_members, 100)
    messages = bench.world.messages(bench.bot, guild, authors(count, members, seed=44))
    repo = TimedActivity(bench.db, bench.bot.retry_policy, bench.bot.writer)
    activity = activity_cog(bench.bot, repo)
    timings: dict[str, list[float]] = {name: [] for name in ops}
    feeding = asyncio.create_task(steady(activity, repo, messages, s.latency_rate))
    log.info("commands under load: %d events/s for %.0f s", s.latency_rate, s.latency_seconds)
    async with watch_loop() as watch:
        while not feeding.done():
            for name, call in ops.items():
                # From when the command is due: a loop busy with the events delays it, as it would a
                # real interaction. (A read from memory never yields: the gap gives the events turns.)
                due = time.perf_counter() + COMMAND_GAP
                await asyncio.sleep(COMMAND_GAP)
                await call()
                timings[name].append(time.perf_counter() - due)
        due = await feeding
    ingest_p99 = percentile(latencies(due, repo.acks), 99)
    rows = []
    for name, values in timings.items():
        p99 = percentile(values, 99)
        met = p99 / raw_p99 <= TARGET and p99 <= LOAD_CEILING
        rows.append(Row(f"{name}, under load", f"p99 of {len(values)} while ingesting {s.latency_rate:,} "
                        f"events/s (ingest p99 {ms(ingest_p99)})", ms(p99), f"{ms(raw_p99)} (find_one p99)",
                        p99 / raw_p99, f"<= {TARGET:g}x and <= {LOAD_CEILING * 1000:.0f} ms", met,
                        {"samples_s": values, "ingest_p99_s": ingest_p99}))
    rows.append(stall_row("commands under load", watch.longest_stall))
    return rows


async def explain_rows(bench: Bench, repo: CapturingActivity, since30: str | None,
                       real_mongodb: bool) -> list[Row]:
    rows = []
    for period, since in (("all time", None), ("30 days", since30)):
        await repo.leaderboard(G, "messages", since, 0, 10)
        uses, summary, answer = await explain(bench, repo.pipelines["read leaderboard"])
        if real_mongodb:
            verdict, met = ("index used" if uses else "NO index"), bool(uses)
        else:
            verdict, met = "not checked here: needs a real MongoDB (MONGODB_URI)", None
        rows.append(Row("/top leaderboard index", f"explain, {period}", summary, "-", None,
                        "uses an index (explain on real MongoDB)", met,
                        {"uses_index": uses, "verdict": verdict, "explain": answer}))
    return rows


async def read_checks(repo: StatsCog, data: Data, since30: str | None) -> list[Check]:
    """What the commands answer (from the ranks in memory) against the seeded values."""
    checks = []
    for metric, field in (("messages", "messages"), ("voice", "voice_s")):
        for label, since in (("all time", None), ("30 days", since30)):
            window = Window("all" if since is None else "30d", since)
            got = await repo.leaderboard(G, metric, window, 0, 10)
            want = data.board(field, since, 10)
            checks.append(Check(f"/top {metric} {label}: first page", got == want,
                                f"{got[:2]}... vs {want[:2]}..."))
            member = next(iter(data.by_day))
            rank, expected = await repo.rank(G, member, metric, window), data.rank(field, since, member)
            checks.append(Check(f"/ud {metric} {label}: rank", rank == expected, f"{rank} vs {expected}"))
    member = next(iter(data.by_day))
    counters = await repo.member_counters(G, member, Window("30d", since30))
    want = data.values
    ok = all(getattr(counters, f) == want(f, since30)[member] for f in COUNTERS)
    checks.append(Check("/ud 30 days: counters", ok, str(counters)))
    return checks
