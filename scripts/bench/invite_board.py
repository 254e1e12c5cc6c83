"""`/invites` and `/invites leaderboard` reads: from the invite boards in memory vs raw find_one.

Data: `invite_joins` join documents over `invite_inviters` inviters (some fake, some left, some
cleared by a reset, a tenth of them without an invite), and a bonus for a tenth of the inviters,
inserted raw in the shape `JoinRepository` writes. The boards are built as after a start; then the
p99 of a leaderboard page (all time, 30 days) and of a member's figures against a raw find_one by
`_id`, and once, the aggregation the commands ran before. Afterwards the boards' answers are
checked against the aggregations.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

from tqdm import tqdm

from app.tracking.invite_stats import InviteStats
from repositories.joins import FIRST, Attribution, JoinRecord
from scripts.bench.env import Bench
from scripts.bench.measure import Check, Row, ms, percentile, samples, sec, stall_row, timed, watch_loop
from scripts.bench.world import member_id

log = logging.getLogger(__name__)
G = 6
TARGET = 5.0
SEED_BATCH = 5_000
PAGE = 10


def inviter_of(i: int, inviters: int) -> int:
    return member_id(1_000_000 + (i * 7_919) % inviters)


def join_document(bench: Bench, i: int, inviters: int) -> dict[str, Any]:
    """The i-th join: days back spread over 60 days; every 10th without an invite; every 13th
    fake, every 7th left, every 17th cleared by a reset."""
    joined = bench.clock.now() - timedelta(days=(i * 37) % 60, seconds=i)
    inviter = inviter_of(i, inviters)
    attribution = (Attribution("unknown", reason="no_invite_use") if i % 10 == 0
                   else Attribution("invite", f"c{inviter}", inviter, f"inviter {inviter}"))
    fake = "young_account" if i % 13 == 0 else ""
    record = JoinRecord(G, member_id(i), f"member {i}", joined, joined - timedelta(days=400), attribution,
                        FIRST, fake, joined)
    doc = {"_id": record.key, **record.document()}
    if i % 7 == 0:
        doc["member_status"] = "left"
    if i % 17 == 0:
        doc["reset_id"] = "ib-000000000001"
    return doc


async def seed(bench: Bench) -> None:
    s = bench.sizes
    batch: list[dict[str, Any]] = []
    bar = tqdm(total=s.invite_joins, desc="seed invite data", unit="doc", mininterval=2, leave=False,
               disable=None)
    with bar:
        for i in range(s.invite_joins):
            batch.append(join_document(bench, i, s.invite_inviters))
            if len(batch) == SEED_BATCH or i == s.invite_joins - 1:
                await bench.db.joins.insert_many(batch, ordered=False)
                bar.update(len(batch))
                batch = []
    bonuses = [{"_id": f"{G}:{member_id(1_000_000 + k)}", "guild_id": G,
                "member_id": member_id(1_000_000 + k), "bonus": k % 5 + 1}
               for k in range(0, s.invite_inviters, 10)]
    if bonuses:
        await bench.db.invite_bonus.insert_many(bonuses, ordered=False)


async def run(bench: Bench) -> tuple[list[Row], list[Check]]:
    s = bench.sizes
    log.info("invites: seeding %d joins over %d inviters", s.invite_joins, s.invite_inviters)
    await seed(bench)
    repos = bench.bot.repos
    boards = repos.invite_boards
    assert boards is not None
    async with watch_loop() as watch:
        build_s, _ = await timed(lambda: _build(boards))
    assert boards.ready(G), "the lease is not held: the boards would not be used"
    stats, reference = repos.invite_stats, InviteStats(repos.joins, repos.invite_bonus)
    since30 = bench.clock.now() - timedelta(days=30)
    rng = random.Random(6)
    pick = lambda: inviter_of(rng.randrange(s.invite_joins), s.invite_inviters)  # noqa: E731
    key = lambda: join_document(bench, rng.randrange(s.invite_joins), s.invite_inviters)["_id"]  # noqa: E731
    raw = await samples(lambda: bench.db.joins.find_one({"_id": key()}), s.raw_samples)
    raw_p99 = percentile(raw, 99)
    aggregated_s, _ = await timed(lambda: reference.leaderboard(G, None))
    rows = [
        Row("invite boards build", f"{s.invite_joins:,} joins, {s.invite_inviters:,} inviters, after start",
            sec(build_s), "-", None, "reported", None, {"seconds": build_s}),
        stall_row("invite boards build", watch.longest_stall),
        Row("/invites leaderboard", "all time, the aggregation (before; once)", sec(aggregated_s),
            f"{ms(raw_p99)} (find_one p99)", aggregated_s / raw_p99, "reported", None,
            {"seconds": aggregated_s}),
    ]
    page = lambda since: stats.leaderboard_page(G, since, rng.randrange(5) * PAGE, PAGE)  # noqa: E731
    ops = {
        "/invites leaderboard all time": lambda: page(None),
        "/invites leaderboard 30 days": lambda: page(since30),
        "/invites (a member's figures)": lambda: stats.member_summary(G, pick()),
    }
    for name, call in ops.items():
        timings = await samples(call, s.raw_samples)
        p99 = percentile(timings, 99)
        rows.append(Row(name, f"p99 of {len(timings)} (p50 {ms(percentile(timings, 50))})", ms(p99),
                        f"{ms(raw_p99)} (find_one p99 of {len(raw)})", p99 / raw_p99, f"<= {TARGET:g}x",
                        p99 / raw_p99 <= TARGET, {"samples_s": timings, "raw_p99_s": raw_p99}))
    return rows, await checks(stats, reference, since30, pick)


async def _build(boards: Any) -> None:
    started = time.perf_counter()
    boards.ensure(G)
    await boards.wait_ready(G)
    log.info("invites: boards built in %.1f s", time.perf_counter() - started)


async def checks(stats: InviteStats, reference: InviteStats, since30: Any, pick: Any) -> list[Check]:
    out = []
    for label, since in (("all time", None), ("30 days", since30)):
        want = await reference.leaderboard(G, since)
        rows, count = await stats.leaderboard_page(G, since, 0, len(want) + 1)
        out.append(Check(f"/invites leaderboard {label}: every row", (rows, count) == (want, len(want)),
                         f"{count} rows vs {len(want)}"))
    member = pick()
    got, want_summary = await stats.member_summary(G, member), await reference.member_summary(G, member)
    out.append(Check("/invites: a member's figures", got == want_summary, f"{got} vs {want_summary}"))
    return out
