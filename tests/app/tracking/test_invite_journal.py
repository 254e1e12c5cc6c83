"""Invite jobs written ahead (issue 13, failure 4; issue 14, failure 4): joins, leaves and the
invite reads made for them survive a crash during a MongoDB outage, and the next run attributes
them exactly as a run without the outage would have."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pymongo.common
import pytest

from app.storage.database import make_client
from app.storage.journal import Journal
from app.tracking.invites import GuildMembers, InviteTracker
from app.wiring.container import Repositories
from scripts.bench.joins import BurstWorld, joiner
from scripts.faultproxy import FaultProxy

GID = 7


class World(BurstWorld):
    """The burst benchmark's guild, with a member list (those who joined and did not leave)."""

    def __init__(self) -> None:
        super().__init__(GID, ["c0", "c1", "c2"], random.Random(13))
        self.present: set[int] = set()

    def members(self, guild_id: int) -> GuildMembers | None:
        found = [joiner(i) for i in range(10) if joiner(i).member_id in self.present]
        return GuildMembers("journal", [j.__class__(j.member_id, j.name, j.joined_at, j.created_at, False)
                                        for j in found], True)


@pytest.fixture
async def proxied_repos(fault_proxy: FaultProxy, db: Any, policy: Any, monkeypatch) -> Any:
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.05)
    client = make_client(fault_proxy.uri)
    yield Repositories.create(client[db.name], policy)
    await client.close()


async def join(tracker: InviteTracker, world: World, index: int, code: str) -> None:
    """Member `index` joins through `code`; the event reaches the bot 50 ms later."""
    member = joiner(index)
    world.join(member.member_id, code)
    world.present.add(member.member_id)
    await asyncio.sleep(0.05)
    tracker.submit(GID, "join", member)


async def crash(tracker: InviteTracker, journal: Journal) -> None:
    """SIGKILL: the workers stop where they are; only what the journal committed remains."""
    await asyncio.sleep(0.25)  # the write-ahead bound: events older than this are on disk
    assert journal._task is not None
    journal._task.cancel()
    await tracker.close()


async def test_joins_and_a_leave_during_an_outage_survive_a_crash_and_keep_their_inviters(
    proxied_repos, fault_proxy, db, policy, clock, tmp_path: Path
) -> None:
    world = World()
    journal = Journal(tmp_path / "invite-journal.db")
    await journal.open()
    tracker = InviteTracker(proxied_repos, clock, world, journal=journal)
    tracker.guild_available(GID)
    await tracker.wait_idle()  # the snapshot is stored (all codes at 0 uses)

    fault_proxy.plan.refuse = True
    fault_proxy.cut_all()
    await join(tracker, world, 0, "c0")
    await asyncio.sleep(1.0)
    await join(tracker, world, 1, "c1")
    await asyncio.sleep(1.0)
    clock.advance(30)
    world.present.discard(joiner(0).member_id)
    tracker.submit(GID, "leave", joiner(0).member_id)
    left_at = clock.now()
    await asyncio.sleep(0.3)
    clock.advance(30)
    await join(tracker, world, 2, "c2")
    await asyncio.sleep(1.0)
    await crash(tracker, journal)

    fault_proxy.heal()
    clock.advance(60)
    repos = Repositories.create(db, policy)
    again = Journal(tmp_path / "invite-journal.db")
    restarted = InviteTracker(repos, clock, world, journal=again)
    restarted.restore(await again.open())
    restarted.guild_available(GID)
    await asyncio.wait_for(restarted.wait_idle(), 20)
    await restarted.close()
    await again.flush()

    docs = {d["member_id"]: d async for d in db.joins.find({"guild_id": GID})}
    assert {m: (d["source"], d.get("code")) for m, d in docs.items()} == {
        joiner(0).member_id: ("invite", "c0"),
        joiner(1).member_id: ("invite", "c1"),
        joiner(2).member_id: ("invite", "c2"),
    }
    first = docs[joiner(0).member_id]
    assert (first["stay"], first["left_ms"]) == ("closed", int(left_at.timestamp() * 1000))
    assert again.depth == 0  # everything it held is in MongoDB now
    await again.close()


class Unforgetting(Journal):
    """A journal whose forgets never reach the disk: a crash right after MongoDB took the writes."""

    def forget(self, record_ids: list[int]) -> None:
        return None


async def test_inputs_kept_after_their_writes_landed_neither_count_twice_nor_move_the_snapshot_back(
    db, policy, clock, tmp_path: Path
) -> None:
    repos = Repositories.create(db, policy)
    world = World()
    journal = Unforgetting(tmp_path / "invite-journal.db")
    await journal.open()
    first = InviteTracker(repos, clock, world, journal=journal)
    first.guild_available(GID)
    await first.wait_idle()
    await join(first, world, 0, "c0")
    await asyncio.sleep(0.8)
    await join(first, world, 1, "c0")
    await asyncio.wait_for(first.wait_idle(), 10)
    await first.close()
    await journal.flush()
    assert journal.depth >= 4  # two joins and their reads, all still on disk

    again = Journal(tmp_path / "invite-journal.db")
    restarted = InviteTracker(repos, clock, world, journal=again)
    restarted.restore(await again.open())
    restarted.guild_available(GID)
    await asyncio.wait_for(restarted.wait_idle(), 10)
    await join(restarted, world, 2, "c0")  # the snapshot must still hold both earlier uses
    await asyncio.wait_for(restarted.wait_idle(), 10)
    await restarted.close()
    await again.flush()

    docs = [d async for d in db.joins.find({"guild_id": GID})]
    assert sorted((d["member_id"], d["source"], d.get("code")) for d in docs) == [
        (joiner(i).member_id, "invite", "c0") for i in range(3)
    ]
    assert again.depth == 0
    await again.close()
