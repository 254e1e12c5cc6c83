"""/ud and /top invoked as slash commands against the real bot and the emulator."""

from __future__ import annotations

import asyncio
import copy
import struct
import threading
from typing import Any

import pytest
from discord.ext import commands

from app.tracking import card as card_module
from app.tracking.card import MemberCard, render_member_card
from app.wiring.commands import SLOW_READ_SECONDS
from cogs import stats
from repositories.activity import Credit
from tests.botharness import GUILD, Harness

ADA, BOB, CY = 101, 102, 103
GENERAL, FOCUS = 10, 20
G = 1
EXTRA = list(range(201, 224))  # 23 more members: 26 in all, three pages of ten


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    spec = copy.deepcopy(GUILD)
    spec["members"] += [{"id": i, "name": f"m{i}", "created": "2023-01-01T00:00:00Z"} for i in EXTRA]
    return spec


ACTIVITY_FIELDS = ("Messages", "Voice", "Camera on", "Camera off", "Streaming", "Rank (messages)",
                   "Rank (voice)")


def fields(rec: Any) -> dict[str, str]:
    """The embed's fields; on /ud only the activity ones (other cogs may append theirs)."""
    assert rec.embed is not None, rec
    every = {f["name"]: f["value"] for f in rec.embed["fields"]}
    if rec.name != "ud":
        return every
    names = [f["name"] for f in rec.embed["fields"]]
    assert tuple(names[:7]) == ACTIVITY_FIELDS  # the activity fields come first, in this order
    return {name: every[name] for name in ACTIVITY_FIELDS}


async def seed(h: Harness, member: int, day: str, **amounts: int) -> None:
    assert h.bot is not None
    repo, member_id = h.bot.repos.activity, h.emu.user_id(member)
    messages = {"messages": amounts.pop("messages", 0)}
    await repo.add_messages([Credit(G, member_id, day, messages)], f"seed-m-{member}{day}")
    if amounts:
        voice = {"voice_s": 0, "cam_on_s": 0, "cam_off_s": 0, "stream_s": 0, **amounts}
        await repo.add_voice([Credit(G, member_id, day, voice)], f"seed-v-{member}{day}")
    # written behind the trackers' back (like an import): the bot's ranks read MongoDB again
    h.bot.ranks.rebuild(G)
    await h.bot.ranks.wait_ready(G)
    assert h.bot.ranks.ready(G)  # the commands below answer from the ranks in memory


