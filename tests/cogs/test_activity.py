"""Activity tracking end to end: the real bot against the Discord emulator, with a ManualClock."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from app.storage.writes import execute
from app.wiring.clock import to_ms
from tests.botharness import Harness

ADA, BOB, CY = 101, 102, 103
GENERAL, STAFF = 10, 11
FOCUS, LOUNGE, AFK = 20, 21, 30
G = 1


def total(h: Harness, user: int) -> str:
    return f"t:{G}:{h.emu.user_id(user)}"


def day(h: Harness, user: int, date: str) -> str:
    return f"d:{G}:{h.emu.user_id(user)}:{date}"


async def counters(h: Harness, key: str) -> dict[str, int]:
    d = await h.db.activity.find_one({"_id": key}) or {}
    return {k: int(d.get(k, 0)) for k in ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")}


def voice(total: int, on: int = 0, stream: int = 0, messages: int = 0) -> dict[str, int]:
    return {"messages": messages, "voice_s": total, "cam_on_s": on, "cam_off_s": total - on,
            "stream_s": stream}


async def step(h: Harness, seconds: float) -> None:
    await h.settle()
    h.clock.advance(seconds)


async def test_voice_join_and_leave_credits_exact_seconds(tracker: Harness) -> None:
    emu = tracker.emu
    emu.voice(ADA, FOCUS)
    await tracker.settle()
    assert await tracker.db.voice_sessions.find_one({"_id": f"{G}:{emu.user_id(ADA)}"}) is not None
    session = await open_state(tracker, ADA)
    assert session is not None  # written the moment ADA joined
    assert (session["channel_id"], session["checkpoint"]) == (FOCUS, to_ms(tracker.clock.now()))
    assert not any(bool(session[f]) for f in ("camera", "stream", "afk", "deaf_excluded"))
    await step(tracker, 90)
    emu.voice(ADA, None)
    await tracker.settle()
    assert await counters(tracker, total(tracker, ADA)) == voice(90)
    assert await counters(tracker, day(tracker, ADA, "2026-03-10")) == voice(90)
    assert await tracker.db.voice_sessions.count_documents({}) == 0


async def open_state(h: Harness, member: int) -> dict[str, Any] | None:
    """The member's open session as stored: `voice_open` of their all-time document."""
    doc = await h.db.activity.find_one({"_id": total(h, member)}) or {}
    return doc.get("voice_open")


def activity_cog(h: Harness) -> Any:
    assert h.bot is not None
    return h.bot.get_cog("Activity")


async def test_scripted_mix_in_a_non_utc_zone_gives_exact_seconds(tracker: Harness) -> None:
    """Joins, moves, camera/stream toggles, AFK, excluded self-deafen, and local midnight (23:00 UTC)."""
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    await h.bot.repos.guild_settings.set_fields(
        G, time_zone="Europe/Berlin", count_self_deafened=False, ignored_channels=frozenset({STAFF})
    )
    h.clock.set(datetime(2026, 3, 10, 22, 40, tzinfo=UTC))  # 23:40 in Berlin
    emu.voice(ADA, FOCUS)
    await step(h, 60)
    emu.message(ADA, GENERAL)
    emu.message(ADA, STAFF)  # ignored channel
    await step(h, 240)  # 22:45
    emu.voice(ADA, FOCUS, camera=True)
    await step(h, 120)  # 22:47
    emu.voice(ADA, FOCUS, camera=True, stream=True)
    await step(h, 180)  # 22:50
    emu.voice(ADA, AFK)
    emu.voice(BOB, LOUNGE, self_deaf=True)
    await step(h, 240)  # 22:54
    emu.voice(ADA, LOUNGE)
    emu.voice(BOB, LOUNGE)
    await step(h, 600)  # 23:04, i.e. 00:04 on 2026-03-11 in Berlin
    emu.voice(ADA, LOUNGE, camera=True)
    emu.voice(BOB, FOCUS, stream=True)
    await step(h, 60)  # 23:05
    emu.message(CY, GENERAL)
    await step(h, 300)  # 23:10
    emu.voice(ADA, None)
    emu.voice(BOB, None)
    await h.settle()

    assert await counters(h, day(h, ADA, "2026-03-10")) == voice(960, on=300, stream=180, messages=1)
    assert await counters(h, day(h, ADA, "2026-03-11")) == voice(600, on=360)
    assert await counters(h, total(h, ADA)) == voice(1560, on=660, stream=180, messages=1)
    assert await counters(h, day(h, BOB, "2026-03-10")) == voice(360)
    assert await counters(h, day(h, BOB, "2026-03-11")) == voice(600, stream=360)
    assert await counters(h, total(h, BOB)) == voice(960, stream=360)
    assert await counters(h, day(h, CY, "2026-03-11")) == voice(0, messages=1)
    assert await counters(h, total(h, CY)) == voice(0, messages=1)
    assert await h.db.voice_sessions.count_documents({}) == 0
    await assert_days_sum_to_totals(h)


