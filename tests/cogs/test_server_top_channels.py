"""/server stats' top channels through the real slash command: more channels than are shown, a
thread's messages under its parent channel, the shares, from the channel table in memory and from
the database's aggregation when it is not built, both equal to what the test posted."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import discord
import pytest

from app.tracking.server_stats import DATABASE, MEMORY
from cogs import server
from tests.botharness import GUILD, Harness

G, ADA, BOB, CY = 1, 101, 102, 103
GENERAL, THREAD = 10, 60
SIDE = list(range(40, 52))  # twelve more text channels: more than the ten shown


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    spec = copy.deepcopy(GUILD)
    spec["channels"] += [{"id": c, "type": "text", "name": f"room-{c}"} for c in SIDE]
    spec["channels"].append({"id": THREAD, "type": "thread", "name": "a thread", "parent": GENERAL})
    return spec


def top_field(rec: Any) -> str:
    assert rec.embed is not None, rec
    (value,) = [f["value"] for f in rec.embed["fields"] if f["name"] == server.TOP_CHANNELS_NAME]
    return value


def expected_lines(truth: Counter[int]) -> str:
    whole = sum(truth.values())
    ranked = sorted(truth.items(), key=lambda item: (-item[1], item[0]))[:10]
    return "\n".join(f"{rank}. <#{c}> {n:,} ({n / whole:.1%})" for rank, (c, n) in enumerate(ranked, 1))


async def stored(h: Harness) -> Counter[int]:
    """Messages per channel from the channel-day documents (computed from scratch)."""
    found: Counter[int] = Counter()
    async for doc in h.db.activity.find({"guild_id": G, "kind": "chday"}):
        found[doc["channel_id"]] += doc["messages"]
    return found


async def test_top_channels_from_memory_and_from_the_database_equal_what_was_posted(
    tracker: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    truth: Counter[int] = Counter()
    authors = (ADA, BOB, CY)
    for i, channel in enumerate(SIDE):  # 1..12 messages: a distinct count per channel
        for n in range(i + 1):
            emu.message(authors[n % 3], channel)
        truth[channel] += i + 1
    for n in range(3):
        emu.message(authors[n % 3], GENERAL)
    for n in range(4):  # a thread's messages count under its parent channel
        emu.message(authors[n % 3], THREAD)
    truth[GENERAL] += 7
    await h.settle()
    assert await stored(h) == truth
    totals = Counter({d["member_id"]: d["messages"] async for d in h.db.activity.find({"kind": "total"})})
    assert sum(totals.values()) == sum(truth.values())  # the same messages as the members'
    assert h.bot.channel_stats.ready(G)

    aggregated: list[tuple[str, str]] = []
    channel_totals = h.bot.repos.activity.channel_totals

    async def counting(guild_id: int, since: str, until: str) -> Any:
        aggregated.append((since, until))
        return await channel_totals(guild_id, since, until)

    monkeypatch.setattr(h.bot.repos.activity, "channel_totals", counting)
    sources: list[str] = []
    build = server.build_server_stats_embed

    def recording(guild_name: str, stats: Any) -> Any:
        sources.append(stats.channels_from)
        return build(guild_name, stats)

    monkeypatch.setattr(server, "build_server_stats_embed", recording)

    rec = await emu.command(BOB, "server stats", {"period": "7d"})
    value = top_field(rec)
    assert value == expected_lines(truth)
    assert value.splitlines()[0] == "1. <#51> 12 (14.1%)"  # 12 of 85 messages
    assert "<#10> 7 " in value and f"<#{THREAD}>" not in value  # the thread's under its parent
    assert "<#40>" not in value and "<#41>" not in value  # 1 and 2 messages: not in the top ten
    assert len(value) <= 1024 and aggregated == [] and sources == [MEMORY]

    h.bot.channel_stats.forget()  # not built (a standby, a take-over, a start): the aggregation
    month = await emu.command(ADA, "server stats")
    assert top_field(month) == value
    assert len(aggregated) == 1 and sources == [MEMORY, DATABASE]

    h.bot.channel_stats.ensure(G)  # built again: the messages posted since are in it once
    await h.bot.channel_stats.wait_ready(G)
    for n in range(20):
        emu.message(authors[n % 3], SIDE[0])
    truth[SIDE[0]] += 20
    await h.settle()
    again = await emu.command(CY, "server stats", {"period": "7d"})
    assert top_field(again) == expected_lines(truth) and await stored(h) == truth
    assert top_field(again).splitlines()[0] == "1. <#40> 21 (20.0%)" and sources[-1] == MEMORY


async def test_a_channel_the_member_cannot_view_is_not_listed_and_stays_in_the_whole(
    tracker: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply is posted for everyone: a channel the member running the command may not view is
    left out of their list (the next one moves up); the shares stay of every channel's messages."""
    h, emu = tracker, tracker.emu
    for channel, n in ((SIDE[0], 5), (SIDE[1], 3), (GENERAL, 2)):
        for _ in range(n):
            emu.message(ADA, channel)
    await h.settle()
    real = discord.TextChannel.permissions_for

    def staff_only(self: discord.TextChannel, obj: Any, /) -> discord.Permissions:
        perms = real(self, obj)
        if self.id == SIDE[0] and getattr(obj, "id", None) == emu.user_id(BOB):
            perms.view_channel = False  # as a permission overwrite would (the emulator has none)
        return perms

    monkeypatch.setattr(discord.TextChannel, "permissions_for", staff_only)
    bob = top_field(await emu.command(BOB, "server stats", {"period": "7d"}))
    assert bob == "1. <#41> 3 (30.0%)\n2. <#10> 2 (20.0%)"
    ada = top_field(await emu.command(ADA, "server stats", {"period": "7d"}))
    assert ada == "1. <#40> 5 (50.0%)\n2. <#41> 3 (30.0%)\n3. <#10> 2 (20.0%)"


