"""/export through the emulator: real slash commands, the CSV attachment parsed back."""

from __future__ import annotations

import copy
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.operations.export import (
    CHANNELS_COLUMNS,
    INVITES_COLUMNS,
    JOINS_COLUMNS,
    LEADERBOARD_COLUMNS,
    read_id,
)
from cogs.export import MARGIN
from repositories.activity import ChannelCount, Credit
from scripts.emulator import payloads
from tests.botharness import GUILD, Harness

G, ADA, BOB, CY, EVIL = 1, 101, 102, 103, 104
EVIL_NAME = "=cmd|' /C calc'!A0"
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def guild_spec() -> dict[str, Any]:
    spec = copy.deepcopy(GUILD)
    for member in spec["members"]:
        member["joined"] = "2025-01-01T00:00:00Z"
    spec["members"].append({"id": EVIL, "name": EVIL_NAME, "created": "2022-03-01T00:00:00Z",
                            "joined": "2025-01-01T00:00:00Z"})
    return spec


def parse(emu: Any, rec: Any) -> tuple[str, list[list[str]]]:
    """The attachment's file name and rows (header first); the BOM checked and stripped."""
    (attachment,) = rec.attachments
    data = emu.attachment_bytes(attachment)
    assert data.startswith(BOM), data[:10]
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert data.count(b"\r\n") == len(rows), "one CRLF per row"
    return attachment["filename"], rows


async def seed_activity(h: Harness, member: int, day: str, messages: int, voice_s: int = 0) -> None:
    assert h.bot is not None
    repo, member_id = h.bot.repos.activity, h.emu.user_id(member)
    await repo.add_messages([Credit(G, member_id, day, {"messages": messages})], f"seed-m-{member}{day}")
    if voice_s:
        amounts = {"voice_s": voice_s, "cam_on_s": voice_s // 3, "cam_off_s": voice_s - voice_s // 3,
                   "stream_s": 0}
        await repo.add_voice([Credit(G, member_id, day, amounts)], f"seed-v-{member}{day}")
    h.bot.ranks.rebuild(G)  # written behind the trackers' back: read MongoDB again
    await h.bot.ranks.wait_ready(G)


def join_doc(member_id: int, name: str, joined: datetime, **extra: Any) -> dict[str, Any]:
    ms = int(joined.timestamp() * 1000)
    return {"_id": f"{G}:{member_id}:{ms}", "guild_id": G, "member_id": member_id, "member_name": name,
            "joined_at": joined, "joined_ms": ms, "source": "invite", "code": "abc", "inviter_id": None,
            "inviter_name": None, "counted": "first", "credit_to": 0, "fake_reason": "", "stay": "open",
            "left_ms": None, "member_status": "present", "reset_id": "", **extra}


