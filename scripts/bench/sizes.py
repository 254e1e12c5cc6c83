"""How big each case is: the issue's sizes (full), a quick run for CI, and a tiny one for tests."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Sizes:
    name: str
    ingest_events: int = 20_000
    ingest_members: int = 2_000
    latency_rate: int = 1_000  # events per second
    latency_seconds: float = 20.0
    voice_members: int = 10_000  # open sessions (flush) and members in voice (restart)
    invites: int = 1_000
    downtime_seconds: int = 60  # between the flush and the restart, credited at reconciliation
    stats_members: int = 100_000  # members with an all-time document
    stats_active: int = 10_000  # members with day buckets
    stats_days: int = 30
    command_samples: int = 3  # timings per command for the p99 (each takes many seconds on nx-27017)
    raw_samples: int = 300  # timings of the raw find_one
    burst_joins: int = 200  # joins per rate in the join-burst case (5 codes)
    backfill_messages: int = 10_000  # missed while the bot was away, counted from history
    backfill_channels: int = 10
    backfill_members: int = 500
    backfill_live_rate: int = 200  # live events per second, without and then during the backfill
    backfill_live_seconds: float = 15.0  # each live stream's length
    invite_joins: int = 100_000  # join documents of the invite-board case
    invite_inviters: int = 5_000


FULL = Sizes("full")
QUICK = Sizes(
    "quick", ingest_events=3_000, ingest_members=300, latency_seconds=3.0, voice_members=1_000,
    invites=100, stats_members=2_000, stats_active=200, command_samples=3, raw_samples=100,
    burst_joins=20, backfill_messages=1_500, backfill_channels=3, backfill_members=100,
    backfill_live_seconds=3.0, invite_joins=2_000, invite_inviters=200,
)
TINY = Sizes(
    "tiny", ingest_events=400, ingest_members=40, latency_rate=200, latency_seconds=1.0,
    voice_members=120, invites=20, stats_members=300, stats_active=30, stats_days=5,
    command_samples=3, raw_samples=10, burst_joins=10, backfill_messages=300, backfill_channels=3,
    backfill_members=20, backfill_live_rate=100, backfill_live_seconds=1.0, invite_joins=300,
    invite_inviters=30,
)


def with_members(sizes: Sizes, members: int) -> Sizes:
    """`sizes` for a server of `members`: the cases that grow with the server (the commands' stored
    members, a tenth of them active in the period; the invite board's joins, one inviter per 20)
    scaled to it, the others (ingest, sessions, invites, backfill) as they are."""
    return replace(sizes, name=f"{sizes.name}, {members:,} members", stats_members=members,
                   stats_active=max(members // 10, 1), invite_joins=members,
                   invite_inviters=max(members // 20, 1))
