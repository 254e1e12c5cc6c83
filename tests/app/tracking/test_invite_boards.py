"""The invite boards in memory against the aggregations over `joins` and `invite_bonus` (and their
retention against the from-scratch computation over the credited joins), after random joins,
leaves, rejoins, settled joins, fake marks, bonuses (some retried), resets, restores and erases
written through the real repositories, across a rebuild from MongoDB (a restart) with writes
landing while it reads."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.operations.invite_resets import RestoreError, reset_invites, restore_invites
from app.tracking import invite_boards as boards_module
from app.tracking.invite_boards import InviteBoards
from app.tracking.invite_stats import InviteStats
from app.tracking.retention import Horizon
from app.wiring.clock import ManualClock
from app.wiring.container import Repositories
from repositories.joins import FIRST, REJOIN, Attribution, JoinRecord, join_key

GUILDS = (7, 8)
INVITERS = (101, 102, 103, 104)
JOINERS = range(200, 260)
PERIODS = (None, 1, 7, 30)  # all time, then days back
OLD = datetime(2020, 1, 1, tzinfo=UTC)


def code_of(inviter: int, rng: random.Random) -> str:
    """One of the inviter's two codes; `shared` is used by every inviter (retention per code)."""
    return rng.choice((f"c{inviter}", f"d{inviter}", "shared"))


class World:
    """The bot's repositories and boards, and what the random writer needs to draw valid steps."""

    def __init__(self, db: Any, policy: Any, clock: ManualClock, batch: int = 7) -> None:
        self.repos = Repositories.create(db, policy)
        self.boards = InviteBoards(self.repos.joins, self.repos.invite_bonus, batch=batch)
        self.repos.invite_boards = self.boards
        self.clock = clock
        self.reference = InviteStats(self.repos.joins, self.repos.invite_bonus)  # the aggregations
        self.horizons: list[Horizon] = []  # every retention horizon compared, to show it was exercised

    def stats(self) -> InviteStats:
        return self.repos.invite_stats


