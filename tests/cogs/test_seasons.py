"""/season start|list, and `/top` and `/ud` of a season, through real slash commands."""

from __future__ import annotations

from typing import Any

import pytest

from app.tracking.card import MemberCard
from cogs import stats
from repositories.activity import Credit
from tests.botharness import Harness

G, ADA, BOB, CY = 1, 101, 102, 103
GENERAL = 10
MIDNIGHT_MAR_10 = 1773100800  # 2026-03-10 00:00 UTC; the test clock starts at 12:00 that day


async def seed(h: Harness, member: int, day: str, messages: int) -> None:
    """Messages on an earlier day, written behind the trackers' back: the ranks read MongoDB again."""
    assert h.bot is not None
    credit = Credit(G, h.emu.user_id(member), day, {"messages": messages})
    await h.bot.repos.activity.add_messages([credit], f"seed-{member}-{day}")
    h.bot.ranks.rebuild(G)
    await h.bot.ranks.wait_ready(G)


def board(rec: Any) -> list[str]:
    assert rec.embed is not None, rec.text()
    return rec.embed["description"].splitlines()


async def test_seasons_start_end_and_stay_readable(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    none = await emu.command(BOB, "top", {"board": "messages", "period": "season"})
    assert none.ephemeral and none.text() == "No season yet: an admin starts one with `/season start`."
    assert (await emu.command(BOB, "ud", {"period": "season"})).text().startswith("No season yet")
    await seed(h, BOB, "2026-03-05", 5)  # before the season
    await seed(h, CY, "2026-03-10", 3)  # earlier today: the season counts from 00:00

    started = await emu.command(ADA, "season start", {"name": "Spring"})
    assert started.ephemeral
    assert started.text().startswith("Season **Spring** counts from 00:00 today in the server's time "
                                     f"zone (UTC): <t:{MIDNIGHT_MAR_10}:F>.")
    stored = await h.db.seasons.find_one({"_id": f"{G}:2026-03-10"})
    fields = ("name", "name_key", "start_day", "started_by", "guild_id")
    assert [stored[f] for f in fields] == ["Spring", "spring", "2026-03-10", emu.user_id(ADA), G]

    top = await emu.command(BOB, "top", {"board": "messages", "period": "season"})
    assert top.embed["title"] == "Top messages - season Spring (since 2026-03-10)"
    assert board(top) == [f"`#1` <@{emu.user_id(CY)}> - 3 messages"]
    assert board(await emu.command(BOB, "top", {"board": "messages"})) == [
        f"`#1` <@{emu.user_id(BOB)}> - 5 messages", f"`#2` <@{emu.user_id(CY)}> - 3 messages"]

    for options, refusal in [
        ({"name": "Summer"}, "**Spring** started on 2026-03-10; a new season starts on a later day"),
        ({"name": "SPRING", "starts": "tomorrow"}, "This server has a season named **SPRING** already"),
    ]:
        refused = await emu.command(ADA, "season start", options)
        assert refused.ephemeral and refused.text().startswith(refusal), refused.text()
    summer = await emu.command(ADA, "season start", {"name": "Summer", "starts": "tomorrow"})
    assert "**Spring** ends with 2026-03-10 and stays readable" in summer.text(), summer.text()
    assert (await emu.command(ADA, "season start", {"starts": "tomorrow"})).text().startswith(
        "**Summer** starts tomorrow (2026-03-11)")
    assert await h.db.seasons.count_documents({}) == 2

    h.clock.advance(86400)  # 2026-03-11: Summer
    emu.message(BOB, GENERAL)
    emu.message(BOB, GENERAL)
    await h.settle()
    now = await emu.command(BOB, "top", {"board": "messages", "period": "season"})
    assert now.embed["title"] == "Top messages - season Summer (since 2026-03-11)"
    assert board(now) == [f"`#1` <@{emu.user_id(BOB)}> - 2 messages"]
    spring = await emu.command(BOB, "top", {"board": "messages", "season": "spring"})
    assert spring.embed["title"] == "Top messages - season Spring (2026-03-10 to 2026-03-10)"
    assert board(spring) == [f"`#1` <@{emu.user_id(CY)}> - 3 messages"]
    switched = await emu.click(spring, "top:board", BOB, values=["voice"])  # the season is kept
    title = switched.message["embeds"][0]["title"]
    assert title == "Top voice time - season Spring (2026-03-10 to 2026-03-10)"
    periods = next(c for row in switched.message["components"] for c in row["components"]
                   if c["custom_id"] == "top:period")["options"]
    assert [o["value"] for o in periods] == ["today", "7d", "30d", "all", "season"]
    assert not any(o.get("default") for o in periods)  # a season by name: no period chosen
    current = await emu.click(switched, "top:period", BOB, values=["season"])  # back to the current one
    assert current.message["embeds"][0]["title"] == "Top voice time - season Summer (since 2026-03-11)"
    unknown = await emu.command(BOB, "top", {"board": "messages", "season": "Winter"})
    assert unknown.ephemeral and unknown.text().startswith("No season named **Winter**")

    ud = await emu.command(CY, "ud", {"period": "season"})
    assert ud.embed["description"] == f"<@{emu.user_id(CY)}> · season Summer (since 2026-03-11)"
    assert {f["name"]: f["value"] for f in ud.embed["fields"]}["Messages"] == "0"

    typed = await emu.autocomplete(BOB, "top", "season", {"board": "messages", "season": ""})
    assert [(c["name"], c["value"]) for c in typed.choices] == [
        ("Summer (since 2026-03-11)", "Summer"), ("Spring (2026-03-10 to 2026-03-10)", "Spring")]

    listed = await emu.command(ADA, "season list")
    assert listed.ephemeral and board(listed) == [
        "2. **Summer**: since 2026-03-11 (current)", "1. **Spring**: 2026-03-10 to 2026-03-10"]


async def test_the_member_card_of_a_long_season_shows_its_last_30_days(
        tracker: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h, emu = tracker, tracker.emu
    await seed(h, BOB, "2026-03-10", 7)  # the season's first day
    await seed(h, BOB, "2026-03-09", 100)  # the day before: not the season's
    await emu.command(ADA, "season start", {"name": "Long one"})
    h.clock.advance(60 * 86400)  # 2026-05-09: the ranks' mirror of 32 days starts after the season's
    await seed(h, BOB, "2026-04-01", 2)
    emu.message(BOB, GENERAL)
    await h.settle()
    cards: list[MemberCard] = []
    monkeypatch.setattr(stats, "render_member_card", lambda card: cards.append(card) or b"\x89PNG\r\n\x1a\n")
    rec = await emu.command(BOB, "ud", {"period": "season", "chart": True})
    assert {f["name"]: f["value"] for f in rec.embed["fields"]}["Messages"] == "10"
    (card,) = cards
    assert card.caption == "Per day, the season's last 30 days (it started 2026-03-10)"
    assert len(card.bars) == 30 and card.bars[-1].counters.messages == 1
    assert card.subtitle.endswith("· season Long one (since 2026-03-10)")
    assert (card.message_rank, card.ranked[0]) == (1, 1)


async def test_season_names_are_shown_inert_and_odd_ones_refused(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    bold = await emu.command(ADA, "season start", {"name": "**@everyone** <@102>"})
    shown = "Season **\\*\\*@\u200beveryone\\*\\* <\u200b@102>** counts from 00:00 today"
    assert shown in bold.text(), bold.text()
    for name, refusal in [("**@EVERYONE** <@102>", "This server has a season named **\\*\\*@EVERYONE"),
                          ("a\x00b", "A season's name is letters, digits, spaces and punctuation only.")]:
        refused = await emu.command(ADA, "season start", {"name": name, "starts": "tomorrow"})
        assert refused.text().startswith(refusal), refused.text()
    blank = await emu.command(ADA, "season start", {"name": "   ", "starts": "tomorrow"})
    assert blank.text().startswith("Season **Season 2** counts from 00:00 tomorrow"), blank.text()
    top = await emu.command(BOB, "top", {"board": "messages", "season": "**@everyone** <@102>"})
    assert top.embed["title"] == ("Top messages - season \\*\\*@\u200beveryone\\*\\* <\u200b@102> "
                                  "(2026-03-10 to 2026-03-10)")
    names = [d["name"] async for d in h.db.seasons.find({}).sort("start_day", 1)]
    assert names == ["**@everyone** <@102>", "Season 2"]
