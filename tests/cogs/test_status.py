"""/data-status, commands while MongoDB is away, and the outbox alarm."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pymongo.common
import pytest

from app.storage.database import make_client
from scripts.faultproxy import FaultProxy
from tests.botharness import Harness

ADA, BOB = 101, 102


def fields(record: Any) -> dict[str, str]:
    return {f["name"]: f["value"] for f in record.embed["fields"]}


async def test_data_status_reports_persistence(tracker: Harness) -> None:
    tracker.emu.voice(ADA, 20)
    await tracker.settle()
    assert tracker.bot is not None
    tracker.clock.advance(30)
    await tracker.bot.get_cog("Activity").flush_voice()
    record = await tracker.emu.command(ADA, "data-status")
    assert record.ephemeral
    shown = fields(record)
    assert re.fullmatch(r"a test write was read back <t:\d+:R>", shown["Startup check"])
    assert shown["Database"] == "answering"
    assert shown["Counting"] == "Active: this bot counts this server's activity and invites"
    assert shown["Open voice sessions"] == "1"
    assert re.fullmatch(r"<t:\d+:R>", shown["Voice time last saved"])
    assert shown["Messages from history"].startswith("backfilled: ")
    assert re.fullmatch(r"<t:\d+:R>", shown["Invite snapshot"])
    assert record.embed["description"] == "**All saved:** the database answers and nothing is waiting."
    assert record.embed["footer"]["text"].startswith("version ")


async def test_data_status_is_refused_to_members_without_manage_server(tracker: Harness) -> None:
    with pytest.raises(PermissionError):
        await tracker.emu.command(BOB, "data-status")
    record = await tracker.emu.command(BOB, "data-status", check_permissions=False)
    assert "Manage Server" in record.content


@pytest.fixture
async def proxied(fault_proxy: FaultProxy, make_tracker: Any, monkeypatch) -> Any:
    monkeypatch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.05)
    harness: Harness = await make_tracker(start=False, write_retry_max_seconds=0.5, write_retry_attempts=2,
                                          outbox_alarm_entries=1)
    client = make_client(fault_proxy.uri)
    harness.db = client[harness.db.name]
    await harness.start()
    yield harness
    if harness.bot is not None:
        await harness.stop()  # before its database client closes
    await client.close()


async def test_commands_during_an_outage_answer_at_once_and_data_status_still_works(
    proxied: Harness, fault_proxy: FaultProxy, caplog
) -> None:
    emu = proxied.emu
    fault_proxy.plan.refuse = True
    fault_proxy.cut_all()
    emu.message(BOB, 10)
    await proxied.settle(timeout=30)
    emu.message(BOB, 11)
    await proxied.settle(timeout=30)
    assert proxied.bot is not None and proxied.bot.outbox.depth == 2  # two writes, kept in order

    started = asyncio.get_running_loop().time()
    record = await emu.command(BOB, "ud", {})
    assert asyncio.get_running_loop().time() - started < 3.0  # Discord's deadline for an answer
    assert record.ephemeral
    assert record.content.startswith("Stats are temporarily unavailable")
    assert f"{proxied.bot.outbox.depth} events are waiting to be saved" in record.content

    status_record = await emu.command(ADA, "data-status")
    status = fields(status_record)
    assert status["Database"] == "not answering"
    verdict = status_record.embed["description"]  # in words: the outbox is the whole bot's
    assert verdict.startswith("**Not saving now:** the database is not answering; what the bot counts "
                              "waits in its local outbox")
    assert "2" not in verdict
    assert status["Invite snapshot"].startswith("unavailable")

    with caplog.at_level(logging.ERROR):
        await proxied.bot.watch_outbox()  # the every-minute job; 2 writes are over OUTBOX_ALARM_ENTRIES=1
    alarms = [r for r in caplog.records if "ALARM: the outbox holds 2 writes" in r.getMessage()]
    assert len(alarms) == 1

    fault_proxy.heal()
    await proxied.bot.writer.wait_drained(60)
    await proxied.bot.watch_outbox()
    status_doc = await proxied.bot.db.lifecycle.find_one({"_id": "status"})
    assert status_doc["outbox_depth"] == 0 and status_doc["oldest_waiting_ms"] is None
    record = await emu.command(BOB, "ud", {})
    assert record.embed is not None
    assert {f["name"]: f["value"] for f in record.embed["fields"]}["Messages"] == "2"


OTHER = {
    "id": 2,
    "name": "Other",
    "channels": [{"id": 40, "type": "text", "name": "hall"}, {"id": 41, "type": "voice", "name": "Den"}],
    "members": [{"id": 111, "name": "zed", "created": "2020-01-01T00:00:00Z", "admin": True},
                {"id": 112, "name": "yu", "created": "2020-01-01T00:00:00Z"}],
    "invites": [],
}


async def test_data_status_shows_a_guild_only_its_own_figures_and_never_the_host(tracker: Harness) -> None:
    emu = tracker.emu
    emu.add_guild(OTHER)
    await tracker.settle()
    emu.voice(111, 41)
    emu.voice(112, 41)
    emu.voice(ADA, 20)
    await tracker.settle()
    ours = await emu.command(ADA, "data-status", guild=1)
    theirs = await emu.command(111, "data-status", guild=2)
    assert fields(ours)["Open voice sessions"] == "1"
    assert fields(theirs)["Open voice sessions"] == "2"
    for record in (ours, theirs):
        text = record.text()
        assert "test-db" not in text and "MongoDB at" not in text  # the host is the operator's
        assert " ms" not in text  # round trips are bot-wide figures: /metrics has them
        assert fields(record)["Counting"].startswith("Active")