async def test_leaderboard_export_keeps_64_bit_ids_and_defuses_formula_names(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    await seed_activity(h, BOB, "2026-03-10", 5, voice_s=5400)
    await seed_activity(h, BOB, "2026-02-20", 7)  # older than 7 days
    await seed_activity(h, EVIL, "2026-03-09", 2)
    assert h.bot is not None and h.bot.ranks.ready(G)

    rec = await emu.command(ADA, "export leaderboard", {"period": "all"})
    assert rec.ephemeral and rec.deferred
    name, rows = parse(emu, rec)
    assert name == "leaderboard-all-1-20260310.csv"
    assert tuple(rows[0]) == LEADERBOARD_COLUMNS
    bob, evil = rows[1:]
    bob_id = emu.user_id(BOB)
    assert bob_id > 2**53, "a real snowflake: more digits than a spreadsheet number keeps"
    assert bob[0] == f'="{bob_id}"' and read_id(bob[0]) == bob_id
    assert bob[1:] == ["bob", "12", "5400", "1.50", "1800", "3600", "0"]
    assert evil[1] == "'" + EVIL_NAME and read_id(evil[0]) == emu.user_id(EVIL)
    assert rec.text().startswith("2 rows (activity per member, all time).")

    week = parse(emu, await emu.command(ADA, "export leaderboard", {"period": "7d"}))[1]
    assert [(read_id(r[0]), r[2]) for r in week[1:]] == [(bob_id, "5"), (emu.user_id(EVIL), "2")]


async def test_invites_export_lists_figures_bonus_and_staff_codes(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    emu.join({"id": 201, "name": "dan", "created": "2024-01-01T00:00:00Z"}, via="bobs")
    await h.settle()
    await emu.command(ADA, "invites-admin bonus", {"member": ADA, "amount": 3})
    await emu.command(ADA, "invites-admin staff add", {"member": CY, "code": "abc"})
    await h.settle()

    rec = await emu.command(ADA, "export invites")
    name, rows = parse(emu, rec)
    assert name.startswith("invites-all-1-") and tuple(rows[0]) == INVITES_COLUMNS
    by_id = {read_id(r[0]): r[1:] for r in rows[1:]}
    assert by_id == {
        emu.user_id(ADA): ["ada", "0", "0", "0", "3", "3", ""],
        emu.user_id(BOB): ["bob", "1", "0", "0", "0", "1", ""],
        emu.user_id(CY): ["cy", "0", "0", "0", "0", "0", "abc"],
    }
    assert [read_id(r[0]) for r in rows[1:3]] == [emu.user_id(ADA), emu.user_id(BOB)], "best total first"


async def test_joins_export_one_row_per_join_with_the_period_filter(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    emu.join({"id": 201, "name": "dan", "created": "2024-01-01T00:00:00Z"}, via="bobs")
    await h.settle()
    dan = emu.user_id(201)
    old = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    await h.db.joins.insert_one(join_doc(2**62 + 7, "-old", old, member_status="left",
                                         left_ms=int((old + timedelta(days=1)).timestamp() * 1000)))
    recent = 2**62 + 8
    await h.db.joins.insert_one(join_doc(recent, "eve", datetime(2026, 3, 5, tzinfo=UTC), source="vanity",
                                         code="study", fake_reason="young_account"))

    rows = parse(emu, await emu.command(ADA, "export joins"))[1]
    assert tuple(rows[0]) == JOINS_COLUMNS
    first, second, live = rows[1:]  # oldest first
    assert second[2:5] == ["2026-03-05T00:00:00Z", "vanity", "study"] and second[8] == "young_account"
    assert first == ['="4611686018427387911"', "'-old", "2026-01-05T08:30:00Z", "invite", "abc", "", "",
                     "first", "", "2026-01-06T08:30:00Z", "left", ""]
    assert read_id(live[0]) == dan and live[1] == "dan" and live[2].endswith("Z")
    assert (live[3], live[4], read_id(live[5]), live[6]) == ("invite", "bobs", emu.user_id(BOB), "bob")
    assert (live[7], live[9], live[10]) == ("first", "", "present")

    # The bot's clock says 2026-03-10: 30 days reach back to 2026-02-09, past the old join.
    month = parse(emu, await emu.command(ADA, "export joins", {"period": "30d"}))[1]
    assert [read_id(r[0]) for r in month[1:]] == [recent] + ([dan] if live[2] >= "2026-02-09" else [])


async def test_channels_export_messages_per_channel_with_names_and_shares(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    gone = 2**62 + 5  # a deleted channel: its counts stay, without a name
    for _ in range(3):
        emu.message(BOB, 10)  # live, through the real group commit: today (2026-03-10)
    await h.settle()
    await h.bot.repos.activity.add_messages(
        [Credit(G, emu.user_id(CY), "2026-02-01", {"messages": 5})], 9_000,
        [ChannelCount(G, gone, "2026-02-01", 4), ChannelCount(G, 11, "2026-02-01", 1)])

    rec = await emu.command(ADA, "export channels")
    assert rec.ephemeral and rec.text().startswith("3 rows (messages per channel, all time).")
    name, rows = parse(emu, rec)
    assert name == "channels-all-1-20260310.csv" and tuple(rows[0]) == CHANNELS_COLUMNS
    assert rows[1:] == [[f'="{gone}"', "", "4", "50.0"], ['="10"', "general", "3", "37.5"],
                        ['="11"', "staff", "1", "12.5"]]
    week = parse(emu, await emu.command(ADA, "export channels", {"period": "7d"}))[1]
    assert week[1:] == [['="10"', "general", "3", "100.0"]]


async def test_a_member_without_manage_server_is_refused(tracker: Harness) -> None:
    emu = tracker.emu
    with pytest.raises(PermissionError):  # the client hides the command from members
        await emu.command(BOB, "export joins")
    rec = await emu.command(BOB, "export joins", check_permissions=False)  # an override re-granted it
    assert rec.ephemeral and not rec.attachments
    assert rec.text() == "You need the **Manage Server** permission to use `/export joins`."


async def test_a_file_over_the_upload_limit_is_cut_and_the_reply_says_so(
    tracker: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, emu = tracker, tracker.emu
    start = datetime(2026, 3, 1, tzinfo=UTC)
    await h.db.joins.insert_many([join_doc(2**60 + n, f"member {n}", start + timedelta(minutes=n))
                                  for n in range(60)])
    # The limit Discord sends with each interaction (`attachment_size_limit`): 2,000 bytes for the file.
    monkeypatch.setattr(payloads, "ATTACHMENT_SIZE_LIMIT", MARGIN + 2000)

    rec = await emu.command(ADA, "export joins")
    _, rows = parse(emu, rec)
    data = emu.attachment_bytes(rec.attachments[0])
    assert len(data) <= 2000 and 1 < len(rows) < 61
    assert [read_id(r[0]) for r in rows[1:]] == [2**60 + n for n in range(len(rows) - 1)], "whole rows"
    text = rec.text()
    assert text.startswith(f"**The file was cut**: it holds the first {len(rows) - 1} rows"), text
    assert "`python -m scripts.export_csv --guild 1 joins --period all`" in text
