"""Every reply fits Discord's message limits (issue 14, failure 10); the emulator refuses one that
does not, with the 400 Discord answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import aiohttp
import discord

from app.wiring.reply_limits import (
    DESCRIPTION,
    FIELD_VALUE,
    TOTAL,
    embed_size,
    fit_embed,
    fit_reply,
    more_lines,
)
from scripts.emulator.limits import message_problems
from tests.botharness import TOKEN

GID = 1


async def test_staff_list_with_100_staff_members_fits_in_the_description(tracker):
    repo, uid = tracker.bot.repos.staff_codes, tracker.emu.user_id
    for n in range(100):
        await repo.assign(GID, 900 + n, f"staff{n}", f"code{n:02d}", uid(101), datetime.now(UTC))
    rec = await tracker.emu.command(101, "invites-admin staff list")
    assert rec.embed is not None, rec
    description = rec.embed["description"]
    assert len(description) <= DESCRIPTION and re.search(r"\.\.\. and \d+ more$", description)
    assert "<@900> (staff0, left): code `code00`, 0 invites, 0 conversions (rate —)" in description


async def test_show_with_long_names_keeps_the_field_within_1024_characters(tracker):
    emu = tracker.emu
    for n in range(5):
        emu.join({"id": 300 + n, "name": "_" * 300, "created": "2024-01-01T00:00:00Z"}, via="abc")
    await tracker.settle()
    for n in range(5):  # former members are shown with their stored (long) names
        emu.leave(300 + n)
    await tracker.settle()
    rec = await emu.command(101, "invites show")
    assert rec.embed is not None, rec
    field = next(f for f in rec.embed["fields"] if f["name"] == "Last members brought in")
    assert len(field["value"]) <= FIELD_VALUE and "more" in field["value"]


async def test_the_emulator_answers_400_past_the_limits_like_discord(tracker):
    body = {"embeds": [{"title": "x", "fields": [{"name": f"f{n}", "value": "v"} for n in range(26)]}]}
    headers = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        url = f"{tracker.emu.api_base}/channels/10/messages"
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["code"] == 50035
        async with session.post(url, json={"content": "x" * 2001}, headers=headers) as response:
            assert response.status == 400
        async with session.post(url, json={"content": "x" * 2000}, headers=headers) as response:
            assert response.status == 200


def test_message_problems_names_each_limit():
    big = {"title": "t" * 257, "description": "d" * 4097, "footer": {"text": "f" * 2049},
           "fields": [{"name": "n" * 257, "value": "v" * 1025}]}
    problems = message_problems({"content": "c" * 2001, "embeds": [big] + [{}] * 10})
    assert len(problems) == 8, problems
    assert message_problems({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}) == [
        "embeds: embed size exceeds maximum size of 6000"
    ]
    assert message_problems({"content": "ok", "embeds": [{"title": "t", "fields": []}]}) == []


def test_fit_reply_brings_any_embed_within_every_limit():
    embeds = []
    for _ in range(12):
        embed = discord.Embed(title="t" * 300, description="d" * 5000)
        for _ in range(40):
            embed.add_field(name="n" * 300, value="v" * 2000)
        embed.set_footer(text="f" * 3000)
        embeds.append(embed)
    kwargs = fit_reply({"content": "c" * 3000, "embeds": embeds})
    sent = {"content": kwargs["content"], "embeds": [e.to_dict() for e in kwargs["embeds"]]}
    assert message_problems(sent) == []
    assert sum(embed_size(e) for e in kwargs["embeds"]) <= TOTAL


def test_more_lines_says_how_many_it_left_out():
    text = more_lines([f"line {n} " + "x" * 90 for n in range(50)])
    assert len(text) <= FIELD_VALUE and text.endswith("more") and "line 0" in text
    assert more_lines(["a", "b"]) == "a\nb"
    small = fit_embed(discord.Embed(title="ok", description="fine"))
    assert (small.title, small.description) == ("ok", "fine")
