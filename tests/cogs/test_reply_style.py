"""Issue 17's first Done-when: every command's reply, rendered by the real bot from real discord.py
objects (the emulator), reads in the one reply style.

A server with realistic data (members who left, a voice visit of 48 seconds, fakes by account
age and by leaving at once, a vanity join, a member with nothing at all) and every slash command
the tree registers run through it. Every message answered is checked: no bare snowflake outside
code and outside `<@..>` / `<#..>` / `<@&..>` / `<t:..>` markup, no `0h 00m`, within Discord's
limits, and no singular count with a plural unit (`1 invites`, `1 uses`, `1 joins`, `1 messages`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cogs import style
from scripts.emulator.interactions import InteractionRecord
from scripts.emulator.limits import message_problems
from tests.botharness import Harness
from tests.cogs.test_invite_rules import leave_after
from tests.cogs.test_invites import guild_spec, user
from tests.cogs.test_permissions import leaf_commands

__all__ = ["guild_spec"]  # the fixture: members joined long before any snapshot

ADA, BOB, CY = 101, 102, 103  # ADA manages the server
DAN, EVE, FAY, GUS, HAL = 201, 202, 203, 204, 205
GENERAL, FOCUS = 10, 20

CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
MARKUP = re.compile(r"<(?:@[!&]?|#)\d+>|<t:-?\d+(?::[tTdDfFR])?>")
SNOWFLAKE = re.compile(r"(?<![\d,.])\d{17,20}(?![\d,])")
UNITS = ("invites|uses|joins|messages|members|days|months|years|files|documents|writes|sessions|codes|"
         "conversions|attempts|bonuses|records|minutes|seconds|hours|times")
SINGULAR_WITH_PLURAL = re.compile(rf"(?<![\d,.])[-+]?1 (?:bonus |join |activity |voice )?(?:{UNITS})\b")


def bare_snowflakes(text: str) -> list[str]:
    """17-20 digit numbers left once code and Discord's mention / timestamp markup are taken out."""
    return SNOWFLAKE.findall(MARKUP.sub("", CODE.sub("", text)))


def style_problems(record: InteractionRecord) -> list[str]:
    problems = [f"{record.name}: {p}" for m in record.messages for p in message_problems(m)]
    text = record.text()
    problems += [f"{record.name}: bare snowflake {s}" for s in bare_snowflakes(text)]
    problems += [f"{record.name}: `0h 00m`"] * ("0h 00m" in text)
    problems += [f"{record.name}: plural {m.group(0)!r}" for m in SINGULAR_WITH_PLURAL.finditer(text)]
    return problems


def test_the_checks_catch_what_they_are_for() -> None:
    """The checks themselves: a bare id is caught, the same id in markup or code is not."""
    assert bare_snowflakes("Invited by: jonas (722057822208000102)") == ["722057822208000102"]
    assert bare_snowflakes("<@722057822208000102> <#722057822208000102> <t:1773144030:R> "
                           "`722057822208000102` <@&722057822208000102>") == []
    assert [m.group(0) for m in SINGULAR_WITH_PLURAL.finditer("1 invites, 11 invites, +1 bonus invites, "
                                                               "1 uses, 1 joins, 1 messages, 1 invite")] == [
        "1 invites", "+1 bonus invites", "1 uses", "1 joins", "1 messages"]
    assert style.duration(48) == "48s" and style.duration(720) == "12m" and style.duration(11100) == "3h 05m"
    assert style.duration(0) == "—" and style.count(1, "invite") == "1 invite"
    assert style.count(1200, "message") == "1,200 messages"
    assert style.signed(1, "bonus invite") == "+1 bonus invite"
    assert style.member(5, "lina", present=False) == "<@5> (lina, left)"
    assert style.fake_text("young_account", account_days=2, threshold_days=7) == (
        "fake: account 2 days old (threshold 7 days)")
    assert style.fake_text("left_quickly", stayed_seconds=20, threshold_seconds=60) == (
        "fake: left after 20s (threshold 1m)")
    assert style.fake_text("self_invite") == "fake: joined through their own invite"
    assert style.fake_text("") == ""
    assert style.invite_total(0, 0, 0, 0, 0) == "No invites yet"
    assert style.invite_total(1, 3, 1, 1, 0) == "**1 invite** (3 joins, 1 left, 1 fake)"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def realistic_server(h: Harness) -> list[InteractionRecord]:
    """Joins, fakes, leaves, short voice, messages; the settings commands that set the rules."""
    emu = h.emu
    rules = {"fake_account_days": 7, "fake_left_within_seconds": 60}
    records = [await emu.command(ADA, "settings set", rules)]
    young = iso(datetime.now(UTC) - timedelta(days=2, hours=1))
    for member, via in ((user(DAN, "dan"), "abc"), (user(EVE, "eve", created=young), "abc"),
                        (user(FAY, "fay"), "bobs"), (user(GUS, "gus"), "vanity"), (user(HAL, "hal"), "abc")):
        emu.join(member, via=via)
        await h.settle()  # one at a time: each join's invite is known
    emu.message(BOB, GENERAL)
    for _ in range(2):
        emu.message(CY, GENERAL)
    for _ in range(3):
        emu.message(FAY, GENERAL)
    emu.voice(BOB, FOCUS)
    emu.voice(CY, FOCUS, camera=True)
    await h.settle()
    h.clock.advance(48)
    emu.voice(BOB, None)
    await h.settle()
    h.clock.advance(720 - 48)
    emu.voice(CY, None)
    await h.settle()
    emu.leave(FAY)
    await h.settle()
    await leave_after(h, HAL, 20)  # fake: left after 20s, under the server's 60s
    return records


