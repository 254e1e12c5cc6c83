"""/server stats invoked as a slash command against the real bot and the emulator: messages, voice,
joins and leaves over several days in a guild whose days are not UTC's, the figures per day checked
against what the test did and against a computation from the stored documents, from the ranks in
memory and from the database when they are not built, and the chart checked as an image."""

from __future__ import annotations

import copy
import io
import struct
import threading
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from app.tracking import server_chart
from app.tracking.server_chart import ServerChart, render_server_chart
from app.tracking.server_stats import DATABASE, MEMORY, Figures
from cogs import server
from tests.botharness import GUILD, Harness

G, ADA, BOB, CY = 1, 101, 102, 103
GENERAL, FOCUS = 10, 20
NEW_YORK = ZoneInfo("America/New_York")
OLD = "2020-01-01T00:00:00Z"
LAST_DAY = date(2026, 3, 15)


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    spec = copy.deepcopy(GUILD)
    for member in spec["members"]:
        member["joined"] = "2025-01-01T00:00:00Z"  # long before the periods asked for
    return spec


class Truth:
    """What the test did, per New York day: the figures the command must show."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.days: defaultdict[date, Counter[str]] = defaultdict(Counter)

    def today(self) -> date:
        return self.h.clock.now().astimezone(NEW_YORK).date()

    def add(self, **amounts: int) -> None:
        self.days[self.today()].update(amounts)

    def figures(self, day: date) -> Figures:
        c = self.days.get(day, Counter())
        return Figures(c["joins"], c["leaves"], c["messages"], c["voice_s"])


def at(h: Harness, year: int, month: int, day: int, hour: int, minute: int = 0) -> None:
    """Move the bot's clock to a New York wall-clock time."""
    h.clock.set(datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC))


async def messages(h: Harness, truth: Truth, member: int, n: int) -> None:
    for _ in range(n):
        h.emu.message(member, GENERAL)
    await h.settle()
    truth.add(messages=n)


async def voice(h: Harness, truth: Truth, member: int, seconds: int, *, camera: bool = False) -> None:
    """In voice for `seconds` (credited to the days the time falls on, split at local midnight)."""
    start = h.clock.now()
    h.emu.voice(member, FOCUS, camera=camera)
    await h.settle()
    h.clock.advance(seconds)
    h.emu.voice(member, None)
    await h.settle()
    second = start
    while second < h.clock.now():
        step = min(h.clock.now(), datetime.combine(second.astimezone(NEW_YORK).date() + timedelta(days=1),
                                                   datetime.min.time(), tzinfo=NEW_YORK))
        truth.days[second.astimezone(NEW_YORK).date()]["voice_s"] += int((step - second).total_seconds())
        second = step


async def join(h: Harness, truth: Truth, member: int, via: str) -> None:
    joined = h.clock.now().isoformat().replace("+00:00", "Z")
    h.emu.join({"id": member, "name": f"m{member}", "created": OLD, "joined": joined}, via=via)
    await h.settle()
    truth.add(joins=1)


async def leave(h: Harness, truth: Truth, member: int) -> None:
    h.emu.leave(member)
    await h.settle()
    truth.add(leaves=1)


async def scenario(h: Harness) -> Truth:
    """Six days in New York time; some events fall on another UTC day than their local one."""
    assert h.bot is not None
    await h.bot.repos.guild_settings.set_fields(G, time_zone="America/New_York")
    truth = Truth(h)
    at(h, 2026, 3, 10, 8)  # 12:00 UTC: where the clock starts
    await messages(h, truth, BOB, 3)
    await voice(h, truth, CY, 1800, camera=True)
    await join(h, truth, 301, "abc")
    at(h, 2026, 3, 10, 23, 30)  # 03:30 UTC on the 11th: still the 10th in New York
    await messages(h, truth, ADA, 2)
    await leave(h, truth, 301)
    at(h, 2026, 3, 10, 23, 50)
    await voice(h, truth, BOB, 1200)  # 10 minutes on the 10th, 10 on the 11th
    await join(h, truth, 302, "bobs")  # 00:10 on the 11th
    at(h, 2026, 3, 13, 15)
    await join(h, truth, 301, "abc")  # a rejoin
    await messages(h, truth, CY, 5)
    await voice(h, truth, ADA, 3600, camera=True)
    at(h, 2026, 3, 15, 20)  # 00:00 UTC on the 16th
    await leave(h, truth, 302)
    await join(h, truth, 303, "abc")
    await messages(h, truth, BOB, 1)
    at(h, 2026, 3, 15, 20, 30)
    assert truth.figures(date(2026, 3, 10)) == Figures(1, 1, 5, 2400)  # the scenario as intended
    assert truth.figures(date(2026, 3, 11)) == Figures(1, 0, 0, 600)
    return truth


