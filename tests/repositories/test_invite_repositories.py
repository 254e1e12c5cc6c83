"""Invite repositories against the real wire-protocol server: snapshot, joins and the counts
derived from them, bonus, staff codes, backups, and resets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pymongo
import pytest

from app.operations.invite_resets import RestoreError, reset_invites, restore_invites
from app.storage.database import make_client
from app.storage.retry import RetryPolicy
from app.wiring.container import Repositories
from repositories.invite_backups import new_backup_id, valid_backup_id
from repositories.invites import StoredInvite
from repositories.joins import FIRST, REJOIN, Attribution, JoinRecord
from scripts.faultproxy import FaultPlan

G = 1
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OLD = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def repos(db, policy) -> Repositories:
    return Repositories.create(db, policy)


def invite(code: str, uses: int, inviter: int = 101, max_uses: int = 0) -> StoredInvite:
    return StoredInvite(code, uses, max_uses, inviter, f"user{inviter}", 10, T0 - timedelta(days=1), None)


def join(
    member: int,
    inviter: int | None,
    minutes: int = 0,
    *,
    counted: str = FIRST,
    fake: str = "",
    source: str = "invite",
    code: str | None = "abc",
) -> JoinRecord:
    attribution = Attribution(source, code=code if inviter else None, inviter_id=inviter)
    return JoinRecord(
        G, member, f"m{member}", T0 + timedelta(minutes=minutes), OLD, attribution, counted, fake, T0
    )


# ---- snapshot ----------


async def test_snapshot_store_read_and_removed_marker(repos):
    await repos.invites.store(G, [invite("abc", 2), invite("bobs", 0, 102)], T0)
    live = await repos.invites.live(G)
    assert {c: (i.uses, i.inviter_id) for c, i in live.items()} == {"abc": (2, 101), "bobs": (0, 102)}
    assert live["abc"].created_at == T0 - timedelta(days=1)
    await repos.invites.store(G, [invite("abc", 3)], T0 + timedelta(minutes=1))
    assert set(await repos.invites.live(G)) == {"abc"}
    doc = await repos.invites.collection.find_one({"_id": f"{G}:bobs"})
    assert doc["status"] == "removed" and doc["inviter_id"] == 102
    assert (await repos.invites.live(G))["abc"].created_at == T0 - timedelta(days=1)


async def test_created_invite_never_lowers_uses_a_fetch_already_stored(repos):
    await repos.invites.set_uses(G, [invite("new", 2)], T0)
    await repos.invites.created(G, invite("new", 0), T0)
    assert (await repos.invites.live(G))["new"].uses == 2
    await repos.invites.created(G, invite("other", 0, max_uses=1), T0)
    assert (await repos.invites.live(G))["other"].max_uses == 1


async def test_removed_and_guild_state(repos):
    await repos.invites.store(G, [invite("abc", 1)], T0)
    await repos.invites.removed(G, "abc", T0)
    assert await repos.invites.live(G) == {}
    state = await repos.invite_guilds.get(G)
    assert (state.snapshot_at, state.permission, state.stale) == (None, "unknown", False)
    await repos.invite_guilds.snapshot_stored(G, T0, "study", 4)
    await repos.invite_guilds.snapshot_stored(G, T0 + timedelta(seconds=5), "study", 5)
    state = await repos.invite_guilds.get(G)
    assert (state.snapshot_at, state.vanity_uses, state.permission) == (T0 + timedelta(seconds=5), 5, "ok")
    await repos.invite_guilds.fetch_failed(G, T0, forbidden=True)
    state = await repos.invite_guilds.get(G)
    assert (state.permission, state.stale, state.failed_at) == ("missing", True, T0)


# ---- joins and counts ----------


async def test_recording_a_join_twice_keeps_the_first(repos):
    await repos.joins.record(join(201, 101))
    await repos.joins.record(join(201, 102))
    doc = await repos.joins.collection.find_one({})
    assert (doc["inviter_id"], doc["credit_to"]) == (101, 101)
    assert await repos.joins.collection.count_documents({}) == 1


async def test_counts_regular_left_fake_per_inviter(repos):
    await repos.joins.record(join(201, 101, 1))
    await repos.joins.record(join(202, 101, 2, fake="young_account"))
    await repos.joins.record(join(203, 101, 3))
    await repos.joins.record(join(204, 102, 4))
    await repos.joins.record(join(205, None, 5, source="unknown"))
    await repos.joins.left(G, 203, T0 + timedelta(hours=1))
    await repos.joins.left(G, 202, T0 + timedelta(hours=1))  # a fake who left: fake, not left
    counts = await repos.joins.counts(G)
    assert {k: (v.regular, v.left, v.fake) for k, v in counts.items()} == {101: (3, 1, 1), 102: (1, 0, 0)}
    later = await repos.joins.counts(G, since=T0 + timedelta(minutes=3))
    assert {k: (v.regular, v.left, v.fake) for k, v in later.items()} == {101: (1, 1, 0), 102: (1, 0, 0)}
    summary = await repos.invite_stats.member_summary(G, 101)
    assert (summary.regular, summary.left, summary.fake, summary.bonus, summary.total) == (3, 1, 1, 0, 1)


async def test_a_rejoin_puts_the_member_back_for_the_original_inviter_only(repos):
    await repos.joins.record(join(201, 101, 1))
    await repos.joins.left(G, 201, T0 + timedelta(minutes=2))
    assert (await repos.invite_stats.member_summary(G, 101)).total == 0
    await repos.joins.record(join(201, 102, 3, counted=REJOIN, code="bobs"))
    assert (await repos.invite_stats.member_summary(G, 101)).total == 1
    assert (await repos.invite_stats.member_summary(G, 102)).regular == 0
    assert await repos.joins.open_member_ids(G) == {201}
    first = await repos.joins.first_for_member(G, 201)
    latest = await repos.joins.latest_for_member(G, 201)
    assert (first.code, latest.code, first.left_at) == ("abc", "bobs", T0 + timedelta(minutes=2))


async def test_a_join_record_replayed_after_the_leave_keeps_the_member_left(repos):
    """Issue 14, failure 7: a join write that lands again (a re-run job, a replayed request)
    after the member's leave was recorded neither reopens the stay nor marks the member present
    (the inviter's "left" stays); a rejoin does mark them present, and a replay of the first join
    after the rejoin changes nothing."""
    # Discord's join times have microseconds; BSON keeps milliseconds (this one rounds up).
    first = replace(join(201, 101, 1), joined_at=T0 + timedelta(minutes=1, microseconds=999_600))
    await repos.joins.record(first)
    await repos.joins.left(G, 201, T0 + timedelta(minutes=2))
    assert (await repos.joins.get(first.key)).member_status == "left"
    await repos.joins.record(first)  # replayed after the leave
    await repos.joins.mark_present(G, 201, first.joined_at)  # its status update, landing late
    doc = await repos.joins.get(first.key)
    assert (doc.raw["stay"], doc.member_status) == ("closed", "left")
    assert (await repos.invite_stats.member_summary(G, 101)).left == 1

    rejoin = join(201, 102, 3, counted=REJOIN, code="bobs")
    await repos.joins.record(rejoin)
    await repos.joins.record(first)
    docs = [await repos.joins.get(first.key), await repos.joins.get(rejoin.key)]
    assert [(d.raw["stay"], d.member_status) for d in docs] == [("closed", "present"), ("open", "present")]
    assert (await repos.invite_stats.member_summary(G, 101)).left == 0
    await repos.joins.left(G, 201, T0 + timedelta(minutes=4))
    await repos.joins.record(rejoin)
    assert (await repos.invite_stats.member_summary(G, 101)).left == 1


async def test_awaiting_join_is_settled_once(repos):
    waiting = JoinRecord(
        G,
        201,
        "m201",
        T0,
        OLD,
        Attribution("unknown", reason="missing_permissions", awaiting="snapshot"),
        FIRST,
        "",
        T0,
    )
    await repos.joins.record(waiting)
    assert [j.member_id for j in await repos.joins.awaiting(G)] == [201]
    settled = Attribution("invite", code="abc", inviter_id=101)
    await repos.joins.settle_awaiting(waiting.key, settled, 101, "")
    await repos.joins.settle_awaiting(waiting.key, Attribution("invite", code="x", inviter_id=999), 999, "")
    doc = await repos.joins.collection.find_one({})
    assert (doc["source"], doc["code"], doc["credit_to"], doc["awaiting"]) == ("invite", "abc", 101, "")
    assert await repos.joins.awaiting(G) == []


async def test_conversion_is_recorded_once_and_counted_per_staff(repos):
    record = join(201, 102, code="bobs")
    await repos.joins.record(record)
    assert await repos.joins.mark_converted(record.key, 102, T0) is True
    assert await repos.joins.mark_converted(record.key, 103, T0) is False
    assert await repos.joins.conversion_counts(G) == {102: 1}
    assert await repos.joins.code_counts(G, ["bobs", "abc"]) == {"bobs": 1}


async def test_unconverted_lists_first_attributed_joins_through_the_codes_not_converted(repos):
    converted, waiting = join(201, 102, 1, code="bobs"), join(202, 102, 2, code="bobs")
    others = [join(203, 101, 3, code="abc"), join(204, 102, 4, code="bobs", counted=REJOIN),
              join(205, None, 5, source="unknown")]
    for record in (converted, waiting, *others):
        await repos.joins.record(record)
    await repos.joins.mark_converted(converted.key, 102, T0)
    assert [j.member_id for j in await repos.joins.unconverted(G, ["bobs"])] == [202]
    assert await repos.joins.unconverted(G, []) == []


async def test_join_writes_through_cut_connections_never_double_a_count(db, fault_proxy, monkeypatch):
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.02)
    fault_proxy.plan = FaultPlan(cut_probability=0.05, cut_after_forward_probability=0.3, seed=3)
    client = make_client(fault_proxy.uri)
    try:
        repos = Repositories.create(
            client[db.name], RetryPolicy(attempts=30, max_seconds=60, initial_wait=0.001, max_wait=0.02)
        )
        for n in range(40):
            await repos.joins.record(join(300 + n, 101 + n % 2, n))
            if n % 4 == 0:
                await repos.joins.left(G, 300 + n, T0 + timedelta(hours=1))
            await repos.invite_bonus.add(G, 101, 1, f"op-{n}")
    finally:
        await client.close()
    assert fault_proxy.cuts_after_forward > 0
    stats = Repositories.create(db, RetryPolicy()).invite_stats
    first, second = await stats.member_summary(G, 101), await stats.member_summary(G, 102)
    assert (first.regular, first.left, first.bonus) == (20, 10, 40)
    assert (second.regular, second.left, second.bonus) == (20, 0, 0)


# ---- bonus, staff codes ----------


async def test_bonus_is_applied_once_per_operation(repos):
    await repos.invite_bonus.add(G, 101, 5, "bonus:1")
    await repos.invite_bonus.add(G, 101, 5, "bonus:1")
    await repos.invite_bonus.add(G, 101, -2, "bonus:2")
    await repos.invite_bonus.add(G, 102, 0, "bonus:3")
    assert await repos.invite_bonus.get(G, 101) == 3
    assert await repos.invite_bonus.all(G) == {101: 3}


async def test_staff_codes_assign_reassign_remove(repos):
    await repos.staff_codes.assign(G, 102, "bob", "bobs", 101, T0)
    await repos.staff_codes.assign(G, 103, "cy", "cys", 101, T0 + timedelta(seconds=1))
    await repos.staff_codes.assign(G, 102, "bob", "bobs2", 101, T0 + timedelta(seconds=2))
    assert [(s.member_id, s.code) for s in await repos.staff_codes.active(G)] == [
        (103, "cys"),
        (102, "bobs2"),
    ]
    assert (await repos.staff_codes.by_code(G, "bobs2")).member_id == 102
    assert await repos.staff_codes.by_code(G, "bobs") is None
    assert await repos.staff_codes.remove(G, 103, T0) is True
    assert await repos.staff_codes.remove(G, 103, T0) is False
    assert [s.member_id for s in await repos.staff_codes.active(G)] == [102]


# ---- reset, backup, restore ----------


def test_backup_ids_are_strict():
    assert valid_backup_id(new_backup_id())
    for bad in (
        "",
        "ib-",
        "ib-0123456789a",
        "ib-0123456789abc",
        "ib-0123456789aG",
        "x-0123456789ab",
        "ib-$ne",
    ):
        assert not valid_backup_id(bad)


async def test_reset_copies_first_then_clears_and_restore_undoes_exactly_that(repos):
    await repos.joins.record(join(201, 101, 1))
    await repos.joins.record(join(202, 102, 2))
    await repos.invite_bonus.add(G, 101, 4, "b1")
    result = await reset_invites(repos, G, 101, 1, T0)
    assert (result.joins, result.bonus_members) == (1, 1)
    copies = [
        d async for d in repos.invite_backups.collection.find({"backup_id": result.backup_id, "kind": "join"})
    ]
    assert [c["doc"]["member_id"] for c in copies] == [201]
    assert (await repos.invite_stats.member_summary(G, 101)).total == 0
    assert (await repos.invite_stats.member_summary(G, 102)).total == 1
    await repos.joins.record(join(203, 101, 3))  # after the reset
    await repos.invite_bonus.add(G, 101, 1, "b2")
    await restore_invites(repos, G, result.backup_id, T0)
    s = await repos.invite_stats.member_summary(G, 101)
    assert (s.regular, s.bonus, s.total) == (2, 5, 7)
    with pytest.raises(RestoreError, match="already restored"):
        await restore_invites(repos, G, result.backup_id, T0)
    with pytest.raises(RestoreError, match="no backup"):
        await restore_invites(repos, 2, result.backup_id, T0)
    with pytest.raises(RestoreError, match="not a backup id"):
        await restore_invites(repos, G, "../etc", T0)


async def test_leaderboard_orders_by_total(repos):
    await repos.joins.record(join(201, 101, 1))
    await repos.invite_bonus.add(G, 102, 3, "b")
    await repos.invite_bonus.add(G, 103, 1, "c")
    rows = await repos.invite_stats.leaderboard(G)
    assert [(r.member_id, r.total) for r in rows] == [(102, 3), (101, 1), (103, 1)]
    rows = await repos.invite_stats.leaderboard(G, since=T0)
    assert [(r.member_id, r.total) for r in rows] == [(101, 1)]
