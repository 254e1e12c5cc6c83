"""Issue 20 (3): streaks of active days and weekly goals on `/ud`, `/goal set|clear`, through the real
bot and the emulator. The clock starts on Tuesday 2026-03-10, 12:00 UTC; the week began on Monday 9."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.tracking.card import MemberCard, render_member_card
from app.tracking.streaks import STREAK_DAYS
from cogs import stats
from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103
GENERAL, FOCUS = 10, 20
DAY = 86400


def field(rec: Any, name: str) -> str | None:
    """The value of the /ud field whose name starts with `name` (None: not there)."""
    assert rec.embed is not None, rec
    return next((f["value"] for f in rec.embed["fields"] if f["name"].startswith(name)), None)


def names(rec: Any) -> list[str]:
    return [f["name"] for f in rec.embed["fields"]]


async def talk(h: Harness, member: int, n: int = 1) -> None:
    for _ in range(n):
        h.emu.message(member, GENERAL)
    await h.settle()


async def voice(h: Harness, member: int, seconds: int) -> None:
    h.emu.voice(member, FOCUS)
    await h.settle()
    h.clock.advance(seconds)
    h.emu.voice(member, None)
    await h.settle()


async def test_a_streak_grows_day_by_day_waits_for_today_and_breaks_after_a_missed_day(
    tracker: Harness,
) -> None:
    h, emu = tracker, tracker.emu
    rec = await emu.command(BOB, "ud")
    assert field(rec, "Streak") == "No active day yet (a day counts with 1 message)"
    for day in range(3):  # Tuesday, Wednesday, Thursday
        await talk(h, BOB)
        if day < 2:
            h.clock.advance(DAY)
    rec = await emu.command(BOB, "ud")
    assert names(rec)[7:9] == ["Streak", "Invites"]  # after the activity fields; no goal, no goal field
    assert field(rec, "Streak") == "**3 days** (best 3 days)"
    h.clock.advance(DAY)  # Friday, nothing yet: the streak holds until the day is over
    assert field(await emu.command(BOB, "ud"), "Streak") == (
        "**3 days** (best 3 days)\nNot active yet today: 1 message keeps it going")
    h.clock.advance(DAY)  # Saturday: Friday went by without a message
    assert field(await emu.command(BOB, "ud"), "Streak") == "No current streak (best 3 days)"
    await talk(h, BOB)
    assert field(await emu.command(BOB, "ud"), "Streak") == "**1 day** (best 3 days)"


async def test_the_streak_follows_the_guilds_time_zone(tracker: Harness) -> None:
    """Messages at 23:30 UTC on two evenings: in Tokyo (UTC+9) those are the mornings of the 11th and
    12th. At 16:00 UTC on the 12th it is already the 13th in Tokyo: not active yet, the streak of 2
    holds; a day later the 13th went by without a message there."""
    h, emu = tracker, tracker.emu
    await emu.command(ADA, "settings set", {"time_zone": "Asia/Tokyo"})
    h.clock.set(datetime(2026, 3, 10, 23, 30, tzinfo=UTC))
    await talk(h, BOB)
    h.clock.set(datetime(2026, 3, 11, 23, 30, tzinfo=UTC))
    await talk(h, BOB)
    h.clock.set(datetime(2026, 3, 12, 16, 0, tzinfo=UTC))
    tokyo = field(await emu.command(BOB, "ud"), "Streak")
    assert tokyo is not None and tokyo.startswith("**2 days** (best 2 days)\nNot active yet today")
    h.clock.set(datetime(2026, 3, 13, 16, 0, tzinfo=UTC))  # the 14th in Tokyo: the 13th was missed
    assert field(await emu.command(BOB, "ud"), "Streak") == "No current streak (best 2 days)"


async def test_the_guilds_minimums_decide_which_days_count(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await voice(h, BOB, 45 * 60)  # Tuesday: 45 minutes of voice, no message
    h.clock.advance(DAY)
    await talk(h, BOB, 2)  # Wednesday: 2 messages
    assert field(await emu.command(BOB, "ud"), "Streak") == "**1 day** (best 1 day)"  # voice does not count

    changed = await emu.command(ADA, "settings set", {"streak_min_voice_minutes": 30})
    assert changed.content == "Changed:\nStreak day needs voice: not used -> at least 30m"
    assert field(await emu.command(BOB, "ud"), "Streak") == "**2 days** (best 2 days)"

    await emu.command(ADA, "settings set", {"streak_min_messages": 3, "streak_min_voice_minutes": 60})
    shown = field(await emu.command(BOB, "ud"), "Streak")
    assert shown == "No active day yet (a day counts with 3 messages or 1h 00m of voice)"

    await emu.command(ADA, "settings set", {"streak_min_messages": 0, "streak_min_voice_minutes": 0})
    assert field(await emu.command(BOB, "ud"), "Streak") == "**2 days** (best 2 days)"  # any activity
    show = (await emu.command(ADA, "settings show")).embed["fields"][0]["value"]
    assert "Streak day needs messages: not used (any message or voice time counts)" in show.splitlines()

    refused = await emu.command(ADA, "settings set", {"streak_min_voice_minutes": 1441})
    assert refused.content == "The value of `streak_min_voice_minutes` is not valid for this command."
    await emu.command(ADA, "settings set", {"clear": "streak_min_messages"})
    assert (await h.bot.repos.guild_settings.get(G)).streak_min_messages == 1  # type: ignore[union-attr]


async def test_a_member_sets_changes_and_clears_their_weekly_goal(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    await talk(h, BOB, 12)  # Tuesday
    await voice(h, BOB, 3 * 3600 + 5 * 60)
    rec = await emu.command(BOB, "goal set", {"messages": 20})  # a member: no Manage Server needed
    assert rec.ephemeral
    assert rec.content == ("Your weekly goal: **20 messages** a week. Weeks start on Monday (UTC); "
                           "`/ud` shows your progress. `/goal clear` removes it.")
    ud = await emu.command(BOB, "ud")
    assert names(ud)[7:10] == ["Streak", "Weekly goal (since Mon Mar 9)", "Invites"]
    assert field(ud, "Weekly goal") == "12 / 20 messages (60%)"

    both = await emu.command(BOB, "goal set", {"voice_hours": 5})  # the messages target stays
    assert "**20 messages** and **5h of voice** a week" in both.content
    assert field(await emu.command(BOB, "ud"), "Weekly goal") == ("12 / 20 messages (60%)\n"
                                                                   "3h 05m / 5h voice (61%)")
    doc = await h.db.weekly_goals.find_one({"_id": f"{G}:{emu.user_id(BOB)}"})
    assert doc is not None and (doc["guild_id"], doc["member_id"]) == (G, emu.user_id(BOB))
    assert (doc["messages"], doc["voice_s"]) == (20, 5 * 3600) and doc["goal_seq"] == both.id

    await talk(h, BOB, 10)
    h.clock.set(datetime(2026, 3, 15, 20, 0, tzinfo=UTC))  # Sunday: still the same week
    assert field(await emu.command(BOB, "ud"), "Weekly goal") == ("22 / 20 messages (110%, reached)\n"
                                                                   "3h 05m / 5h voice (61%)")
    h.clock.set(datetime(2026, 3, 16, 0, 5, tzinfo=UTC))  # Monday: a new week
    ud = await emu.command(BOB, "ud")
    assert field(ud, "Weekly goal (since Mon Mar 16)") == "0 / 20 messages (0%)\n0m / 5h voice (0%)"

    cleared = await emu.command(BOB, "goal clear")
    assert cleared.ephemeral and cleared.content == "Your weekly goal is removed."
    ud = await emu.command(BOB, "ud")
    assert field(ud, "Weekly goal") is None and names(ud)[7:9] == ["Streak", "Invites"]
    again = await emu.command(BOB, "goal clear")
    assert again.content == "You have no weekly goal; `/goal set` sets one."
    assert await h.bot.repos.goals.get(G, emu.user_id(BOB)) == await h.bot.repos.goals.get(G, 999)


@pytest.mark.parametrize(("options", "reply"), [
    ({}, "Nothing to set: give `/goal set` `messages`, `voice_hours` or both."),
    ({"messages": 0}, "The value of `messages` is not valid for this command."),
    ({"messages": 100_001}, "The value of `messages` is not valid for this command."),
    ({"voice_hours": 0}, "The value of `voice_hours` is not valid for this command."),
    ({"voice_hours": 169}, "The value of `voice_hours` is not valid for this command."),
])
async def test_goal_values_outside_their_bounds_change_nothing(tracker: Harness, options: dict[str, int],
                                                              reply: str) -> None:
    rec = await tracker.emu.command(BOB, "goal set", options)
    assert rec.ephemeral and rec.content == reply
    assert await tracker.db.weekly_goals.count_documents({}) == 0


async def test_the_bounds_themselves_are_accepted(tracker: Harness) -> None:
    rec = await tracker.emu.command(BOB, "goal set", {"messages": 100_000, "voice_hours": 168})
    assert "**100,000 messages** and **168h of voice** a week" in rec.content


async def test_another_members_goal_shows_only_where_their_numbers_may_be_seen(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    await talk(h, CY, 4)
    await emu.command(CY, "goal set", {"messages": 10})
    seen = await emu.command(BOB, "ud", {"member": CY})  # members may look (the default)
    assert not seen.ephemeral and field(seen, "Weekly goal") == "4 / 10 messages (40%)"
    assert field(seen, "Streak") == "**1 day** (best 1 day)"

    await h.bot.repos.guild_settings.set_fields(G, members_view_others=False)
    refused = await emu.command(BOB, "ud", {"member": CY})
    assert refused.ephemeral and refused.embed is None and "only their own" in refused.content
    assert "10 messages" not in refused.text()
    admin = await emu.command(ADA, "ud", {"member": CY})  # Manage Server: privately
    assert admin.ephemeral and field(admin, "Weekly goal") == "4 / 10 messages (40%)"
    own = await emu.command(CY, "ud")
    assert not own.ephemeral and field(own, "Weekly goal") == "4 / 10 messages (40%)"


async def test_the_card_shows_the_streak_and_goal_from_memory_or_else_from_one_read_of_the_members_days(
    tracker: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    await talk(h, BOB, 3)
    h.clock.advance(DAY)
    await talk(h, BOB, 2)
    await emu.command(BOB, "goal set", {"messages": 10})
    cards: list[MemberCard] = []
    reads: list[tuple[Any, ...]] = []
    days_between = h.bot.repos.activity.days_between

    def recording_render(card: MemberCard) -> bytes:
        cards.append(card)
        return render_member_card(card)

    async def counting_reads(*args: Any) -> Any:
        reads.append(args)
        return await days_between(*args)

    monkeypatch.setattr(stats, "render_member_card", recording_render)
    monkeypatch.setattr(h.bot.repos.activity, "days_between", counting_reads)
    await h.bot.ranks.wait_ready(G)
    for built in (True, False):
        if not built:  # a standby, or right after a start: the ranks in memory are not there
            h.bot.ranks.forget()
        cards.clear()
        rec = await emu.command(BOB, "ud", {"period": "7d", "chart": True})
        if built:  # the ranks in memory know the member's days: no read of MongoDB
            assert reads == []
        else:  # one read of the member's days, by `_id`, for the last STREAK_DAYS days
            ((guild, member, first, last),) = reads
            assert (guild, member, (last - first).days + 1) == (G, emu.user_id(BOB), STREAK_DAYS)
        (card,) = cards
        assert card.habits is not None and (card.habits.streak.current, card.habits.streak.best) == (2, 2)
        assert card.habits.week is not None and card.habits.week.percent == 50
        assert [b.counters.messages for b in card.bars][-2:] == [3, 2]  # the bars came from the same days
        (attachment,) = rec.attachments
        assert emu.attachment_bytes(attachment).startswith(b"\x89PNG\r\n\x1a\n")
        assert field(rec, "Weekly goal") == "5 / 10 messages (50%)"


async def test_a_late_older_goal_write_never_overwrites_a_newer_one(tracker: Harness) -> None:
    """The guard: a request that reaches MongoDB after a newer one (a retry the network held) is
    refused, whether it sets or clears; replaying the newest changes nothing."""
    h = tracker
    assert h.bot is not None
    goals, now = h.bot.repos.goals, h.clock.now()
    await goals.set(G, 5, seq=200, now=now, messages=30)
    await goals.set(G, 5, seq=100, now=now, messages=7, voice_s=3600)  # older: refused
    await goals.clear(G, 5, seq=150, now=now)  # older: refused
    await goals.set(G, 5, seq=200, now=now, messages=30)  # a replay
    goal = await goals.get(G, 5)
    assert (goal.messages, goal.voice_s) == (30, None)
    await goals.clear(G, 5, seq=300, now=now)
    await goals.set(G, 5, seq=250, now=now, messages=9)  # older than the clear: refused
    assert (await goals.get(G, 5)).empty
    assert await h.db.weekly_goals.count_documents({}) == 1
