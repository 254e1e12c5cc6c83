"""Flush: `VoiceTracker.flush()` over N open voice sessions vs one raw bulk_write of N updates.

The sessions are opened by the real path: the ActivityCog reconciles a guild (discord.py objects
from GUILD_CREATE) in which N members sit in a voice channel, which writes one session document
each. The clock then moves on `downtime_seconds` and the flush credits that much to every member.
A ticker task sleeping 1 ms measures the longest event-loop stall during each.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import UpdateOne

from app.wiring.clock import to_ms
from repositories.activity import total_key
from scripts.bench.env import VOICE_GUILD, Bench, acknowledged, activity_cog
from scripts.bench.measure import STALL_TARGET, Check, Row, mib, ms, sec, timed, watch_loop
from scripts.bench.world import member_id

log = logging.getLogger(__name__)
TIME_TARGET = 1.5


async def open_sessions(bench: Bench) -> tuple[Any, float]:
    """The voice guild, loaded into the bot, reconciled: every member in voice gets a session."""
    s = bench.sizes
    bench.world.add(bench.world.guild_spec(VOICE_GUILD, s.voice_members, in_voice=s.voice_members,
                                           invites=s.invites))
    guild = bench.world.attach(bench.bot, VOICE_GUILD)
    cog = activity_cog(bench.bot)
    seconds, _ = await timed(lambda: acknowledged(bench.bot, cog.reconcile(guild)))
    return cog, seconds


async def raw_flush(collection: Any, members: int, seconds: int) -> None:
    ops = [UpdateOne({"_id": total_key(VOICE_GUILD, member_id(i))},
                     {"$inc": {"voice_s": seconds, "cam_off_s": seconds}}, upsert=True)
           for i in range(members)]
    await collection.bulk_write(ops, ordered=False)


async def run(bench: Bench) -> tuple[list[Row], list[Check]]:
    s = bench.sizes
    log.info("flush: opening %d voice sessions", s.voice_members)
    cog, open_s = await open_sessions(bench)
    bench.clock.advance(s.downtime_seconds)
    log.info("flush: VoiceTracker.flush() over %d open sessions", s.voice_members)
    async with watch_loop() as watch:
        flush_s, result = await timed(lambda: acknowledged(bench.bot, cog.voice.flush()))
    raw = await bench.raw_collection("bench_flush_raw")
    log.info("flush baseline: one bulk_write of %d updates", s.voice_members)
    async with watch_loop() as raw_watch:
        raw_s, _ = await timed(lambda: raw_flush(raw, s.voice_members, s.downtime_seconds))

    ratio = flush_s / raw_s
    info = {"sessions": result.sessions, "flush_seconds": flush_s, "raw_seconds": raw_s,
            "open_sessions_seconds": open_s, "stall_s": watch.longest_stall,
            "raw_stall_s": raw_watch.longest_stall}
    rows = [
        Row("flush", f"{s.voice_members:,} open sessions: time", sec(flush_s), sec(raw_s), ratio,
            f"<= {TIME_TARGET}x", ratio <= TIME_TARGET, info),
        Row("flush", "longest event-loop stall", ms(watch.longest_stall), ms(raw_watch.longest_stall), None,
            f"<= {STALL_TARGET * 1000:.0f} ms", watch.longest_stall <= STALL_TARGET, info),
        Row("memory", "peak RSS during flush", mib(watch.peak_rss), values={"bytes": watch.peak_rss}),
    ]
    return rows, await flush_checks(bench, result.sessions, raw)


async def checkpoints_at(db: Any, now: int) -> int:
    """Open sessions (their all-time documents' `voice_open`) whose checkpoint is `now`."""
    moved = 0
    async for doc in db.activity.find({"guild_id": VOICE_GUILD, "kind": "total"}, {"voice_open": 1}):
        moved += int((doc.get("voice_open") or {}).get("checkpoint") == now)
    return moved


async def flush_checks(bench: Bench, credited: int, raw: Any) -> list[Check]:
    s, db = bench.sizes, bench.db
    n, secs = s.voice_members, s.downtime_seconds
    exact = {"guild_id": VOICE_GUILD, "kind": "total", "voice_s": secs, "cam_off_s": secs, "cam_on_s": 0}
    totals = await db.activity.count_documents(exact)
    day_sum = 0
    async for doc in db.activity.find({"guild_id": VOICE_GUILD, "kind": "day"}, {"voice_s": 1}):
        day_sum += int(doc["voice_s"])
    now = to_ms(bench.clock.now())
    moved = await checkpoints_at(db, now)
    pending = await db.voice_sessions.count_documents({"checkpoint": {"$exists": True}})
    raw_exact = await raw.count_documents({"voice_s": secs, "cam_off_s": secs})
    return [
        Check("flush: sessions credited", credited == n, f"{credited} of {n}"),
        Check("flush: member totals", totals == n, f"{totals} of {n} totals hold exactly {secs} s"),
        Check("flush: day documents", day_sum == n * secs, f"{day_sum} s in day documents, {n * secs} sent"),
        Check("flush: checkpoints moved", moved == n and pending == 0,
              f"{moved} of {n} sessions at now, {pending} entries in the shape before left"),
        Check("flush baseline", raw_exact == n, f"{raw_exact} of {n} documents exact"),
    ]
