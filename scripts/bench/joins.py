"""Join bursts: who gets credited when members join a few per second, through the real tracker.

A simulated guild stands in for Discord (`BurstWorld`, handed to `InviteTracker` as its
`GuildAccess`): a member's join adds one use to the code they came through at the moment of the
join; the join event reaches the tracker 30-100 ms later (in join order, like one gateway
stream); `GET /guilds/{id}/invites` takes 160-200 ms and reads the counts halfway through. The
tracker is the bot's own (`app.tracking.invites.InviteTracker`) on the benchmark's database with
the real repositories; its answers are read back from the `joins` collection and compared with
the truth. All randomness comes from one seeded RNG per rate.

The baseline does what the popular invite bots do, on the same world and the same events: on
each join event (one at a time, in order) fetch the invites, credit the first code whose uses
rose against the stored list, and store the fresh list.

Columns: exact (the right code), wrong (a code, but not the one used), ambiguous (no code,
candidates kept), unknown (no candidate). Target: 0 wrong at every rate for the tracker.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.tracking.audit_match import AuditedInvite
from app.tracking.invites import GuildMembers, InviteTracker, Joiner, JoinFacts
from app.wiring.clock import Clock
from app.wiring.container import Repositories
from repositories.invites import StoredInvite
from scripts.bench.measure import Check, Row

log = logging.getLogger(__name__)
FETCH_SECONDS = (0.160, 0.200)
EVENT_LAG_SECONDS = (0.030, 0.100)
FIRST_GUILD = 900
JOINED_BASE = datetime(2026, 3, 1, tzinfo=UTC)
MEMBER_BASE = 1 << 41
INVITER_BASE = 1 << 42


@dataclass
class Tally:
    exact: int = 0
    wrong: int = 0
    ambiguous: int = 0
    unknown: int = 0
    missing: int = 0

    def add(self, truth: str | None, source: str, code: str | None) -> None:
        if source in ("invite", "vanity", "downtime"):
            if code == truth:
                self.exact += 1
            else:
                self.wrong += 1
        elif source == "ambiguous":
            self.ambiguous += 1
        else:
            self.unknown += 1

    def text(self) -> str:
        missing = f", {self.missing} missing" if self.missing else ""
        return (f"{self.wrong} wrong, {self.exact} exact, {self.ambiguous} ambiguous, "
                f"{self.unknown} unknown{missing}")


class QuietAccess:
    """The `GuildAccess` parts a simulated guild has nothing to say about: no roles, no join hint,
    no audit log, leaves not announced."""

    def member_roles(self, guild_id: int, member_id: int) -> set[int] | None:
        return None

    def join_hint(self, guild_id: int) -> str:
        return ""

    async def audited_invites(self, guild_id: int) -> list[AuditedInvite] | None:
        return None

    def left(self, guild_id: int, member_id: int, name: str, facts: JoinFacts | None) -> None:
        return None


@dataclass
class BurstWorld(QuietAccess):
    """A guild as the tracker sees it through `GuildAccess`, with Discord's timing."""

    guild_id: int
    codes: list[str]
    rng: random.Random
    fetch_seconds: tuple[float, float] = FETCH_SECONDS
    uses: dict[str, int] = field(default_factory=dict)
    truth: dict[int, str | None] = field(default_factory=dict)
    announced: list[JoinFacts] = field(default_factory=list)
    fetches: int = 0

    def __post_init__(self) -> None:
        self.uses = {code: 0 for code in self.codes}

    def inviter(self, code: str) -> int:
        return INVITER_BASE + self.codes.index(code)

    def join(self, member_id: int, code: str | None) -> None:
        self.truth[member_id] = code
        if code is not None:
            self.uses[code] += 1

    def listing(self) -> list[StoredInvite]:
        return [
            StoredInvite(code, uses, 0, self.inviter(code), code.upper(), 1, JOINED_BASE, None)
            for code, uses in self.uses.items()
        ]

    async def invites(self, guild_id: int) -> list[StoredInvite]:
        self.fetches += 1
        took = self.rng.uniform(*self.fetch_seconds)
        await asyncio.sleep(took / 2)
        listing = self.listing()
        await asyncio.sleep(took / 2)
        return listing

    async def vanity(self, guild_id: int) -> tuple[str, int] | None:
        return None

    def has_guild(self, guild_id: int) -> bool:
        return True

    def members(self, guild_id: int) -> GuildMembers | None:
        return GuildMembers(f"burst {guild_id}", [], True)

    def joined(self, facts: JoinFacts) -> None:
        self.announced.append(facts)


class Baseline:
    """What popular bots do: per join event, fetch, credit the first code whose uses rose, store
    the fresh list."""

    def __init__(self, world: BurstWorld) -> None:
        self.world = world
        self.cache: dict[str, int] = {}
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.answers: dict[int, str | None] = {}

    async def start(self) -> None:
        self.cache = {inv.code: inv.uses for inv in await self.world.invites(self.world.guild_id)}

    def on_join(self, member_id: int) -> None:
        self.queue.put_nowait(member_id)

    async def run(self) -> None:
        while (member_id := await self.queue.get()) is not None:
            live = {inv.code: inv.uses for inv in await self.world.invites(self.world.guild_id)}
            self.answers[member_id] = next((c for c, n in live.items() if n > self.cache.get(c, 0)), None)
            self.cache = live

    def tally(self) -> Tally:
        tally = Tally()
        for member_id, truth in self.world.truth.items():
            code = self.answers.get(member_id)
            tally.add(truth, "invite" if code else "unknown", code)
        return tally


