"""One active process: the lease, its take-overs, and the fencing of a former holder's writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.storage.lease import DataDirInUse, DataDirLock, Lease
from app.storage.retry import GuardedUpdate, OpSequence, apply_guarded
from repositories.lease import LeaseRepository
from tests.conftest import TEST_POLICY


def make_lease(db, clock, data_dir: str, ttl: float = 0.3) -> Lease:
    return Lease(LeaseRepository(db, TEST_POLICY), OpSequence(), clock, data_dir, ttl)


async def test_a_second_process_stands_by_and_takes_over_at_once_when_the_holder_releases(db, clock):
    first, second = make_lease(db, clock, "dir-a"), make_lease(db, clock, "dir-b")
    await first.step()
    await second.step()
    assert (first.role, first.token, second.role) == ("active", 1, "standby")
    await second.step()
    assert second.role == "standby"  # a renewed or fresh lease is never taken over
    await first.release()
    await second.step()
    assert (second.role, second.token) == ("active", 2)
    assert second.sequence.next() > first.sequence.next()  # the new term is above the old one


async def test_a_crashed_holder_is_taken_over_after_ttl_without_a_renewal_and_not_before(db, clock):
    holder, standby = make_lease(db, clock, "dir-a"), make_lease(db, clock, "dir-b", ttl=0.4)
    await holder.step()
    await standby.step()  # starts watching
    await asyncio.sleep(0.25)
    clock.advance(1)
    await holder.step()  # a renewal: the standby's watch starts again
    await standby.step()
    await asyncio.sleep(0.25)
    await standby.step()
    assert standby.role == "standby"  # 0.25 s since the renewal it saw
    await asyncio.sleep(0.2)
    await standby.step()  # 0.45 s without a renewal: the holder is gone
    assert (standby.role, standby.token) == ("active", 2)
    await holder.step()  # the former holder learns it at its next renewal
    assert holder.role == "standby" and holder.token is None


async def test_a_restart_on_the_same_data_dir_takes_over_at_once(db, clock):
    crashed = make_lease(db, clock, "dir-a", ttl=15)
    await crashed.step()
    restarted = make_lease(db, clock, "dir-a", ttl=15)  # holds dir-a's lock: the holder is gone
    await restarted.step()
    assert (restarted.role, restarted.token) == ("active", 2)


async def test_a_former_holders_late_writes_are_fenced_out(db, clock):
    """Its sequences are of an older term: refused on every document the new holder wrote."""
    old, new = make_lease(db, clock, "dir-a"), make_lease(db, clock, "dir-b")
    await old.step()
    late = old.sequence.next()  # taken before the take-over, lands after it
    await old.release()
    await new.step()
    item = [GuardedUpdate("ada", {"$inc": {"n": 1}})]
    await apply_guarded(db.counts, item, new.sequence.next(), "n_seq", TEST_POLICY, "new holder")
    await apply_guarded(db.counts, item, late, "n_seq", TEST_POLICY, "former holder")
    assert (await db.counts.find_one({"_id": "ada"}))["n"] == 1


def test_one_process_per_data_dir(tmp_path: Path):
    first = DataDirLock(tmp_path / "data")
    ident = first.acquire()
    with pytest.raises(DataDirInUse, match="in use by pid"):
        DataDirLock(tmp_path / "data").acquire()
    first.release()
    again = DataDirLock(tmp_path / "data")
    assert again.acquire() == ident  # the directory keeps its id
    again.release()
