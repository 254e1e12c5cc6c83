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
    assert shown["Startup probe"].startswith("write read back in ")
    assert shown["Database now"].startswith("answers in ")
    assert shown["Server"] == "external MongoDB at test-db"
    assert shown["Outbox"] == "empty: everything is in MongoDB"
    assert shown["Open voice sessions"] == "1"
    assert "1 session in" in shown["Last voice flush"]
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
    assert status["Database now"] == "NOT answering"
    assert "writes waiting" in status["Outbox"]
    verdict = status_record.embed["description"]
    assert verdict.startswith("**Not saving now:** the database is not answering; 2 writes waiting")
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