async def test_ud_shows_counters_ranks_and_time_format_per_period(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    for _ in range(3):
        emu.message(BOB, GENERAL)
    emu.voice(BOB, FOCUS, camera=True, stream=True)
    await h.settle()
    h.clock.advance(3600)
    emu.voice(BOB, FOCUS, stream=True)  # camera off
    await h.settle()
    h.clock.advance(43500 - 3600)  # 12h 05m in all, ending 00:05 UTC the next day
    emu.voice(BOB, None)
    await h.settle()
    await seed(h, CY, "2026-03-01", messages=10)  # more messages than BOB, but 10 days ago
    await seed(h, ADA, "2026-03-10", voice_s=50000, cam_off_s=50000)  # more voice than BOB

    rec = await emu.command(ADA, "ud", {"member": BOB})
    assert rec.ephemeral  # an admin's lookup of another member
    assert rec.embed["title"] == "Activity of bob"
    assert rec.embed["description"] == f"<@{emu.user_id(BOB)}> · all time"
    assert fields(rec) == {
        "Messages": "3", "Voice": "12h 05m", "Camera on": "1h 00m", "Camera off": "11h 05m",
        "Streaming": "12h 05m", "Rank (messages)": "#2", "Rank (voice)": "#2",
    }
    today = await emu.command(BOB, "ud", {"period": "today"})  # BOB himself; today is 2026-03-11
    assert today.embed["title"] == "Activity of bob"
    assert fields(today) == {
        "Messages": "0", "Voice": "5m", "Camera on": "—", "Camera off": "5m",
        "Streaming": "5m", "Rank (messages)": "not ranked", "Rank (voice)": "#1",
    }
    week = fields(await emu.command(ADA, "ud", {"member": BOB, "period": "7d"}))
    assert (week["Messages"], week["Rank (messages)"], week["Rank (voice)"]) == ("3", "#1", "#2")
    month = fields(await emu.command(ADA, "ud", {"member": CY, "period": "30d"}))
    assert (month["Messages"], month["Rank (messages)"], month["Voice"]) == ("10", "#1", "—")


async def test_ud_chart_attaches_the_member_card_of_the_chosen_period(
    tracker: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, emu = tracker, tracker.emu
    await seed(h, BOB, "2026-02-20", messages=4, voice_s=7200, cam_on_s=3600, cam_off_s=3600)
    await seed(h, BOB, "2026-03-09", messages=2, voice_s=600, cam_off_s=600, stream_s=600)
    emu.message(BOB, GENERAL)
    await h.settle()
    cards: list[MemberCard] = []
    threads: list[int] = []

    def recording_render(card: MemberCard) -> bytes:
        threads.append(threading.get_ident())
        cards.append(card)
        return render_member_card(card)

    monkeypatch.setattr(stats, "render_member_card", recording_render)
    rec = await emu.command(BOB, "ud", {"period": "7d", "chart": True})
    assert rec.deferred
    assert threads and threads[0] != threading.get_ident()  # rendered off the event loop's thread
    (attachment,) = rec.attachments
    assert attachment["filename"] == "activity.png"
    png = emu.attachment_bytes(attachment)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and struct.unpack(">I", png[16:20]) == (card_module.WIDTH,)
    assert rec.embed["image"]["url"] == "attachment://activity.png"
    assert fields(rec)["Messages"] == "3"  # the week's: 2026-02-20 is older
    (week,) = cards  # the card shows the period asked for, not 30 days
    assert week.name == "bob" and week.member_id == emu.user_id(BOB)
    assert week.subtitle.endswith("· last 7 days")
    assert [b.label for b in week.bars][-1] == "today" and len(week.bars) == 7
    assert [b.counters.messages for b in week.bars] == [0, 0, 0, 0, 0, 2, 1]
    assert week.bars[-2].counters.stream_s == 600
    assert (week.counters.messages, week.message_rank, week.ranked[0]) == (3, 1, 1)
    await emu.command(BOB, "ud", {"period": "30d", "chart": True})
    month = {b.label: b.counters.messages for b in cards[1].bars}
    assert len(cards[1].bars) == 30 and month["Feb 20"] == 4 and month["today"] == 1
    h.clock.advance(60)  # the chart cooldown
    await emu.command(BOB, "ud", {"chart": True})
    assert len(cards[2].bars) == 12 and cards[2].caption == "Per month, last 12 months"
    assert cards[2].counters.messages == 7


async def test_ud_of_others_follows_the_guild_setting(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    await h.bot.repos.guild_settings.set_fields(G, members_view_others=False)
    refused = await emu.command(BOB, "ud", {"member": CY})
    assert refused.ephemeral and refused.embed is None and "only their own" in refused.content
    own = await emu.command(BOB, "ud")
    assert own.embed["title"] == "Activity of bob"
    staff = await emu.command(ADA, "ud", {"member": CY})  # ADA manages the guild
    assert staff.embed["title"] == "Activity of cy"


class ExtraFigures(commands.Cog):
    async def ud_fields(self, guild_id: int, member_id: int, period: str) -> list[tuple[str, str]]:
        return [("Extra figure", f"7 ({period}, member {member_id})")]


async def test_ud_appends_fields_from_other_cogs(tracker: Harness) -> None:
    assert tracker.bot is not None
    await tracker.bot.add_cog(ExtraFigures())
    rec = await tracker.emu.command(BOB, "ud", {"period": "7d"})
    last = rec.embed["fields"][-1]
    assert (last["name"], last["value"]) == ("Extra figure", f"7 (7d, member {tracker.emu.user_id(BOB)})")


async def test_top_pages_ten_at_a_time_with_own_rank(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    ranked = [*EXTRA, ADA, BOB]  # 25 members with messages: member k has k+1 messages
    for k, member in enumerate(ranked):
        await seed(h, member, "2026-03-10", messages=k + 1)
    rec = await emu.command(BOB, "top", {"board": "messages"})
    embed = rec.embed
    assert embed["title"] == "Top messages - all time" and embed["footer"]["text"] == "Page 1/3"
    lines = embed["description"].splitlines()
    at = lambda member: f"<@{emu.user_id(member)}>"  # noqa: E731
    assert lines[0] == f"`#1` {at(BOB)} - 25 messages" and lines[1] == f"`#2` {at(ADA)} - 24 messages"
    assert lines[9] == f"`#10` {at(216)} - 16 messages" and len(lines) == 10
    assert fields(rec) == {"Your rank": "#1 - 25 messages"}
    assert rec.custom_ids == ["top:board", "top:period", "top:prev", "top:next"]

    page2 = await emu.click(rec, "top:next", BOB)
    lines = page2.message["embeds"][0]["description"].splitlines()
    assert lines[0] == f"`#11` {at(215)} - 15 messages" and len(lines) == 10
    page3 = await emu.click(page2, "top:next", BOB)
    embed3 = page3.message["embeds"][0]
    assert embed3["footer"]["text"] == "Page 3/3"
    assert embed3["description"].splitlines() == [
        f"`#{21 + i}` {at(205 - i)} - {5 - i} {'message' if i == 4 else 'messages'}" for i in range(5)]
    with pytest.raises(ValueError, match="disabled"):
        await emu.click(page3, "top:next", BOB)
    back = await emu.click(page3, "top:prev", BOB)
    assert back.message["embeds"][0]["footer"]["text"] == "Page 2/3"
    stranger = await emu.click(back, "top:prev", CY)
    assert stranger.ephemeral and "Only the member who ran /top" in stranger.content

    cy_view = await emu.command(CY, "top", {"board": "messages"})
    assert fields(cy_view) == {"Your rank": "not ranked yet"}


async def test_top_voice_and_camera_by_period(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await seed(h, ADA, "2026-03-01", voice_s=9000, cam_on_s=9000)
    await seed(h, BOB, "2026-03-10", voice_s=4000, cam_on_s=100, cam_off_s=3900)
    await seed(h, CY, "2026-03-09", voice_s=600, cam_on_s=600)
    ada, bob, cy = (f"<@{emu.user_id(m)}>" for m in (ADA, BOB, CY))
    all_time = await emu.command(CY, "top", {"board": "voice"})
    assert all_time.embed["description"].splitlines() == [f"`#1` {ada} - 2h 30m", f"`#2` {bob} - 1h 06m",
                                                          f"`#3` {cy} - 10m"]
    assert fields(all_time) == {"Your rank": "#3 - 10m"}
    week_cam = await emu.command(CY, "top", {"board": "camera", "period": "7d"})
    assert week_cam.embed["title"] == "Top camera-on time - last 7 days"
    assert week_cam.embed["description"].splitlines() == [f"`#1` {cy} - 10m", f"`#2` {bob} - 1m"]
    assert fields(week_cam) == {"Your rank": "#1 - 10m"}
    today = await emu.command(ADA, "top", {"board": "voice", "period": "today"})
    assert today.embed["description"].splitlines() == [f"`#1` {bob} - 1h 06m"]
    assert fields(today) == {"Your rank": "not ranked yet"}
    assert today.embed["footer"]["text"] == "Page 1/1"
    assert today.custom_ids == ["top:board", "top:period"], "no page buttons for a single page"


def select(rec: Any, custom_id: str) -> dict[str, Any]:
    return next(c for row in rec.message["components"] for c in row["components"]
                if c["custom_id"] == custom_id)


def chosen(rec: Any, custom_id: str) -> list[str]:
    return [o["value"] for o in select(rec, custom_id)["options"] if o.get("default")]


async def test_top_switches_board_and_period_on_the_message_without_the_cooldown(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await seed(h, ADA, "2026-03-01", messages=5, voice_s=9000, cam_on_s=9000)
    await seed(h, BOB, "2026-03-10", messages=2, voice_s=4000, cam_off_s=3200, stream_s=800)
    bob = f"<@{emu.user_id(BOB)}>"
    runs = [await emu.command(BOB, "top", {"board": "messages"}) for _ in range(3)]  # the limit: 3 per 30s
    rec = runs[-1]
    assert [o["value"] for o in select(rec, "top:board")["options"]] == ["messages", "voice", "camera",
                                                                        "streaming"]
    assert chosen(rec, "top:board") == ["messages"] and chosen(rec, "top:period") == ["all"]
    for _ in range(3):  # switching back and forth is not a run of /top
        rec = await emu.click(rec, "top:board", BOB, values=["streaming"])
        assert rec.message["embeds"][0]["title"] == "Top streaming time - all time"
        rec = await emu.click(rec, "top:board", BOB, values=["voice"])
    rec = await emu.click(rec, "top:period", BOB, values=["today"])
    embed = rec.message["embeds"][0]
    assert embed["title"] == "Top voice time - today"
    assert embed["description"].splitlines() == [f"`#1` {bob} - 1h 06m"]
    assert chosen(rec, "top:board") == ["voice"] and chosen(rec, "top:period") == ["today"]
    rec = await emu.click(rec, "top:board", BOB, values=["streaming"])
    assert rec.message["embeds"][0]["description"].splitlines() == [f"`#1` {bob} - 13m"]
    stranger = await emu.click(rec, "top:period", CY, values=["all"])
    assert stranger.ephemeral and "Only the member who ran /top" in stranger.content
    refused = await emu.command(BOB, "top", {"board": "messages"})  # the command itself still cools down
    assert refused.ephemeral and "try again in" in refused.content


async def test_top_defers_when_the_read_is_slow(tracker: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h, emu = tracker, tracker.emu
    await seed(h, BOB, "2026-03-10", messages=2)
    fast = await emu.command(BOB, "top", {"board": "messages"})
    assert fast.callback_type == 4 and fast.embed is not None  # answered at once
    cog = h.bot.get_cog("Stats")
    top_page = cog.top_page

    async def slow_page(*args: Any) -> Any:
        await asyncio.sleep(SLOW_READ_SECONDS + 0.5)
        return await top_page(*args)

    monkeypatch.setattr(cog, "top_page", slow_page)
    slow = await emu.command(BOB, "top", {"board": "messages"})
    assert slow.callback_type == 5, "deferred: Discord shows 'thinking...' instead of a timeout"
    assert slow.embed["title"] == "Top messages - all time" and not slow.ephemeral
    switched = await emu.click(slow, "top:board", BOB, values=["voice"])
    assert switched.callback_type == 6  # a slow switch: a deferred update, then the edit
    assert switched.message["embeds"][0]["title"] == "Top voice time - all time"


async def test_ud_defers_when_the_read_is_slow(tracker: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h, emu = tracker, tracker.emu
    await seed(h, BOB, "2026-03-10", messages=2)
    assert (await emu.command(BOB, "ud")).callback_type == 4  # answered at once
    cog = h.bot.get_cog("Stats")
    ud_values = cog.ud_values

    async def slow_values(*args: Any) -> Any:
        await asyncio.sleep(SLOW_READ_SECONDS + 0.5)
        return await ud_values(*args)

    monkeypatch.setattr(cog, "ud_values", slow_values)
    slow = await emu.command(BOB, "ud")
    assert slow.callback_type == 5 and not slow.ephemeral
    assert fields(slow)["Messages"] == "2"
    private = await emu.command(ADA, "ud", {"member": BOB})  # an admin's lookup: deferred ephemeral
    assert private.callback_type == 5 and private.ephemeral and fields(private)["Messages"] == "2"


async def test_a_member_named_like_math_text_gets_their_chart(tracker: Harness) -> None:
    """Issue 18, finding 6: a display name like `$x^^$` made `/ud chart:true` fail (matplotlib read
    the title as math text). The chart now comes back as a PNG for any name."""
    h, emu = tracker, tracker.emu
    emu.join({"id": 250, "name": "$x^^$", "created": "2020-01-01T00:00:00Z"}, via="abc")
    await h.settle()
    emu.message(250, GENERAL)
    await h.settle()
    rec = await emu.command(250, "ud", {"chart": True})
    assert rec.embed is not None, rec
    (attachment,) = rec.attachments
    assert emu.attachment_bytes(attachment).startswith(b"\x89PNG\r\n\x1a\n")
