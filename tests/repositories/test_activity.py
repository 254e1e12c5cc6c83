"""ActivityRepository on the real test server: totals and day buckets together, reads per period."""

from __future__ import annotations

from repositories.activity import (
    CHANNEL_DAY,
    ActivityRepository,
    ChannelCount,
    ChannelMark,
    Counters,
    Credit,
    FillRange,
    channel_day_key,
    day_key,
    total_key,
)


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


async def test_channel_day_counts_are_written_exactly_once_live_and_from_history(db, policy) -> None:
    """Channel-day documents ride in the members' guarded bulk write: the same operation twice counts
    once and an older one is refused (live: `msg_seq`, backfill: `fill_seq`, independent of each other)."""
    repo = ActivityRepository(db, policy)
    big = 2**62 + 3  # 64-bit channel ids
    live = [Credit(1, 5, "2026-03-10", {"messages": 3})]
    channels = [ChannelCount(1, big, "2026-03-10", 2), ChannelCount(1, big, "2026-03-10", 1)]
    await repo.add_messages_marked(live, 20, [ChannelMark(1, big, 900)], [], channels)
    await repo.add_messages_marked(live, 20, [ChannelMark(1, big, 900)], [], channels)  # a retry
    await repo.add_messages_marked(live, 19, [], [], channels)  # older than what the document holds
    doc = await db.activity.find_one({"_id": channel_day_key(1, big, "2026-03-10")})
    assert (doc["kind"], doc["guild_id"], doc["channel_id"], doc["day"], doc["messages"], doc["msg_seq"]) == (
        CHANNEL_DAY, 1, big, "2026-03-10", 3, 20)
    assert "member_id" not in doc  # not a member's data

    fill = FillRange(f"f:1:{big}:0:1", 1, big, 0, 500, 400)
    page = [ChannelCount(1, big, "2026-03-10", 4), ChannelCount(1, big, "2026-03-09", 6)]
    history = [Credit(1, 6, "2026-03-10", {"messages": 4}), Credit(1, 6, "2026-03-09", {"messages": 6})]
    await repo.add_backfill(history, 7, fill, None, page)  # a lower sequence than live's: another guard
    await repo.add_backfill(history, 7, fill, None, page)  # a replay
    await repo.add_backfill(history, 6, fill, None, page)  # an older page
    await repo.add_messages([Credit(1, 5, "2026-03-10", {"messages": 1})], 21,
                            [ChannelCount(1, 30, "2026-03-10", 1)])  # the group commit without a ledger
    assert await repo.channel_totals(1, "2026-03-10", "2026-03-10") == {big: 7, 30: 1}
    assert await repo.channel_totals(1, "2026-03-01", "2026-03-31") == {big: 13, 30: 1}
    assert await repo.channel_totals(2, "2026-03-01", "2026-03-31") == {}
    scanned = [row for rows in [r async for r in repo.channel_scan(1, "2026-03-10")] for row in rows]
    assert sorted((r["channel_id"], r["messages"], r.get("msg_seq"), r.get("fill_seq")) for r in scanned) == [
        (30, 1, 21, None), (big, 7, 20, 7)]
    # The members' own counts and queries are unchanged by the channel documents beside them.
    assert (await repo.member_counters(1, 5, None)).messages == 4
    assert sorted(await repo.member_totals(1, "2026-03-01")) == [(5, Counters(messages=4)),
                                                                 (6, Counters(messages=10))]
    assert (await repo.guild_days(1, "2026-03-09", "2026-03-10"))["2026-03-10"].messages == 8

    await repo.erase_member(1, 5)  # an erase leaves the channels' counts: no member in them
    assert await repo.channel_totals(1, "2026-03-01", "2026-03-31") == {big: 13, 30: 1}