async def from_the_documents(h: Harness, days: list[date]) -> dict[date, Figures]:
    """The figures per day computed from scratch: every stored day document and join of the guild."""
    sums: defaultdict[date, Counter[str]] = defaultdict(Counter)
    async for doc in h.db.activity.find({"guild_id": G, "kind": "day"}):
        sums[date.fromisoformat(doc["day"])].update(messages=doc["messages"], voice_s=doc["voice_s"])
    leaves = set()
    async for doc in h.db.joins.find({"guild_id": G}):
        local = datetime.fromtimestamp(doc["joined_ms"] / 1000, UTC).astimezone(NEW_YORK).date()
        sums[local]["joins"] += 1
        if doc.get("left_ms") is not None:
            leaves.add((doc["member_id"], doc["left_ms"]))
    for _, left_ms in leaves:
        sums[datetime.fromtimestamp(left_ms / 1000, UTC).astimezone(NEW_YORK).date()]["leaves"] += 1
    return {day: Figures(sums[day]["joins"], sums[day]["leaves"], sums[day]["messages"], sums[day]["voice_s"])
            for day in days}


def fields(rec: Any) -> dict[str, str]:
    assert rec.embed is not None, rec
    return {f["name"]: f["value"] for f in rec.embed["fields"]}


@pytest.fixture
def charts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ServerChart, int]]:
    """Every chart the command renders, with the thread that rendered it."""
    drawn: list[tuple[ServerChart, int]] = []

    def recording(chart: ServerChart) -> bytes:
        drawn.append((chart, threading.get_ident()))
        return render_server_chart(chart)

    monkeypatch.setattr(server, "render_server_chart", recording)
    return drawn


def per_day(chart: ServerChart) -> dict[date, Figures]:
    return {d.day: d.figures for d in chart.stats.days}


async def test_server_stats_per_day_from_memory_and_from_the_database_equal_the_truth(
    tracker: Harness, charts: list[tuple[ServerChart, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    truth = await scenario(h)
    week = [LAST_DAY - timedelta(days=back) for back in range(6, -1, -1)]
    expected = {day: truth.figures(day) for day in week}
    assert await from_the_documents(h, week) == expected  # what was stored is what happened
    assert h.bot.ranks.ready(G)

    rec = await emu.command(BOB, "server stats", {"period": "7d"})
    assert rec.deferred and not rec.ephemeral  # shows no member's numbers: posted for everyone
    assert rec.embed["title"] == "Server stats - last 7 days"
    assert rec.embed["description"] == "Study Hall · per day in server time (America/New_York)"
    assert fields(rec) == {"Joins": "4", "Leaves": "2", "Net growth": "+2", "Messages": "11",
                           "Voice": "1h 50m", "Top channels": "1. <#10> 11 (100.0%)"}
    assert rec.embed["image"]["url"] == "attachment://server-stats.png"
    (attachment,) = rec.attachments
    assert attachment["filename"] == "server-stats.png"
    png = emu.attachment_bytes(attachment)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (server_chart.WIDTH, server_chart.HEIGHT)
    assert Image.open(io.BytesIO(png)).size == (server_chart.WIDTH, server_chart.HEIGHT)
    (chart, thread), = charts
    assert thread != threading.get_ident()  # rendered off the event loop's thread
    assert chart.guild_name == "Study Hall" and chart.stats.time_zone == "America/New_York"
    assert chart.stats.activity_from == MEMORY
    assert list(per_day(chart)) == week and per_day(chart) == expected

    month = await emu.command(CY, "server stats")  # the default: 30 days
    assert month.embed["title"] == "Server stats - last 30 days"
    assert fields(month) == fields(rec)  # everything happened within the week
    days = per_day(charts[1][0])
    ordered = list(days)
    assert len(ordered) == 30 and ordered[-1] == LAST_DAY and ordered[0] == date(2026, 2, 14)
    assert days == await from_the_documents(h, list(days))

    # The ranks not built (a standby, a take-over, a start): one aggregation over the day documents.
    h.bot.ranks.forget()
    assert not h.bot.ranks.ready(G)
    aggregated: list[tuple[str, str]] = []
    guild_days = h.bot.repos.activity.guild_days

    async def counting(guild_id: int, since: str, until: str) -> Any:
        aggregated.append((since, until))
        return await guild_days(guild_id, since, until)

    monkeypatch.setattr(h.bot.repos.activity, "guild_days", counting)
    await h.bot.repos.guild_settings.set_fields(G, members_view_others=False)  # no member's numbers
    fallback = await emu.command(ADA, "server stats", {"period": "7d"})
    assert not fallback.ephemeral and fields(fallback) == fields(rec)
    assert aggregated == [("2026-03-09", "2026-03-15")]
    chart = charts[2][0]
    assert chart.stats.activity_from == DATABASE and per_day(chart) == expected


async def test_server_stats_of_a_quiet_server_are_zeros_and_still_a_chart(
    tracker: Harness, charts: list[tuple[ServerChart, int]]
) -> None:
    rec = await tracker.emu.command(BOB, "server stats", {"period": "7d"})
    assert fields(rec) == {"Joins": "0", "Leaves": "0", "Net growth": "0", "Messages": "0", "Voice": "—",
                           "Top channels": server.NO_CHANNELS}
    (attachment,) = rec.attachments
    assert tracker.emu.attachment_bytes(attachment).startswith(b"\x89PNG\r\n\x1a\n")
    (chart, _), = charts
    assert [d.figures for d in chart.stats.days] == [Figures()] * 7
    assert chart.stats.days[-1].day == date(2026, 3, 10)  # the clock's day, UTC by default
