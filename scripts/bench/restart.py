"""Restart: a new bot finds N open sessions and the invite snapshot stored, N members in voice.

Timed from the moment the guild is available (its GUILD_CREATE message received as the bot's
gateway socket receives it: decoded, parsed in steps; time and stall reported apart) until
the ActivityCog's voice reconciliation (`VoiceTracker.reconcile`, crediting the downtime) and the
invite tracker's startup sync (`app/tracking/invites.py`, live invites from a stubbed
`GET /guilds/{id}/invites` answering the same invites) are both done, run concurrently as on
`on_guild_available`. Baseline: reading the same session and invite documents raw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.tracking.invites import InviteTracker
from app.wiring.clock import to_ms
from cogs.invite_tracker import make_invite_tracker
from scripts.bench.checks import activity_counts
from scripts.bench.env import VOICE_GUILD, Bench, acknowledged, activity_cog
from scripts.bench.flush import checkpoints_at
from scripts.bench.measure import Check, Row, ms, sec, stall_row, timed, watch_loop
from scripts.bench.world import stub_invite_fetch

log = logging.getLogger(__name__)
TARGET = 3.0


async def store_invites(bench: Bench, invites: list[dict[str, Any]]) -> None:
    """The running bot's first sync stores the invite snapshot."""
    stub_invite_fetch(bench.bot, invites)
    tracker = make_invite_tracker(bench.bot, bench.bot.repos)
    assert bench.bot.get_guild(VOICE_GUILD) is not None
    tracker.guild_available(VOICE_GUILD)
    await tracker.wait_idle()
    await tracker.close()


async def start(cog: Any, tracker: InviteTracker, guild: Any) -> None:
    tracker.guild_available(guild.id)
    await asyncio.gather(cog.reconcile(guild), tracker.wait_idle())


async def read_sessions_raw(db: Any) -> int:
    """The documents that hold the open sessions: the directory entries, then the members' all-time
    documents by `_id` (where the session state lives since issue 16)."""
    entries = await db.voice_sessions.find({"guild_id": VOICE_GUILD}).to_list(None)
    keys = [f"t:{VOICE_GUILD}:{e['member_id']}" for e in entries]
    totals = await db.activity.find({"_id": {"$in": keys}}).to_list(None)
    return len(entries) + len(totals)


async def read_raw(db: Any) -> int:
    sessions, invites = await asyncio.gather(
        read_sessions_raw(db),
        db.invites.find({"guild_id": VOICE_GUILD}).to_list(None),
    )
    return sessions + len(invites)


async def run(bench: Bench) -> tuple[list[Row], list[Check]]:
    s, db = bench.sizes, bench.db
    invites = bench.world.invite_payloads(VOICE_GUILD)
    await store_invites(bench, invites)
    before = await activity_counts(db, VOICE_GUILD, "total", "voice_s")
    await bench.bot.lease.release()  # the SIGTERMed process hands over at once
    bench.clock.advance(s.downtime_seconds)  # the bot was down this long

    bot = bench.new_bot()
    await bench.start_writer(bot)
    message = bench.world.guild_create_message(VOICE_GUILD)
    async with watch_loop() as parse_watch:
        parse_started = time.perf_counter()
        guild = await bench.world.receive(bot, VOICE_GUILD, message)
        parse_s = time.perf_counter() - parse_started
    del message
    stub_invite_fetch(bot, invites)
    cog, tracker = activity_cog(bot), make_invite_tracker(bot, bot.repos)
    log.info("restart: reconcile %d sessions + invite sync of %d invites", s.voice_members, len(invites))
    ready: dict[str, float] = {}

    async def ready_then_acknowledged() -> None:
        began = time.perf_counter()
        await start(cog, tracker, guild)  # voice events handled from here; writes durable (outbox)
        ready["seconds"] = time.perf_counter() - began

    async with watch_loop() as watch:
        start_s, _ = await timed(lambda: acknowledged(bot, ready_then_acknowledged()))
    await tracker.close()
    log.info("restart baseline: read the same documents raw")
    raw_s, read = await timed(lambda: read_raw(db))

    ratio = start_s / raw_s
    info = {"start_seconds": start_s, "raw_seconds": raw_s, "documents_read_raw": read,
            "guild_create_parse_seconds": parse_s, "guild_create_parse_stall_s": parse_watch.longest_stall,
            "stall_s": watch.longest_stall,
            "ready_seconds": ready["seconds"]}
    rows = [Row("restart", f"{s.voice_members:,} sessions + {len(invites):,} invites: ready and reconciled",
                sec(start_s), sec(raw_s), ratio, f"<= {TARGET:g}x", ratio <= TARGET, info),
            Row("restart", "ready: reconciled, every write acknowledged or durable in the outbox",
                sec(ready["seconds"]), sec(raw_s), ready["seconds"] / raw_s, values=info),
            stall_row("restart", watch.longest_stall, "longest event-loop stall, reconciling"),
            stall_row("restart", parse_watch.longest_stall,
                      f"longest event-loop stall, GUILD_CREATE received ({ms(parse_s)} in all)")]
    return rows, await restart_checks(bench, cog, before, invites)


async def restart_checks(bench: Bench, cog: Any, before: dict[int, int],
                         invites: list[dict[str, Any]]) -> list[Check]:
    s, db = bench.sizes, bench.db
    after = await activity_counts(db, VOICE_GUILD, "total", "voice_s")
    wrong = [m for m in set(before) | set(after) if after.get(m, 0) != before.get(m, 0) + s.downtime_seconds]
    now = to_ms(bench.clock.now())
    at_now = await checkpoints_at(db, now)
    live = db.invites.find({"guild_id": VOICE_GUILD, "status": "live"})
    stored = {d["code"]: int(d["uses"]) async for d in live}
    sent = {i["code"]: int(i["uses"]) for i in invites}
    state = await db.invite_guilds.find_one({"_id": VOICE_GUILD}) or {}
    joins = await db.joins.count_documents({"guild_id": VOICE_GUILD})
    return [
        Check("restart: voice ready", cog.voice.is_ready(VOICE_GUILD)),
        Check("restart: downtime credited", not wrong and len(after) == s.voice_members,
              f"{len(after) - len(wrong)} of {s.voice_members} members +{s.downtime_seconds} s exactly"),
        Check("restart: sessions continue", at_now == s.voice_members, f"{at_now} at the new checkpoint"),
        Check("restart: invite snapshot", stored == sent and state.get("snapshot_ms") == now,
              f"{len(stored)} live invites stored, {len(sent)} live, snapshot at now: "
              f"{state.get('snapshot_ms') == now}"),
        Check("restart: no join invented", joins == 0, f"{joins} join documents"),
    ]
