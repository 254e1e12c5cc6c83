"""Every message the bot sends has mentions disabled, and member names are shown escaped:
members named `@everyone`, `**x**` and `<@&123>` across /ud, /top and the /invites commands."""

from __future__ import annotations

import re
from typing import Any

import discord
import pytest

from cogs.text import safe_name
from tests.botharness import Harness

G, ADA = 1, 101
EVERYONE, BOLD, ROLE, PLAIN = 301, 302, 303, 304
NAMES = {EVERYONE: "@everyone", BOLD: "**x**", ROLE: "<@&123>"}
SHOWN = {EVERYONE: "@\u200beveryone", BOLD: "\\*\\*x\\*\\*", ROLE: "<\u200b@&123>"}
MESSAGE_PATHS = re.compile(r"^/(interactions/\d+/[^/]+/callback|webhooks/\d+/[^/]+(/messages/.+)?|"
                           r"channels/\d+/messages(/\d+)?)$")


def user(uid: int, name: str) -> dict[str, Any]:
    return {"id": uid, "name": name, "created": "2020-01-01T00:00:00Z"}


def sent_bodies(h: Harness) -> list[dict[str, Any]]:
    """The JSON of every message the bot created or edited (callbacks: their `data`)."""
    bodies = []
    for request in h.emu.requests:
        if request.method not in ("POST", "PATCH") or not MESSAGE_PATHS.match(request.path):
            continue
        body = request.json or {}
        if request.path.endswith("/callback"):
            body = body.get("data") or {}
        if body.get("content") or body.get("embeds"):
            bodies.append(body)
    return bodies


def test_safe_name_defuses_markdown_and_every_mention_form() -> None:
    for uid, name in NAMES.items():
        assert safe_name(name) == SHOWN[uid]
    zw = "\u200b"
    assert safe_name("<@123456789012345678> <#10> @here") == (
        f"<{zw}@{zw}123456789012345678> <{zw}#10> @{zw}here")
    assert safe_name("a_b ~~c~~ `d` > e") == "a\\_b \\~\\~c\\~\\~ \\`d\\` > e"


@pytest.fixture
async def crowd(tracker: Harness) -> Harness:
    """Three members with hostile names join through ada's code and talk; @everyone brings one in."""
    h, emu = tracker, tracker.emu
    for uid, name in NAMES.items():
        emu.join(user(uid, name), via="abc")
    await h.settle()
    for uid in NAMES:
        emu.message(uid, 10)
    emu.invite_create("evc", EVERYONE, guild=G)
    await h.settle()
    emu.join(user(PLAIN, "plain"), via="evc")
    await h.settle()
    await emu.command(ADA, "invites-admin staff add", {"member": BOLD, "code": "bobs"})
    return h


async def test_names_are_escaped_and_nothing_pings_in_any_answer(crowd: Harness) -> None:
    h, emu = crowd, crowd.emu
    texts = []
    for uid in NAMES:
        rec = await emu.command(uid, "ud", {"member": uid})
        assert rec.embed["title"] == f"Activity of {SHOWN[uid]}"
        texts.append(rec.text())
        who = await emu.command(ADA, "invites who", {"member": uid})
        assert who.embed["title"] == f"How {SHOWN[uid]} joined"
        texts.append(who.text())
    emu.leave(ROLE)  # a former member is shown with the name stored at the join
    await h.settle()
    top = await emu.command(ADA, "top", {"board": "messages"})
    show = await emu.command(ADA, "invites show", {"member": ADA})
    board = await emu.command(ADA, "invites leaderboard")
    staff = await emu.command(ADA, "invites-admin staff list")
    texts += [top.text(), show.text(), board.text(), staff.text()]
    for uid in NAMES:  # members are mentions (never pinging), their names never raw
        assert f"<@{emu.user_id(uid)}>" in top.text() and f"<@{emu.user_id(uid)}>" in show.text()
    assert f"<@{emu.user_id(ROLE)}> ({SHOWN[ROLE]}, left)" in show.text()
    assert f"<@{emu.user_id(EVERYONE)}>" in board.text() and f"<@{emu.user_id(BOLD)}>" in staff.text()
    everything = "\n".join(texts)
    for raw in NAMES.values():
        assert raw not in everything, raw

    bodies = sent_bodies(h)
    assert len(bodies) == 11  # staff add, 3 x (/ud, /invites who), /top, show, leaderboard, staff list
    for body in bodies:
        assert body.get("allowed_mentions") == {"parse": []}, body
    assert all(raw not in str(body) for body in bodies for raw in NAMES.values())


async def test_the_bot_wide_default_covers_a_send_without_its_own_allowed_mentions(tracker: Harness) -> None:
    """A message sent without `allowed_mentions` (say, a future cog forgetting it) still pings nobody."""
    h = tracker
    assert h.bot is not None
    assert h.bot.allowed_mentions is not None and h.bot.allowed_mentions.to_dict() == {"parse": []}
    channel = h.bot.get_channel(10)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("@everyone <@&50> hello")
    body = next(r.json for r in reversed(h.emu.requests) if r.path == "/channels/10/messages")
    assert body["allowed_mentions"] == {"parse": []}