async def test_the_table_is_read_again_after_a_refused_batch_a_restart_and_a_take_over(
    tracker: Harness,
) -> None:
    """A batch MongoDB refused for one member is kept aside, but an unordered bulk write applied its
    channel counts: the table reads MongoDB again (it is not told of a refused batch). A restart and
    a lease take-over build it from the documents too."""
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    emu.message(ADA, SIDE[0])
    await h.settle()
    total = f"t:{G}:{emu.user_id(ADA)}"
    await h.db.activity.update_one({"_id": total}, {"$set": {"messages": "not a number"}})
    for _ in range(3):
        emu.message(ADA, SIDE[1])
    await h.settle()
    await h.bot.channel_stats.wait_ready(G)
    assert h.bot.get_cog("Activity").messages.refused == 1
    assert await stored(h) == Counter({SIDE[0]: 1, SIDE[1]: 3})  # applied beside the refused document
    assert top_field(await emu.command(BOB, "server stats")) == "1. <#41> 3 (75.0%)\n2. <#40> 1 (25.0%)"

    await h.db.activity.update_one({"_id": total}, {"$set": {"messages": 1}})
    await h.restart()  # graceful: the table is built from the documents at start
    await h.bot.channel_stats.wait_ready(G)
    for _ in range(2):
        emu.message(BOB, GENERAL)
    await h.settle()
    lines = "1. <#41> 3 (50.0%)\n2. <#10> 2 (33.3%)\n3. <#40> 1 (16.7%)"
    assert top_field(await emu.command(BOB, "server stats")) == lines

    h.bot._took_over()  # another process held the lease meanwhile: forgotten, then built again
    assert not h.bot.channel_stats.ready(G)
    await h.settle()
    await h.bot.channel_stats.wait_ready(G)
    assert h.bot.channel_stats.ready(G)
    assert top_field(await emu.command(CY, "server stats")) == lines