class Writer:
    """Random writes, remembered across a restart (joined members, backups, bonus operations)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.joined: dict[tuple[int, int], datetime] = {}  # latest join of each (guild, member)
        self.present: set[tuple[int, int]] = set()
        self.backups: list[tuple[int, str]] = []
        self.bonus_ops: list[tuple[int, int, int, str]] = []
        self.ops = 0

    async def step(self, world: World) -> None:
        rng = self.rng
        guild, member = rng.choice(GUILDS), rng.choice(JOINERS)
        roll = rng.random()
        if roll < 0.35:
            await self._join(world, guild, member)
        elif roll < 0.5 and (guild, member) in self.present:
            await world.repos.joins.left(guild, member, world.clock.now())
            self.present.discard((guild, member))
        elif roll < 0.58 and (guild, member) in self.joined:
            key = self._key(guild, member)
            await world.repos.joins.mark_fake(key, rng.choice(("left_quickly", "repeat_joiner")))
        elif roll < 0.7:
            await self._bonus(world, guild)
        elif roll < 0.76:
            target = rng.choice((None, *INVITERS))
            result = await reset_invites(world.repos, guild, target, 1, world.clock.now())
            self.backups.append((guild, result.backup_id))
        elif roll < 0.82 and self.backups:
            backup_guild, backup_id = rng.choice(self.backups)
            with contextlib.suppress(RestoreError):  # restored before: nothing changes
                await restore_invites(world.repos, backup_guild, backup_id, world.clock.now())
        elif roll < 0.85 and (guild, member) in self.joined:
            await world.repos.joins.erase_member(guild, member)
            self.joined.pop((guild, member), None)
            self.present.discard((guild, member))
        else:
            world.clock.advance(rng.choice([600, 3 * 3600, 26 * 3600, 4 * 86400]))
        self.ops += 1

    def _key(self, guild: int, member: int) -> str:
        return join_key(guild, member, self.joined[(guild, member)])

    async def _join(self, world: World, guild: int, member: int) -> None:
        rng = self.rng
        joins = world.repos.joins
        counted = REJOIN if (guild, member) in self.joined else FIRST
        if counted == FIRST and (guild, member) in self.present:
            return
        now = world.clock.now() + timedelta(milliseconds=rng.randint(0, 999))
        inviter = rng.choice((None, *INVITERS))
        awaiting = inviter is not None and rng.random() < 0.2
        if inviter is None:
            attribution = Attribution("unknown", reason="no_invite_use")
        elif awaiting:
            attribution = Attribution("unknown", reason="fetch_failed", awaiting="snapshot")
        else:
            attribution = Attribution("invite", code_of(inviter, rng), inviter, f"i{inviter}")
        fake = rng.choice(("", "", "", "young_account"))
        record = JoinRecord(guild, member, f"m{member}", now, OLD, attribution, counted, fake, now)
        await joins.record(record)
        if rng.random() < 0.1:
            await joins.record(record)  # a replayed join: changes nothing
        self.joined[(guild, member)] = now
        self.present.add((guild, member))
        if awaiting:
            settled = Attribution("invite", code_of(inviter, rng), inviter, f"i{inviter}")
            credit = inviter if counted == FIRST else 0
            await joins.settle_awaiting(record.key, settled, credit, fake)
        if rng.random() < 0.1:  # gone within the second: stayed no day at all
            await joins.left(guild, member, now + timedelta(milliseconds=rng.randint(-500, 500)))
            self.present.discard((guild, member))

    async def _bonus(self, world: World, guild: int) -> None:
        rng = self.rng
        if self.bonus_ops and rng.random() < 0.2:
            op = rng.choice(self.bonus_ops)  # a retried command: applied once
        else:
            op = (guild, rng.choice(INVITERS), rng.randint(-2, 5), f"op-{self.ops}")
            self.bonus_ops.append(op)
        await world.repos.invite_bonus.add(*op)


async def assert_exact(world: World, guild: int) -> None:
    """Every period's whole board, some pages, and every member's figures equal the aggregations."""
    assert world.boards.ready(guild)
    stats, reference = world.stats(), world.reference
    now = world.clock.now()
    for days in PERIODS:
        since = None if days is None else now - timedelta(days=days)
        want = await reference.leaderboard(guild, since)
        rows, count = await stats.leaderboard_page(guild, since, 0, 10_000)
        assert (rows, count) == (want, len(want)), days
        assert (await stats.leaderboard_page(guild, since, 3, 4))[0] == want[3:7]
    for member in (*INVITERS, 999):
        assert await stats.member_summary(guild, member) == await reference.member_summary(guild, member)
    for at in (now, now + timedelta(days=6, hours=20), now + timedelta(days=29)):
        await assert_retention_exact(world, guild, at)


async def assert_retention_exact(world: World, guild: int, now: datetime) -> None:
    """Retention from the boards equals the from-scratch computation over the credited joins read
    from MongoDB (`credited_stays`), per inviter, per code, per inviter and code, the board and the
    leaderboard sorted by 30-day retained, at `now`."""
    stats, reference = world.stats(), world.reference
    for inviter in (*INVITERS, 999):
        got = await stats.retention(guild, now, inviter_id=inviter)
        assert got == await reference.retention(guild, now, inviter_id=inviter), inviter
        by_code = await stats.retention_by_code(guild, now, inviter)
        assert by_code == await reference.retention_by_code(guild, now, inviter), inviter
        for code, view in by_code:
            assert await stats.retention(guild, now, inviter_id=inviter, code=code) == view
    for code in ("shared", "c101", "d102", "nope"):
        want = await reference.retention(guild, now, code=code)
        assert await stats.retention(guild, now, code=code) == want, code
    board = await stats.retention_board(guild, now, 0, 10_000)
    assert board == await reference.retention_board(guild, now, 0, 10_000)
    world.horizons += [h for _, view in board[0] for h in view.retention.horizons]
    assert (await stats.retention_board(guild, now, 1, 2))[0] == board[0][1:3]
    for days in PERIODS:
        since = None if days is None else now - timedelta(days=days)
        rows = await stats.leaderboard_page(guild, since, 0, 10_000, retained_at=now)
        assert rows == await reference.leaderboard_page(guild, since, 0, 10_000, retained_at=now), days


async def traffic(world: World, writer: Writer, steps: int) -> None:
    for _ in range(steps):
        await writer.step(world)
        await asyncio.sleep(0)


@pytest.mark.parametrize("seed", [1, 2])
async def test_invite_boards_equal_the_aggregations_after_random_writes_restart_reset_restore_erase(
        db, policy, monkeypatch, seed: int) -> None:
    monkeypatch.setattr(boards_module, "READ_BATCH", 3)
    rng = random.Random(seed)
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    world, writer = World(db, policy, clock), Writer(rng)
    await traffic(world, writer, 120)  # history before the boards exist
    for guild in GUILDS:
        world.boards.ensure(guild)
    await traffic(world, writer, 120)  # the builds read in batches of 7 meanwhile
    for guild in GUILDS:
        await world.boards.wait_ready(guild)
        await assert_exact(world, guild)
    for _ in range(6):  # kept exact write after write
        await traffic(world, writer, 40)
        for guild in GUILDS:
            await assert_exact(world, guild)

    # a restart: new repositories and boards, read from MongoDB while writes land
    seen, world = world.horizons, World(db, policy, clock)
    world.horizons = seen
    for guild in GUILDS:
        world.boards.ensure(guild)
    await traffic(world, writer, 100)
    for guild in GUILDS:
        await world.boards.wait_ready(guild)
        await assert_exact(world, guild)
    assert world.boards.built == len(GUILDS)
    assert writer.backups, "the random writes ran no reset"
    await assert_retention_was_exercised(world)


async def assert_retention_was_exercised(world: World) -> None:
    """The comparisons above saw members who stayed, who did not and who are not known yet."""
    horizons = world.horizons
    assert any(h.stayed for h in horizons if h.days == 30)
    assert any(h.known > h.stayed for h in horizons)
    assert any(h.pending for h in horizons)


async def test_until_built_and_on_a_standby_the_figures_come_from_the_aggregations(db, policy) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    world, writer = World(db, policy, clock), Writer(random.Random(3))
    await traffic(world, writer, 60)
    assert not world.boards.ready(7)
    await assert_same_without_boards(world)
    world.boards.ensure(7)
    await world.boards.wait_ready(7)
    counting = [False]
    world.boards.active = lambda: counting[0]
    assert not world.boards.ready(7)  # another process holds the lease
    await assert_same_without_boards(world)
    counting[0] = True
    await assert_exact(world, 7)


async def assert_same_without_boards(world: World) -> None:
    rows, count = await world.stats().leaderboard_page(7, None, 0, 10_000)
    assert rows == await world.reference.leaderboard(7) and count == len(rows)
