"""ActivityRepository on the real test server: totals and day buckets together, reads per period."""

from __future__ import annotations

from repositories.activity import ActivityRepository, Counters, Credit, day_key, total_key


def v(seconds: int, on: int = 0) -> dict[str, int]:
    return {"voice_s": seconds, "cam_on_s": on, "cam_off_s": seconds - on, "stream_s": 0}


async def test_credits_of_one_member_and_day_merge_and_replays_do_not_double(db, policy) -> None:
    repo = ActivityRepository(db, policy)
    credits = [Credit(1, 5, "2026-03-10", v(60)), Credit(1, 5, "2026-03-10", v(30, on=30)),
               Credit(1, 5, "2026-03-11", v(10))]
    await repo.add_voice(credits, "op-1")
    await repo.add_voice(credits, "op-1")  # a retry of an applied write
    assert Counters.from_document(await db.activity.find_one({"_id": total_key(1, 5)})) == Counters(
        voice_s=100, cam_on_s=30, cam_off_s=70)
    day = await db.activity.find_one({"_id": day_key(1, 5, "2026-03-10")})
    assert (day["kind"], day["day"], day["guild_id"], day["member_id"]) == ("day", "2026-03-10", 1, 5)
    assert Counters.from_document(day) == Counters(voice_s=90, cam_on_s=30, cam_off_s=60)


async def test_message_and_voice_writers_have_separate_guards(db, policy) -> None:
    repo = ActivityRepository(db, policy)
    await repo.add_messages([Credit(1, 5, "2026-03-10", {"messages": 2})], "same-id")
    await repo.add_voice([Credit(1, 5, "2026-03-10", v(5))], "same-id")
    await repo.add_messages([Credit(1, 5, "2026-03-10", {"messages": 2})], "same-id")  # replay
    doc = await db.activity.find_one({"_id": total_key(1, 5)})
    assert (doc["messages"], doc["voice_s"], doc["msg_op"], doc["voice_op"]) == (2, 5, "same-id", "same-id")
    await repo.add_voice([], "nothing")  # nothing to write: no document touched
    assert await db.activity.count_documents({}) == 2


async def test_reads_per_period_ranks_and_leaderboard_order(db, policy) -> None:
    repo = ActivityRepository(db, policy)
    await repo.add_messages([
        Credit(1, 5, "2026-03-01", {"messages": 10}), Credit(1, 6, "2026-03-10", {"messages": 4}),
        Credit(1, 7, "2026-03-09", {"messages": 4}), Credit(1, 8, "2026-03-10", {"messages": 1}),
        Credit(2, 5, "2026-03-10", {"messages": 99}),
    ], "m1")
    assert await repo.member_counters(1, 5, None) == Counters(messages=10)
    assert await repo.member_counters(1, 5, "2026-03-04") == Counters()
    assert await repo.member_counters(1, 99, None) == Counters()
    assert await repo.leaderboard(1, "messages", None, 0, 10) == [(5, 10), (6, 4), (7, 4), (8, 1)]
    assert await repo.leaderboard(1, "messages", "2026-03-04", 1, 2) == [(7, 4), (8, 1)]
    assert await repo.ranked_count(1, "messages", "2026-03-10") == 2
    assert await repo.rank(1, 7, "messages", None) == 2  # tied with 6: both second
    assert await repo.rank(1, 5, "messages", "2026-03-04") is None
    assert await repo.rank(1, 8, "messages", "2026-03-10") == 2
    assert await repo.leaderboard(1, "voice", None, 0, 10) == []
    days = await repo.daily(1, 6, "2026-03-01")
    assert days == {"2026-03-10": Counters(messages=4)}


async def test_an_erase_leaves_tombstones_that_refuse_a_late_write_of_before(db, policy) -> None:
    """Seed 163 of the campaign: a message write the network held landed after `/data erase`, its
    retry long acknowledged. With the documents deleted, their guards went too and it counted
    again; the tombstones keep the guards, so it is refused, and a write after the erase counts."""
    repo = ActivityRepository(db, policy)
    held = [Credit(1, 5, "2026-03-10", {"messages": 2}), Credit(1, 6, "2026-03-10", {"messages": 1})]
    await repo.add_messages(held, 7)
    await repo.add_voice([Credit(1, 5, "2026-03-09", v(60))], 3)
    await repo.erase_member(1, 5)
    assert await db.activity.count_documents(repo.member_filter(1, 5)) == 0  # nothing left to erase
    stones = [d async for d in db.activity.find({"member_id": 5})]
    assert len(stones) == 3 and all(Counters.from_document(d) == Counters() and d["erased"] for d in stones)

    await repo.add_messages(held, 7)  # the held original lands
    await repo.add_voice([Credit(1, 5, "2026-03-09", v(60))], 3)
    assert await repo.member_counters(1, 5, None) == Counters()
    assert await repo.member_counters(1, 5, "2026-03-01") == Counters()
    assert await repo.member_counters(1, 6, None) == Counters(messages=1)  # another member's stays

    await repo.add_messages([Credit(1, 5, "2026-03-11", {"messages": 1})], 8)  # after the erase
    assert await repo.member_counters(1, 5, None) == Counters(messages=1)
    assert await repo.leaderboard(1, "messages", None, 0, 10) == [(5, 1), (6, 1)]
    assert await repo.leaderboard(1, "voice", "2026-03-01", 0, 10) == []
    assert sorted([d["_id"] async for d in db.activity.find(repo.member_filter(1, 5))]) == [
        day_key(1, 5, "2026-03-11"), total_key(1, 5)]


async def test_a_members_days_between_two_dates_are_read_by_id(db, policy) -> None:
    """`/ud`'s read for streaks: the day documents of one member from a first to a last day, by
    `_id` (the keys are known), across more than one batch; other members' and days outside left out."""
    from datetime import date

    repo = ActivityRepository(db, policy)
    await repo.add_messages([
        Credit(1, 5, "2025-01-01", {"messages": 1}), Credit(1, 5, "2026-03-10", {"messages": 2}),
        Credit(1, 6, "2026-03-10", {"messages": 9}), Credit(1, 5, "2026-03-12", {"messages": 3}),
    ], 1)
    found = await repo.days_between(1, 5, date(2025, 1, 1), date(2026, 3, 11))  # 435 days: two batches
    assert found == {"2025-01-01": Counters(messages=1), "2026-03-10": Counters(messages=2)}