def plan(rng: random.Random, joins: int, rate: float, codes: list[str],
         no_invite: float = 0.0) -> list[tuple[float, str | None]]:
    """(gap before the join, code or None) for each join: gaps 0.5-1.5 x 1/rate, codes uniform,
    `no_invite` of them without an invite use (Discovery)."""
    out: list[tuple[float, str | None]] = []
    for _ in range(joins):
        code = None if rng.random() < no_invite else rng.choice(codes)
        out.append((rng.uniform(0.5, 1.5) / rate, code))
    return out


def joiner(index: int) -> Joiner:
    joined = JOINED_BASE + timedelta(seconds=index)
    return Joiner(MEMBER_BASE + index, f"joiner{index}", joined, joined - timedelta(days=400), True)


async def drive(world: BurstWorld, steps: Iterable[tuple[float, str | None]],
                deliver: list[Any], lag: tuple[float, float] = EVENT_LAG_SECONDS) -> None:
    """Let the members join on schedule; each join's event reaches every `deliver` callable
    30-100 ms later, in join order."""
    loop = asyncio.get_running_loop()
    last = 0.0
    for index, (gap, code) in enumerate(steps):
        await asyncio.sleep(gap)
        member = joiner(index)
        world.join(member.member_id, code)
        last = max(last, loop.time() + world.rng.uniform(*lag))
        for target in deliver:
            loop.call_at(last, target, member)
    await asyncio.sleep(max(0.0, last - loop.time()) + 0.01)


async def tracker_tally(repos: Repositories, world: BurstWorld) -> Tally:
    tally = Tally()
    found: dict[int, dict[str, Any]] = {}
    async for doc in repos.joins.collection.find({"guild_id": world.guild_id}):
        found[int(doc["member_id"])] = doc
    for member_id, truth in world.truth.items():
        doc = found.get(member_id)
        if doc is None:
            tally.missing += 1
        else:
            tally.add(truth, doc["source"], doc.get("code"))
    return tally


async def burst(repos: Repositories, clock: Clock, *, guild_id: int, rate: float, joins: int,
                codes: int = 5, seed: int = 14, no_invite: float = 0.0,
                baseline: bool = True) -> tuple[Tally, Tally | None, BurstWorld]:
    """`joins` members at `rate` per second over `codes` codes, through a fresh tracker (and the
    baseline on the same events). The tracker first syncs (stores the snapshot), as on start."""
    rng = random.Random(f"{seed}:{rate}")
    world = BurstWorld(guild_id, [f"c{i}" for i in range(codes)], rng)
    steps = plan(rng, joins, rate, world.codes, no_invite)
    tracker = InviteTracker(repos, clock, world)
    tracker.guild_available(guild_id)
    await tracker.wait_idle()
    base = Baseline(world) if baseline else None
    deliver: list[Any] = [lambda member: tracker.submit(guild_id, "join", member)]
    runner = None
    if base is not None:
        await base.start()
        runner = asyncio.get_running_loop().create_task(base.run())
        deliver.append(lambda member: base.on_join(member.member_id))
    try:
        await drive(world, steps, deliver)
        await tracker.wait_idle()
        if base is not None and runner is not None:
            base.queue.put_nowait(None)
            await runner
    finally:
        await tracker.close()
    return await tracker_tally(repos, world), (base.tally() if base else None), world


FULL_RATES = (1.0, 2.0, 5.0, 10.0, 20.0)
QUICK_RATES = (5.0, 20.0)


async def run(bench: Any) -> tuple[list[Row], list[Check]]:
    """The benchmark case: every rate at once (each its own guild and world)."""
    quick = bench.sizes.name != "full"
    rates = QUICK_RATES if quick else FULL_RATES
    joins = bench.sizes.burst_joins
    log.info("join bursts: %d joins over 5 codes at %s joins/s", joins, ", ".join(f"{r:g}" for r in rates))
    results = await asyncio.gather(*(
        burst(bench.bot.repos, bench.clock, guild_id=FIRST_GUILD + i, rate=rate, joins=joins)
        for i, rate in enumerate(rates)
    ))
    rows: list[Row] = []
    checks: list[Check] = []
    for rate, (mine, theirs, world) in zip(rates, results, strict=True):
        assert theirs is not None
        what = f"{joins} joins over 5 codes at {rate:g}/s ({world.fetches} invite reads, both together)"
        values = {"rate": rate, "joins": joins, "tracker": vars(mine), "baseline": vars(theirs)}
        rows.append(Row("join burst", what, mine.text(), theirs.text(), None, "0 wrong",
                        mine.wrong == 0, values))
        checks.append(Check(f"join burst {rate:g}/s: no wrong inviter, every join recorded",
                            mine.wrong == 0 and mine.missing == 0, mine.text()))
    return rows, checks