async def assert_days_sum_to_totals(h: Harness) -> None:
    sums: dict[str, dict[str, int]] = {}
    totals: dict[str, dict[str, int]] = {}
    async for d in h.db.activity.find({"kind": {"$in": ["total", "day"]}}):  # not channel marks
        member_key = f"{d['guild_id']}:{d['member_id']}"
        values = {k: int(d.get(k, 0)) for k in ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")}
        if d["kind"] == "total":
            totals[member_key] = values
        else:
            target = sums.setdefault(member_key, dict.fromkeys(values, 0))
            for k, v in values.items():
                target[k] += v
    assert totals and sums == totals


async def test_bots_and_dms_are_not_counted_and_no_content_intent(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    assert not h.bot.intents.message_content
    emu.message(BOB, GENERAL)
    emu.message(BOB, GENERAL)
    await h.settle()
    rec = await emu.command(BOB, "ud")  # the bot's own answer is echoed as a bot message
    assert rec.embed is not None
    await h.settle()
    assert await counters(h, total(h, BOB)) == voice(0, messages=2)
    assert await h.db.activity.count_documents({"member_id": emu.bot_id}) == 0


async def test_webhook_and_system_messages_are_not_counted(tracker: Harness) -> None:
    """Real MESSAGE_CREATE payloads fed to the bot's connection state, as the gateway would."""
    h, emu = tracker, tracker.emu
    assert h.bot is not None
    real = emu.message(BOB, GENERAL)
    await h.settle()
    state = h.bot._connection
    state.parse_message_create({**real, "id": str(int(real["id"]) + 1), "webhook_id": "555"})
    state.parse_message_create({**real, "id": str(int(real["id"]) + 2), "type": 7})  # member joined
    state.parse_message_create({**real, "id": str(int(real["id"]) + 3)})  # an ordinary one
    await h.settle()
    assert await counters(h, total(h, BOB)) == voice(0, messages=2)


async def test_messages_are_group_committed_and_counted_once(tracker: Harness) -> None:
    """Events arriving while a write is in flight go into the next write: fewer writes than messages."""
    h, emu = tracker, tracker.emu
    writer = activity_cog(h).messages
    before = writer.writes
    for i in range(300):
        emu.message((ADA, BOB, CY)[i % 3], GENERAL)
    await h.settle()
    for user in (ADA, BOB, CY):
        assert await counters(h, total(h, user)) == voice(0, messages=100)
        assert await counters(h, day(h, user, "2026-03-10")) == voice(0, messages=100)
    assert 1 <= writer.writes - before < 300


async def test_flush_twice_at_the_same_instant_credits_once(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    cog = activity_cog(h)
    emu.voice(ADA, FOCUS, camera=True)
    emu.voice(BOB, AFK)
    await step(h, 100)
    first = await cog.flush_voice()
    second = await cog.flush_voice()
    assert (first.sessions, second.sessions) == (1, 0)  # BOB is in the AFK channel: nothing to credit
    assert await counters(h, total(h, ADA)) == voice(100, on=100)
    session = await open_state(h, ADA)
    assert session["checkpoint"] == to_ms(h.clock.now())
    h.clock.advance(50)
    await cog.flush_voice()
    emu.voice(ADA, None)
    emu.voice(BOB, None)
    await h.settle()
    assert await counters(h, total(h, ADA)) == voice(150, on=150)
    assert await counters(h, total(h, BOB)) == voice(0)


async def test_flush_job_is_scheduled_every_voice_flush_seconds(make_tracker: Any) -> None:
    h = await make_tracker(voice_flush_seconds=45)
    assert h.bot is not None and h.bot.scheduler is not None
    job = h.bot.scheduler.get_job("voice-flush")
    assert job is not None and job.trigger.interval.total_seconds() == 45
    assert (job.max_instances, job.coalesce) == (1, True)
    assert job.func.__wrapped__ == activity_cog(h).flush_voice  # inside the shutdown-aware wrapper


async def test_flush_logs_count_and_duration(tracker: Harness, caplog: Any) -> None:
    tracker.emu.voice(ADA, FOCUS)
    tracker.emu.voice(BOB, FOCUS)
    await step(tracker, 10)
    caplog.set_level("INFO", logger="app.tracking.voice_tracker")
    await activity_cog(tracker).flush_voice()
    assert any("voice flush: 2 session(s) credited in" in r.getMessage() for r in caplog.records)


async def test_graceful_restart_loses_no_second(tracker: Harness) -> None:
    """SIGTERM path: open sessions are credited up to the stop instant before the bot exits."""
    h, emu = tracker, tracker.emu
    emu.voice(ADA, FOCUS, camera=True)
    await step(h, 75)
    seen: dict[str, Any] = {}

    async def while_stopped() -> None:
        seen["ada"] = await counters(h, total(h, ADA))
        h.clock.advance(30)  # the redeploy takes 30 s; ADA stays in voice

    await h.restart(between=while_stopped)
    assert seen["ada"] == voice(75, on=75)  # written by the shutdown flush, before any restart
    await step(h, 20)
    emu.voice(ADA, None)
    await h.settle()
    assert await counters(h, total(h, ADA)) == voice(125, on=125)


async def test_crash_then_restart_with_member_in_voice_credits_downtime_up_to_the_cap(
    make_tracker: Any,
) -> None:
    h = await make_tracker(voice_downtime_cap_seconds=600)
    emu = h.emu
    emu.voice(ADA, FOCUS)
    emu.voice(BOB, LOUNGE, stream=True)
    await step(h, 120)
    await activity_cog(h).flush_voice()  # the last checkpoint before the crash
    await step(h, 50)  # lost: not flushed

    async def down_for_a_while() -> None:
        h.clock.advance(250)  # BOB's downtime: 300 s since the checkpoint, under the cap

    await h.restart(crash=True, between=down_for_a_while)
    await step(h, 10)
    emu.voice(BOB, None)
    await h.settle()
    assert await counters(h, total(h, BOB)) == voice(120 + 300 + 10, stream=430)

    await step(h, 0)

    async def down_long() -> None:
        h.clock.advance(3000)

    await h.restart(crash=True, between=down_long)
    h.clock.advance(5)
    emu.voice(ADA, None)
    await h.settle()
    # ADA: 120 flushed, 300 credited at the first restart (capped at 600, under), 10 in the second
    # run, then a crash: the 10 s were not flushed, so the downtime since the checkpoint (3010 s)
    # is capped at 600, plus 5 s after the restart.
    assert await counters(h, total(h, ADA)) == voice(120 + 300 + 600 + 5)


async def test_crash_then_restart_with_member_gone_closes_at_the_checkpoint(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    emu.voice(ADA, FOCUS, camera=True)
    await step(h, 120)
    await activity_cog(h).flush_voice()
    await step(h, 40)  # after the checkpoint: lost in the crash, since ADA left while we were down

    async def ada_leaves() -> None:
        h.clock.advance(100)
        emu.voice(ADA, None)
        emu.voice(CY, LOUNGE)  # joined while we were down: a session opens at start

    await h.restart(crash=True, between=ada_leaves)
    assert await counters(h, total(h, ADA)) == voice(120, on=120)
    assert await h.db.voice_sessions.find_one({"_id": f"{G}:{emu.user_id(ADA)}"}) is None
    assert await open_state(h, ADA) is None
    cy = await open_state(h, CY)
    assert cy is not None and cy["checkpoint"] == to_ms(h.clock.now())
    await step(h, 33)
    emu.voice(CY, None)
    await h.settle()
    assert await counters(h, total(h, CY)) == voice(33)


async def test_day_credits_left_behind_by_a_crash_are_applied_once_on_start(tracker: Harness) -> None:
    """Crash after the one write that credited the total and moved the checkpoint, before the day
    document: the start applies the day credit recorded in the total (`voice_last`), once."""
    h, emu = tracker, tracker.emu
    emu.voice(ADA, FOCUS)
    await step(h, 60)
    cog = activity_cog(h)
    writer = cog.voice.repo.writer
    original = writer.submit
    calls = {"n": 0}

    async def crash_after_the_total(writes: Any, what: str) -> None:
        calls["n"] += 1
        await execute(writer.db, list(writes)[:1], writer.policy, what)
        raise ConnectionError("process killed")

    writer.submit = crash_after_the_total
    with contextlib.suppress(ConnectionError):
        await cog.voice.flush()
    writer.submit = original
    assert calls["n"] == 1
    assert (await open_state(h, ADA))["checkpoint"] == to_ms(h.clock.now())
    assert await counters(h, total(h, ADA)) == voice(60)
    assert await counters(h, day(h, ADA, "2026-03-10")) == voice(0)
    await h.restart(crash=True)  # no time passes: only the day credit left behind is applied
    assert await counters(h, day(h, ADA, "2026-03-10")) == voice(60)
    await h.restart(crash=True)
    emu.voice(ADA, None)
    await h.settle()
    assert await counters(h, total(h, ADA)) == voice(60)
    assert await counters(h, day(h, ADA, "2026-03-10")) == voice(60)
    assert await h.db.voice_sessions.count_documents({}) == 0


async def test_removed_guild_is_credited_up_to_then_and_no_longer_flushed(tracker: Harness) -> None:
    h, emu = tracker, tracker.emu
    emu.voice(ADA, FOCUS)
    await step(h, 40)
    emu.remove_guild(G)
    await h.settle()
    assert await counters(h, total(h, ADA)) == voice(40)
    h.clock.advance(100)
    assert (await activity_cog(h).flush_voice()).sessions == 0
    assert await counters(h, total(h, ADA)) == voice(40)
    assert await h.db.voice_sessions.count_documents({}) == 1  # kept for when the guild is back


async def test_a_member_who_left_voice_in_a_guild_outage_is_closed_at_the_outage(tracker: Harness) -> None:
    """Found by the fault campaign (seed 23): discord.py keeps a guild's cached voice states when
    the guild comes back (GUILD_CREATE only adds the states it carries), so a member who left voice
    during the outage still looked in voice, and was credited the outage and the time after it
    until their next voice change."""
    h, emu = tracker, tracker.emu
    emu.voice(ADA, FOCUS)
    await step(h, 40)
    emu.guild_unavailable(G)
    await h.settle()
    h.clock.advance(30)
    emu.voice(ADA, None)  # Discord sends nothing for a guild in an outage
    h.clock.advance(10)
    emu.guild_available(G)
    await h.settle()
    guild = h.bot.get_guild(G)
    assert guild is not None and guild.get_member(emu.user_id(ADA)).voice is None
    await step(h, 50)
    await activity_cog(h).flush_voice()
    assert await counters(h, total(h, ADA)) == voice(40)
    assert await open_state(h, ADA) is None


async def test_reconciliation_is_retried_until_the_database_answers(tracker: Harness) -> None:
    h = tracker
    assert h.bot is not None
    cog = activity_cog(h)
    guild = h.bot.get_guild(G)
    h.emu.voice(ADA, FOCUS)  # the bot's cache sees it; the tracker is asked below
    await h.settle()
    await cog.voice.suspend(G)
    real, failures = cog.voice.reconcile, []

    async def flaky(guild_id: int, live: Any) -> None:
        if not failures:
            failures.append(1)
            raise ConnectionError("database unreachable")
        await real(guild_id, live)

    cog.voice.reconcile = flaky
    await cog.reconcile(guild)
    assert failures == [1] and cog.voice.is_ready(G)
    assert f"{G}:{h.emu.user_id(ADA)}" in cog.voice.open_sessions()
