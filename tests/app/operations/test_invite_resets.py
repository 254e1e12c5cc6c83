"""`/invites-admin reset` and `/invites-admin restore` interrupted at every step, against the real test
server.

A crash is a write that never comes back: `CrashingCollection` lets the n-th write to one
collection land (or not) and then fails it and every later write, as a process killed there would.
A fresh `Repositories` is the restarted process. Whatever the crash point, the backup restores to
exactly what was there before, or the reset is finished under the same backup id, and nothing is
taken or given back twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import repositories.invite_backups
import repositories.joins
from app.operations.invite_resets import RestoreError, reset_invites, restore_invites, resume_interrupted
from app.wiring.container import Repositories
from repositories.invite_backups import BackupHeader, new_backup_id
from repositories.joins import FIRST, Attribution, JoinRecord

G = 1
ADMIN = 900
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OLD = datetime(2020, 1, 1, tzinfo=UTC)
WRITES = frozenset({
    "update_one", "update_many", "bulk_write", "insert_one", "insert_many", "delete_one", "delete_many",
    "replace_one", "find_one_and_update",
})
CREDITED = {201: 101, 202: 101, 203: 101, 204: 102}  # member -> inviter
BONUS = {101: 4, 102: 2, 103: 5}


class Crashed(Exception):
    """The process died here (not a MongoDB error: nothing retries it)."""


class CrashingCollection:
    """A collection whose `nth` write crashes `when` "before" or "after" it reaches the server;
    every later write crashes too (the process is gone)."""

    def __init__(self, real: Any, nth: int, when: str) -> None:
        self._real, self._nth, self._when = real, nth, when
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in WRITES:
            return attr

        async def write(*args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            if self.writes > self._nth or (self.writes == self._nth and self._when == "before"):
                raise Crashed(f"{self._real.name} write {self.writes}")
            result = await attr(*args, **kwargs)
            if self.writes == self._nth:
                raise Crashed(f"{self._real.name} write {self.writes}, after it landed")
            return result

        return write


def crashing(db: Any, policy: Any, collection: str, nth: int, when: str) -> Repositories:
    repos = Repositories.create(db, policy)
    repo = next(r for r in repos.all() if r.collection_name == collection)
    repo.collection = CrashingCollection(repo.collection, nth, when)
    return repos


# A guild-wide reset of the seed, one write per item (BATCH = 1): invite_backups writes 1 in-flight
# note, 2 header, 3-9 the 7 copies (4 joins, 3 bonuses), 10 saving->saved, 11 saved->applied,
# 12 in-flight cleared; joins writes 1-4 the marks; invite_bonus writes 1-3 the takes.
RESET_CRASHES = {
    "before begin": ("invite_backups", 2, "before"),
    "after begin": ("invite_backups", 2, "after"),
    "midway through add_items": ("invite_backups", 5, "after"),
    "after add_items": ("invite_backups", 9, "after"),
    "after saving->saved": ("invite_backups", 10, "after"),
    "midway through mark_reset": ("joins", 2, "after"),
    "after mark_reset": ("joins", 4, "after"),
    "midway through the bonus loop": ("invite_bonus", 2, "after"),
    "after the bonus loop": ("invite_bonus", 3, "after"),
    "before the final move": ("invite_backups", 11, "before"),
    "after the final move": ("invite_backups", 11, "after"),
}
# Restoring an applied reset: invite_backups writes 1 in-flight note, 2 applied->restoring,
# 3 restoring->restored, 4 in-flight cleared; joins 1-4 the unmarks; invite_bonus 1-3 give-backs.
RESTORE_CRASHES = {
    "after applied->restoring": ("invite_backups", 2, "after"),
    "midway through unmark": ("joins", 2, "after"),
    "midway through the give-backs": ("invite_bonus", 2, "after"),
    "before restoring->restored": ("invite_backups", 3, "before"),
    "after restoring->restored": ("invite_backups", 3, "after"),
}


@pytest.fixture
def repos(db, policy) -> Repositories:
    return Repositories.create(db, policy)


@pytest.fixture(autouse=True)
def one_item_per_write(monkeypatch):
    """Joins are marked and copies written one per write, so a crash can fall between two."""
    monkeypatch.setattr(repositories.joins, "BATCH", 1)
    monkeypatch.setattr(repositories.invite_backups, "BATCH", 1)


def join(member: int, inviter: int | None, minutes: int) -> JoinRecord:
    attribution = Attribution("invite", code="abc", inviter_id=inviter) if inviter else Attribution("unknown")
    joined = T0 + timedelta(minutes=minutes)
    return JoinRecord(G, member, f"m{member}", joined, OLD, attribution, FIRST, "", T0)


async def seed(repos: Repositories) -> None:
    for minutes, (member, inviter) in enumerate(CREDITED.items()):
        await repos.joins.record(join(member, inviter, minutes))
    await repos.joins.record(join(205, None, 9))  # not credited: no reset touches it
    for member, amount in BONUS.items():
        await repos.invite_bonus.add(G, member, amount, f"cmd-{member}")


async def state(repos: Repositories) -> tuple[dict[int, str], dict[int, int]]:
    """Each join's reset mark, and each member's bonus."""
    marks = {d["member_id"]: d["reset_id"] async for d in repos.joins.collection.find({"guild_id": G})}
    return marks, {m: await repos.invite_bonus.get(G, m) for m in BONUS}


def untouched() -> tuple[dict[int, str], dict[int, int]]:
    return {m: "" for m in (*CREDITED, 205)}, dict(BONUS)


def all_reset(backup_id: str) -> tuple[dict[int, str], dict[int, int]]:
    return {**{m: backup_id for m in CREDITED}, 205: ""}, {m: 0 for m in BONUS}


async def crash_reset(db: Any, policy: Any, point: str) -> str:
    """A guild-wide reset that dies at `point`; returns the id of the backup it started."""
    with pytest.raises(Crashed):
        await reset_invites(crashing(db, policy, *RESET_CRASHES[point]), G, None, ADMIN, T0)
    (backup_id,) = await Repositories.create(db, policy).invite_backups.in_flight(G)
    return backup_id


async def status(repos: Repositories, backup_id: str) -> str | None:
    header = await repos.invite_backups.header(backup_id)
    return header.status if header else None


@pytest.mark.parametrize("point", list(RESET_CRASHES))
async def test_an_interrupted_reset_restores_to_exactly_what_was_there(repos, db, policy, point):
    await seed(repos)
    backup_id = await crash_reset(db, policy, point)
    after = Repositories.create(db, policy)  # the restarted process

    if point == "before begin":  # no header yet: nothing to restore, and nothing happened
        with pytest.raises(RestoreError, match="no backup"):
            await restore_invites(after, G, backup_id, T0)
        assert await state(after) == untouched()
        return
    await restore_invites(after, G, backup_id, T0)
    assert await state(after) == untouched()
    assert await status(after, backup_id) == "restored"
    with pytest.raises(RestoreError, match="already restored"):
        await restore_invites(after, G, backup_id, T0)
    assert await resume_interrupted(after, G, T0) == []
    assert await after.invite_backups.in_flight(G) == []
    assert await state(after) == untouched()


@pytest.mark.parametrize("point", list(RESET_CRASHES))
async def test_an_interrupted_reset_is_finished_under_its_own_backup_id(repos, db, policy, point):
    await seed(repos)
    backup_id = await crash_reset(db, policy, point)
    after = Repositories.create(db, policy)

    resumed = await resume_interrupted(after, G, T0)
    if point in ("before begin", "after the final move"):  # nothing begun / everything applied
        assert resumed == []
    else:
        assert [(r.action, r.result.backup_id, r.result.joins, r.result.bonus_members)
                for r in resumed] == [("reset", backup_id, 4, 3)]
    assert await after.invite_backups.in_flight(G) == []
    if point == "before begin":
        assert await state(after) == untouched()
        return
    assert await status(after, backup_id) == "applied"
    assert await state(after) == all_reset(backup_id)  # everything cleared once, by that backup
    assert await resume_interrupted(after, G, T0) == []  # a second pass changes nothing
    assert await state(after) == all_reset(backup_id)

    again = await reset_invites(after, G, None, ADMIN, T0)
    assert (again.joins, again.bonus_members) == (0, 0)  # nothing left to clear
    await restore_invites(after, G, backup_id, T0)
    assert await state(after) == untouched()  # every join unmarked, every bonus back once


@pytest.mark.parametrize("point", list(RESTORE_CRASHES))
async def test_an_interrupted_restore_is_finished_once(repos, db, policy, point):
    await seed(repos)
    done = await reset_invites(repos, G, None, ADMIN, T0)
    assert await state(repos) == all_reset(done.backup_id)
    with pytest.raises(Crashed):
        await restore_invites(crashing(db, policy, *RESTORE_CRASHES[point]), G, done.backup_id, T0)
    after = Repositories.create(db, policy)

    resumed = await resume_interrupted(after, G, T0)
    expected = [] if point == "after restoring->restored" else [("restore", done.backup_id)]
    assert [(r.action, r.result.backup_id) for r in resumed] == expected
    assert await state(after) == untouched()
    assert await status(after, done.backup_id) == "restored"
    assert await after.invite_backups.in_flight(G) == []
    with pytest.raises(RestoreError, match="already restored"):
        await restore_invites(after, G, done.backup_id, T0)
    assert await state(after) == untouched()


@pytest.mark.parametrize("point", list(RESTORE_CRASHES))
async def test_restore_again_finishes_an_interrupted_restore(repos, db, policy, point):
    await seed(repos)
    done = await reset_invites(repos, G, None, ADMIN, T0)
    with pytest.raises(Crashed):
        await restore_invites(crashing(db, policy, *RESTORE_CRASHES[point]), G, done.backup_id, T0)
    after = Repositories.create(db, policy)
    if point == "after restoring->restored":
        with pytest.raises(RestoreError, match="already restored"):
            await restore_invites(after, G, done.backup_id, T0)
    else:
        await restore_invites(after, G, done.backup_id, T0)
    assert await state(after) == untouched()


async def test_a_bonus_changed_between_the_crash_and_the_resume_is_not_taken_twice(repos, db, policy):
    """The take is guarded per backup, not by `last_op` (which another change overwrites)."""
    await seed(repos)
    backup_id = await crash_reset(db, policy, "midway through the bonus loop")  # 101 and 102 taken
    after = Repositories.create(db, policy)
    await after.invite_bonus.add(G, 101, 1, "cmd-later")  # an admin's /invites-admin bonus meanwhile
    await after.invite_bonus.add(G, 102, 3, "cmd-later2")

    await resume_interrupted(after, G, T0)
    assert (await state(after))[1] == {101: 1, 102: 3, 103: 0}
    await restore_invites(after, G, backup_id, T0)
    assert (await state(after))[1] == {101: 5, 102: 5, 103: 5}


async def test_a_join_recorded_after_a_crash_in_saving_is_copied_by_the_resume(repos, db, policy):
    """A reset that stopped before its copy was complete had cleared nothing: finishing it copies
    what the scope holds then (copies already made are kept as they were)."""
    await seed(repos)
    backup_id = await crash_reset(db, policy, "midway through add_items")
    after = Repositories.create(db, policy)
    await after.joins.record(join(206, 102, 20))

    await resume_interrupted(after, G, T0)
    assert await state(after) == ({**all_reset(backup_id)[0], 206: backup_id}, all_reset(backup_id)[1])
    header = await after.invite_backups.header(backup_id)
    assert (header.status, header.joins, header.bonus_members) == ("applied", 5, 3)
    await restore_invites(after, G, backup_id, T0)
    assert await state(after) == ({**untouched()[0], 206: ""}, dict(BONUS))


async def test_a_member_reset_interrupted_is_finished_for_that_member_only(repos, db, policy):
    await seed(repos)
    with pytest.raises(Crashed):
        await reset_invites(crashing(db, policy, "invite_backups", 2, "after"), G, 101, ADMIN, T0)
    after = Repositories.create(db, policy)
    (backup_id,) = await after.invite_backups.in_flight(G)
    await resume_interrupted(after, G, T0)
    marks, bonus = await state(after)
    assert marks == {201: backup_id, 202: backup_id, 203: backup_id, 204: "", 205: ""}
    assert bonus == {101: 0, 102: 2, 103: 5}


async def test_a_header_written_before_resets_could_be_finished_is_refused_when_incomplete(repos):
    """A backup begun by the earlier code (no `bonus_guard`) that stopped before "applied": which
    bonuses it took is not recorded, so it is refused as before; an applied one restores once."""
    saved = new_backup_id()
    await repos.invite_backups.collection.insert_one(
        {"_id": saved, "kind": "header", "backup_id": saved, "guild_id": G, "member_id": 0,
         "created_at": T0, "created_by": ADMIN, "status": "saved", "joins": 0, "bonus_members": 1})
    with pytest.raises(RestoreError, match="did not complete"):
        await restore_invites(repos, G, saved, T0)

    await repos.invite_bonus.add(G, 101, 4, "cmd")
    applied = new_backup_id()
    await repos.invite_backups.collection.insert_one(
        {"_id": applied, "kind": "header", "backup_id": applied, "guild_id": G, "member_id": 101,
         "created_at": T0, "created_by": ADMIN, "status": "applied", "joins": 0, "bonus_members": 1})
    await repos.invite_backups.add_items(applied, [], {101: 4})
    await repos.invite_bonus.add(G, 101, -4, f"reset:{applied}")  # how the earlier code took it
    await restore_invites(repos, G, applied, T0)
    assert await repos.invite_bonus.get(G, 101) == 4
    with pytest.raises(RestoreError, match="already restored"):
        await restore_invites(repos, G, applied, T0)
    assert await repos.invite_bonus.get(G, 101) == 4


async def test_restore_of_a_backup_that_only_began_restores_nothing_and_is_done(repos):
    backup_id = new_backup_id()
    await repos.invite_backups.start_flight(G, backup_id, T0)
    await repos.invite_backups.begin(BackupHeader(backup_id, G, 0, T0, 1, "saving", 0, 0))
    result = await restore_invites(repos, G, backup_id, T0)
    assert (result.joins, result.bonus_members, result.was) == (0, 0, "saving")
    assert await status(repos, backup_id) == "restored"
    assert await repos.invite_backups.in_flight(G) == []
