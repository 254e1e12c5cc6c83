"""`/invites retention` and `/invites leaderboard sort:retained_30d` through real slash commands:
members join through codes, talk and sit in voice, leave, and the bot's clock passes the days.

The emulator stamps a join with the real time, so the bot's clock starts at the real time here
(`clock` below) and every check leaves an hour of margin around a horizon.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.wiring.clock import ManualClock
from repositories.joins import FIRST, Attribution, JoinRecord
from tests.botharness import Harness
from tests.cogs.test_invites import guild_spec, user

__all__ = ["guild_spec"]  # the fixture: members joined long before any snapshot

G = 1
ADA, BOB, CY = 101, 102, 103  # ADA manages the server; `abc` is ADA's code, `bobs` BOB's
DAN, EVE, FAY, GUS, HAL = 201, 202, 203, 204, 205
GENERAL, FOCUS = 10, 20
HOUR, DAY = 3600, 86400


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


async def run(h: Harness, member: int, name: str, options: dict[str, Any] | None = None) -> Any:
    h.clock.advance(11)  # at most 3 runs in 30 s per member (the leaderboard's cooldown)
    return await h.emu.command(member, name, options or {})


def fields(rec: Any) -> dict[str, str]:
    assert rec.embed is not None, rec
    return {f["name"]: f["value"] for f in rec.embed.get("fields", [])}


def mention(h: Harness, member: int) -> str:
    return f"<@{h.emu.user_id(member)}>"


async def brought_in(h: Harness) -> None:
    """ADA's code brought in DAN, EVE and GUS, BOB's FAY; HAL came through the vanity URL (credits
    nobody). DAN: 3 messages and 10 minutes of voice, GUS: 1 message and 20 minutes, EVE nothing.
    EVE leaves 2 hours after joining."""
    for member, code in ((DAN, "abc"), (EVE, "abc"), (FAY, "bobs"), (GUS, "abc"), (HAL, "vanity")):
        h.emu.join(user(member, f"m{member}"), via=code)
        await h.settle()  # one at a time: joins at once are ambiguous
    for _ in range(3):
        h.emu.message(DAN, GENERAL)
    h.emu.message(GUS, GENERAL)
    h.emu.voice(DAN, FOCUS)
    h.emu.voice(GUS, FOCUS)
    await h.settle()
    h.clock.advance(600)
    h.emu.voice(DAN, None)
    await h.settle()
    h.clock.advance(600)
    h.emu.voice(GUS, None)
    await h.settle()
    h.clock.advance(2 * HOUR)
    h.emu.leave(EVE)
    await h.settle()


async def test_an_inviters_retention_over_the_days_with_medians_and_codes(tracker: Harness) -> None:
    h = tracker
    await brought_in(h)
    h.clock.advance(DAY + HOUR)  # 1 day 3 hours after the joins
    rec = await run(h, BOB, "invites retention", {"member": ADA})
    assert not rec.ephemeral and rec.embed["title"] == "Invite retention of ada"
    brought = "3 members brought in (first joins credited to them)"
    assert rec.embed["description"] == f"{mention(h, ADA)}: {brought}"
    assert fields(rec) == {
        "1 day": "2 of 3 (67%)",  # EVE left after 2 hours
        "7 days": "0 of 1 (0%), 2 not yet known",  # DAN and GUS are here, not for 7 days yet
        "30 days": "0 of 1 (0%), 2 not yet known",
        "Median activity (all time)": "median 1 message, 10m in voice",  # of 3/1/0 and 10m/20m/0
        "By code": ("`abc`: 3 members brought in · 1 day: 2 of 3 (67%) · 7 days: 0 of 1 (0%), "
                    "2 not yet known · 30 days: 0 of 1 (0%), 2 not yet known · "
                    "median 1 message, 10m in voice"),
    }
    assert "Not yet known: joined less than N days ago" in rec.embed["footer"]["text"]
    h.emu.leave(FAY)  # after a day and 3 hours: stayed 1 day, not 7
    await h.settle()

    h.clock.advance(7 * DAY)
    board = await run(h, CY, "invites retention")
    assert not board.ephemeral and board.custom_ids == []  # one page: no buttons
    assert board.embed["title"] == "Invite retention - by members who stayed 30 days"
    assert board.embed["description"] == (
        f"**1.** {mention(h, ADA)} - 3 members brought in\n"
        "1 day: 2 of 3 (67%) · 7 days: 2 of 3 (67%) · 30 days: 0 of 1 (0%), 2 not yet known\n"
        "median 1 message, 10m in voice\n"
        f"**2.** {mention(h, BOB)} - 1 member brought in\n"
        "1 day: 1 of 1 (100%) · 7 days: 0 of 1 (0%) · 30 days: 0 of 1 (0%)\n"
        "median 0 messages, no voice time"
    )  # tied at 30 days: ADA's 2 members retained 7 days rank her first
    assert board.embed["footer"]["text"].startswith("Page 1/1 · Stayed N days: still here N days")

    h.clock.advance(30 * DAY)
    later = await run(h, CY, "invites retention", {"member": ADA})
    assert fields(later)["30 days"] == "2 of 3 (67%)"


async def test_a_codes_retention_from_a_code_or_a_link(tracker: Harness) -> None:
    h = tracker
    await brought_in(h)
    h.clock.advance(DAY + HOUR)
    rec = await run(h, CY, "invites retention", {"code": "discord.gg/abc"})
    assert rec.embed["title"] == "Invite retention of code `abc`"
    assert rec.embed["description"] == f"3 members brought in through it, credited to {mention(h, ADA)}"
    assert fields(rec)["1 day"] == "2 of 3 (67%)"
    bobs = await run(h, CY, "invites retention", {"code": "bobs", "member": BOB})
    assert fields(bobs)["1 day"] == "1 of 1 (100%)" and fields(bobs)["7 days"] == "not yet known (1 member)"
    other = await run(h, CY, "invites retention", {"code": "abc", "member": BOB})  # not BOB's code
    assert other.embed["description"] == f"No members brought in through `abc` for {mention(h, BOB)} yet."
    vanity = await run(h, BOB, "invites retention", {"code": "study"})  # the vanity URL credits nobody
    assert vanity.embed["description"] == "No members brought in through `study` yet."
    bad = await run(h, BOB, "invites retention", {"code": "not a code!"})
    assert bad.ephemeral and "That is not an invite code or link" in bad.content


async def test_the_same_answers_from_memory_and_from_the_fallback_reads(tracker: Harness) -> None:
    """Invite boards and ranks in memory, or (not built, a standby) one read of the credited joins
    and the activity documents: the same replies."""
    h = tracker
    await brought_in(h)
    h.clock.advance(8 * DAY)
    assert h.bot is not None and h.bot.repos.invite_boards is not None
    assert h.bot.repos.invite_boards.ready(G) and h.bot.ranks.ready(G)
    asks = [("invites retention", {}), ("invites retention", {"member": ADA}),
            ("invites retention", {"code": "abc"}), ("invites leaderboard", {"sort": "retained_30d"})]
    from_memory = [(await run(h, CY, name, options)).text() for name, options in asks]
    h.bot.repos.invite_boards.active = lambda: False
    h.bot.ranks.active = lambda: False
    fallback = [(await run(h, CY, name, options)).text() for name, options in asks]
    assert fallback == from_memory
    assert "median 1 message, 10m in voice" in from_memory[1]


async def test_the_leaderboard_sorted_by_members_who_stayed_30_days(tracker: Harness) -> None:
    h = tracker
    await brought_in(h)
    await run(h, ADA, "invites-admin bonus", {"member": BOB, "amount": 5})
    h.clock.advance(31 * DAY)
    by_invites = await run(h, CY, "invites leaderboard")
    text = by_invites.text()
    assert text.index(mention(h, BOB)) < text.index(mention(h, ADA))  # 6 invites against 2
    rec = await run(h, CY, "invites leaderboard", {"sort": "retained_30d"})
    assert rec.embed["title"] == "Invite leaderboard - all time, by members who stayed 30 days"
    assert rec.embed["description"] == (
        f"**1.** {mention(h, ADA)} - **2 invites** (3 joins, 1 left) · stayed 30 days: 2 of 3 (67%)\n"
        f"**2.** {mention(h, BOB)} - **6 invites** (1 join, +5 bonus invites) · "
        "stayed 30 days: 1 of 1 (100%)"
    )


async def test_the_retention_board_pages_and_only_its_requester_pages_it(tracker: Harness) -> None:
    """Eleven more inviters, written through the join repository (their joins long before the bot
    started): two pages."""
    h = tracker
    assert h.bot is not None
    old = datetime(2025, 6, 1, tzinfo=UTC)
    for n in range(11):
        attribution = Attribution("invite", f"code{n}", 900 + n, f"inviter{n}")
        await h.bot.repos.joins.record(JoinRecord(G, 700 + n, f"j{n}", old, old, attribution, FIRST, "", old))
    rec = await run(h, BOB, "invites retention")
    assert "Page 1/2" in rec.text() and rec.custom_ids == ["invites:lb:prev", "invites:lb:next"]
    assert "**1.** <@900> (left) - 1 member brought in" in rec.embed["description"]
    page2 = await h.emu.click(rec, "invites:lb:next", BOB)
    assert "Page 2/2" in page2.text() and "**11.** <@910> (left)" in page2.text()
    other = await h.emu.click(page2, "invites:lb:prev", CY)
    assert other.ephemeral and "run `/invites retention` yourself" in other.content


async def test_members_who_may_not_see_others_get_only_their_own_retention(tracker: Harness) -> None:
    h = tracker
    await brought_in(h)
    h.clock.advance(DAY + HOUR)
    assert h.bot is not None
    await h.bot.repos.guild_settings.set_fields(G, members_view_others=False)
    board = await run(h, BOB, "invites retention")
    assert board.ephemeral and mention(h, ADA) not in board.text()
    assert "only their own" in board.embed["description"]
    assert f"{mention(h, BOB)} - 1 member brought in" in board.embed["description"]
    for options in ({"member": ADA}, {"code": "abc"}, {"code": "abc", "member": ADA}):
        refused = await run(h, BOB, "invites retention", options)
        assert refused.ephemeral and "only their own `/invites retention`" in refused.content, options
        assert refused.embed is None
    own = await run(h, BOB, "invites retention", {"code": "bobs"})
    assert own.ephemeral and fields(own)["1 day"] == "1 of 1 (100%)"
    admin = await run(h, ADA, "invites retention")
    assert admin.ephemeral and mention(h, ADA) in admin.text() and mention(h, BOB) in admin.text()
    admin_code = await run(h, ADA, "invites retention", {"code": "bobs"})
    assert admin_code.ephemeral and fields(admin_code)["1 day"] == "1 of 1 (100%)"