async def test_every_commands_reply_reads_in_the_one_style(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    records = await realistic_server(h)

    async def run(member: int, name: str, options: dict[str, Any] | None = None,
                  **kw: Any) -> InteractionRecord:
        record = await emu.command(member, name, options or {}, **kw)
        records.append(record)
        return record

    await run(BOB, "help")
    await run(ADA, "invites-admin staff add", {"member": BOB, "code": "bobs"})
    await run(ADA, "invites-admin staff add", {"member": CY, "code": "not a code!"})
    await run(ADA, "invites-admin staff list")
    await run(ADA, "invites-admin bonus", {"member": CY, "amount": 1})
    for member in (BOB, CY, DAN):
        await run(BOB, "ud", {"member": member})
    await run(BOB, "ud", {"period": "today"})
    await run(CY, "goal set", {"messages": 1, "voice_hours": 1})
    await run(BOB, "ud", {"member": CY})  # CY's streak and weekly goal
    await run(CY, "goal clear")
    for board in ("messages", "voice", "camera", "streaming"):
        await run(CY, "top", {"board": board})
    await run(BOB, "top", {"board": "voice", "period": "7d"})
    await run(BOB, "server stats")
    await run(CY, "server stats", {"period": "7d"})
    for member in (ADA, BOB, DAN):
        await run(BOB, "invites show", {"member": member})
    for member in (EVE, GUS, BOB, DAN):
        await run(ADA, "invites who", {"member": member})
    await run(BOB, "invites leaderboard")
    await run(BOB, "invites leaderboard", {"sort": "retained_30d"})
    await run(BOB, "invites retention")
    await run(BOB, "invites retention", {"member": BOB})
    await run(ADA, "invites retention", {"code": "abc"})
    await run(ADA, "invites-admin debug")
    await run(ADA, "invites-admin refresh")
    reset = await run(ADA, "invites-admin reset", {"member": CY})
    backup_id = re.search(r"Backup id: `(ib-[0-9a-f]+)`", reset.content)
    assert backup_id, reset.content
    await run(ADA, "invites-admin restore", {"backup_id": backup_id.group(1)})
    await run(ADA, "invites-admin restore", {"backup_id": "ib-000000000000"})
    await run(ADA, "invites-admin staff remove", {"member": BOB})
    await run(ADA, "invites-admin staff remove", {"member": BOB})
    await run(ADA, "settings show")
    rule = await run(ADA, "rewards add", {"role": 50, "metric": "voice", "period": "7d", "reach": 1})
    await run(ADA, "rewards add", {"role": 50, "metric": "messages", "reach": 1, "top": 1})  # refused
    await run(ADA, "rewards list")
    await run(ADA, "rewards remove", {"rule": str(rule.id)})
    await run(ADA, "season start", {"name": "Spring"})
    await run(ADA, "season start", {"name": "spring", "starts": "tomorrow"})  # refused: the name
    await run(ADA, "season list")
    await run(BOB, "top", {"board": "messages", "period": "season"})
    await run(BOB, "top", {"board": "voice", "season": "Spring"})
    await run(BOB, "ud", {"period": "season"})
    await run(ADA, "settings set", {"time_zone": "Europe/Berlin", "mention_member": True})
    await run(BOB, "settings set", {"time_zone": "UTC"}, check_permissions=False)  # the refusal
    await run(ADA, "data-status")
    await run(ADA, "backup-data")
    for export in ("leaderboard", "invites", "joins", "channels"):
        await run(ADA, f"export {export}", {"period": "7d"} if export == "invites" else {})
    await run(ADA, "data erase", {"member": emu.user_id(FAY)})
    await run(ADA, "top", {"board": "messages"})  # after the erase

    run_names = {r.name for r in records}
    assert set(leaf_commands(h.bot.tree)) <= run_names, set(leaf_commands(h.bot.tree)) - run_names
    problems = [p for r in records for p in style_problems(r)]
    assert problems == [], "\n".join(problems)

    everything = "\n".join(r.text() for r in records)
    for shown in (  # the realistic cases were rendered, in the style's words
        f"<@{emu.user_id(FAY)}> (fay, left)", "fake: account 2 days old (threshold 7 days)",
        "fake: left after 20s (threshold 1m)", " - 48s", "Voice\n—", "No invites yet", "1 message",
        "nobody (the vanity URL)", "Account younger than: 3 days -> 7 days", "Your rank\nnot ranked yet",
        f"<@{emu.user_id(FAY)}> (left)", "You need the **Manage Server** permission to use `/settings set`.",
        # CY's activity was on the clock's first day, months before the joins' real times moved it on
        "No current streak (best 1 day)", "0 / 1 message (0%)\n0m / 1h voice (0%)",
    ):
        assert shown in everything, shown


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3599, 3600, 3660, 86399, 360000])
def test_durations_never_read_0h_00m_and_keep_their_unit(seconds: int) -> None:
    text = style.duration(seconds)
    assert not text.startswith("0") and re.fullmatch(r"\d+s|\d+m|[\d,]+h \d\dm", text), text
