"""Every inspection script in scripts/mongosh, run with the pinned mongosh (npm) against the test
server, on documents written by the real repositories; the output is checked line by line.

mongosh missing is a failure, not a skip: `npm install --no-audit --no-fund` installs it.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.storage.writes import Write
from app.tracking.voice import VoiceFlags
from app.wiring.clock import to_ms
from app.wiring.container import Repositories
from repositories.activity import ChannelCount, Credit, VoiceTotal, voice_updates
from repositories.invites import StoredInvite
from repositories.joins import FIRST, REJOIN, Attribution, JoinRecord, join_key
from repositories.voice_sessions import SessionWrite, VoiceSession, entry_upsert, session_key

ROOT = Path(__file__).resolve().parents[2]
MONGOSH = ROOT / "node_modules" / ".bin" / "mongosh"
G = 1
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOW_MS = to_ms(NOW)
BIG = 900719925474099301  # above 2**53: a JS double would print 900719925474099300
ADA, BOB, CY, DEE = 101, 102, 103, 104
CREATED = datetime(2020, 1, 1, tzinfo=UTC)


def run(uri: str, script: str, **env: str | int) -> subprocess.CompletedProcess[str]:
    assert MONGOSH.exists(), "mongosh is missing: run `npm install --no-audit --no-fund` in the project root"
    full_env = {**os.environ, "NOW_MS": str(NOW_MS), **{k: str(v) for k, v in env.items()}}
    return subprocess.run(
        [str(MONGOSH), uri, "--quiet", str(ROOT / "scripts" / "mongosh" / script)],
        env=full_env, capture_output=True, text=True, timeout=120, check=False,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()


@pytest.fixture
def uri(mongo_uri: str, db) -> str:
    base, _, query = mongo_uri.partition("?")
    return f"{base.rstrip('/')}/{db.name}" + (f"?{query}" if query else "")


@pytest.fixture
def repos(db, policy) -> Repositories:
    return Repositories.create(db, policy)


def day(offset: int) -> str:
    return (NOW + timedelta(days=offset)).date().isoformat()


def credit(member: int, offset: int, **amounts: int) -> Credit:
    return Credit(G, member, day(offset), amounts)


async def seed_activity(repos: Repositories) -> None:
    await repos.activity.add_messages(
        [credit(ADA, 0, messages=5), credit(ADA, -10, messages=20), credit(BOB, -1, messages=7),
         credit(BIG, 0, messages=3)], "m1")
    await repos.activity.add_voice(
        [credit(ADA, 0, voice_s=3600, cam_on_s=1800, cam_off_s=1800),
         credit(BOB, -2, voice_s=7200, cam_off_s=7200, stream_s=600),
         credit(BIG, -20, voice_s=90000, cam_off_s=90000)], "v1")


def join_record(member: int, name: str, minutes: int, attribution: Attribution, counted: str = FIRST,
                fake: str = "") -> JoinRecord:
    at = NOW - timedelta(days=3) + timedelta(minutes=minutes)
    return JoinRecord(G, member, name, at, CREATED, attribution, counted, fake, at)


async def seed_joins(repos: Repositories) -> None:
    by_ada = Attribution("invite", "abc", ADA, "ada")
    await repos.joins.record(join_record(BOB, "bob", 0, by_ada))
    await repos.joins.record(join_record(CY, "cy", 5, Attribution("vanity", "study")))
    await repos.joins.record(join_record(BIG, "big", 10, by_ada))
    await repos.joins.record(join_record(DEE, "dee", 15, Attribution("invite", "bobs", BOB, "bob"),
                                         fake="young_account"))
    await repos.joins.left(G, CY, NOW - timedelta(days=1))
    # cy comes back through ada's code: a rejoin, not counted again
    await repos.joins.record(join_record(CY, "cy", 60 * 24, by_ada, counted=REJOIN))
    await repos.staff_codes.assign(G, ADA, "ada", "abc", ADA, NOW - timedelta(days=5))
    await repos.staff_codes.assign(G, BOB, "bob", "bobs", ADA, NOW - timedelta(days=4))
    await repos.staff_codes.assign(G, CY, "cy", "cyc", ADA, NOW - timedelta(days=3))
    for member in (BOB, BIG):
        key = join_key(G, member, NOW - timedelta(days=3) + timedelta(minutes=0 if member == BOB else 10))
        assert await repos.joins.mark_converted(key, ADA, NOW)
    await repos.invites.store(G, [StoredInvite("abc", 3, 0, ADA, "ada", 10, CREATED, None)], NOW)


async def test_member_totals_and_days(repos: Repositories, uri: str) -> None:
    await seed_activity(repos)
    out = lines(run(uri, "member.js", GUILD=G, MEMBER=ADA, DAYS=30))
    assert out == [
        "member 101 in guild 1: messages 25, voice 1h 00m, camera on 0h 30m, camera off 0h 30m, "
        "streaming 0h 00m",
        f"{day(-10)}  messages 20  voice 0h 00m  camera on 0h 00m",
        f"{day(0)}  messages 5  voice 1h 00m  camera on 0h 30m",
    ]
    out = lines(run(uri, "member.js", GUILD=G, MEMBER=BIG, DAYS=7))
    assert out == [
        f"member {BIG} in guild 1: messages 3, voice 25h 00m, camera on 0h 00m, camera off 25h 00m, "
        "streaming 0h 00m",
        f"{day(0)}  messages 3  voice 0h 00m  camera on 0h 00m",
    ]


async def test_leaderboards_voice_and_messages_per_period(repos: Repositories, uri: str) -> None:
    await seed_activity(repos)
    assert lines(run(uri, "leaderboard.js", GUILD=G, METRIC="voice_s", DAYS=7)) == [
        "voice_s leaderboard, last 7 days:", "1. 102  2h 00m", "2. 101  1h 00m",
    ]
    assert lines(run(uri, "leaderboard.js", GUILD=G, METRIC="voice_s")) == [
        "voice_s leaderboard, all time:", f"1. {BIG}  25h 00m", "2. 102  2h 00m", "3. 101  1h 00m",
    ]
    assert lines(run(uri, "leaderboard.js", GUILD=G, METRIC="messages", DAYS=7)) == [
        "messages leaderboard, last 7 days:", "1. 102  7", "2. 101  5", f"3. {BIG}  3",
    ]
    assert lines(run(uri, "leaderboard.js", GUILD=G, METRIC="messages", LIMIT=1)) == [
        "messages leaderboard, all time:", "1. 101  25",
    ]


async def test_top_channels_per_period_with_their_shares(repos: Repositories, uri: str) -> None:
    """channels.js: the channel-day documents written by the real repository, summed per channel."""
    counts = [ChannelCount(G, 10, day(0), 6), ChannelCount(G, BIG, day(-1), 3),
              ChannelCount(G, 11, day(-20), 9), ChannelCount(G + 1, 10, day(0), 50)]
    await repos.activity.add_messages([credit(ADA, 0, messages=18)], 7, counts)
    assert lines(run(uri, "channels.js", GUILD=G, DAYS=7)) == [
        "top channels of guild 1, last 7 days: 9 messages in 2 channels", "1. 10  6  66.7%",
        f"2. {BIG}  3  33.3%",
    ]
    assert lines(run(uri, "channels.js", GUILD=G, LIMIT=1)) == [
        "top channels of guild 1, last 30 days: 18 messages in 3 channels", "1. 11  9  50.0%",
    ]


async def test_who_invited_per_member_and_per_inviter(repos: Repositories, uri: str) -> None:
    await seed_joins(repos)
    t = NOW - timedelta(days=3)

    def at(minutes: int) -> str:
        return (t + timedelta(minutes=minutes)).isoformat().replace("+00:00", ".000Z")

    assert lines(run(uri, "who_invited.js", GUILD=G)) == [
        f"bob (102) <- ada (101), code abc, source invite, joined {at(0)}",
        f"cy (103) <- nobody known, code study, source vanity, joined {at(5)}",
        f"big ({BIG}) <- ada (101), code abc, source invite, joined {at(10)}",
        f"dee (104) <- bob (102), code bobs, source invite, joined {at(15)}",
        "4 member(s)",
    ]
    assert lines(run(uri, "who_invited.js", GUILD=G, MEMBER=BIG)) == [
        f"big ({BIG}) <- ada (101), code abc, source invite, joined {at(10)}", "1 member(s)",
    ]
    assert lines(run(uri, "who_invited.js", GUILD=G, INVITER=ADA)) == [
        f"bob (102), code abc, source invite, joined {at(0)}",
        f"big ({BIG}), code abc, source invite, joined {at(10)}",
        "2 member(s) brought in by 101",
    ]
    assert lines(run(uri, "who_invited.js", GUILD=G, INVITER=BOB)) == [
        f"dee (104), code bobs, source invite, joined {at(15)}, fake: young_account",
        "1 member(s) brought in by 102",
    ]


async def test_staff_codes_like_the_staff_list_command(repos: Repositories, uri: str) -> None:
    await seed_joins(repos)
    staff = await repos.staff_codes.active(G)
    invites = await repos.joins.code_counts(G, [s.code for s in staff])
    conversions = await repos.joins.conversion_counts(G)
    assert (invites, conversions) == ({"abc": 2, "bobs": 1}, {ADA: 2})  # what the command shows
    assert lines(run(uri, "staff.js", GUILD=G)) == [
        "ada (101)  code abc  invites 2  conversions 2  rate 100.0%",
        "bob (102)  code bobs  invites 1  conversions 0  rate 0.0%",
        "cy (103)  code cyc  invites 0  conversions 0  rate 0.0%",
        "3 staff code(s)",
    ]


async def test_open_voice_sessions(repos: Repositories, uri: str) -> None:
    opened = NOW_MS - 3_600_000
    sessions = [
        VoiceSession(G, ADA, 20, NOW_MS - 90_000, opened, VoiceFlags(camera=True)),
        VoiceSession(G, BIG, 21, NOW_MS - 30_000, opened + 60_000, VoiceFlags(stream=True)),
    ]
    # ADA's session as this version stores it (state in her all-time document), BIG's as the version
    # before did (state in the entry): the script shows both
    ada = sessions[0]
    await repos.voice_sessions.writer.submit(
        [Write.bulk("voice_sessions", [entry_upsert(G, ADA, 1)]),
         *repos.activity.voice_writes(*voice_updates([VoiceTotal(G, ADA, (), ada.open_fields())], 1), 1)],
        "test")
    await repos.voice_sessions.record([SessionWrite(sessions[1].key, sessions[1], seq=1)])
    assert session_key(G, BIG) == f"1:{BIG}"
    start = datetime.fromtimestamp(opened / 1000, UTC)
    assert lines(run(uri, "open_sessions.js", GUILD=G)) == [
        f"guild 1 member 101 channel 20  open since {start.isoformat().replace('+00:00', '.000Z')}  "
        "checkpoint 90s ago  camera",
        f"guild 1 member {BIG} channel 21  open since "
        f"{(start + timedelta(minutes=1)).isoformat().replace('+00:00', '.000Z')}  "
        "checkpoint 30s ago  streaming",
        "2 open session(s)",
    ]
    assert lines(run(uri, "open_sessions.js", GUILD=2)) == ["0 open session(s)"]


async def test_outbox_lag_ok_backlog_and_silence(repos: Repositories, uri: str) -> None:
    missing = run(uri, "outbox_lag.js")
    assert missing.returncode == 1
    assert missing.stdout.strip() == (
        "PROBLEM: the bot has never reported its outbox (no lifecycle status document)"
    )

    await repos.lifecycle.report_status(NOW - timedelta(seconds=30), 0, None)
    assert lines(run(uri, "outbox_lag.js")) == [
        "reported 2026-03-10T11:59:30.000Z (30s ago): 0 write(s) waiting", "OK",
    ]

    await repos.lifecycle.report_status(NOW - timedelta(seconds=60), 42, NOW_MS - 240_000)
    assert lines(run(uri, "outbox_lag.js")) == [
        "reported 2026-03-10T11:59:00.000Z (60s ago): 42 write(s) waiting, oldest since "
        "2026-03-10T11:56:00.000Z (240s)",
        "OK",
    ]
    over = run(uri, "outbox_lag.js", MAX_LAG_SECONDS=200)
    assert over.returncode == 1
    assert over.stdout.strip().splitlines()[1:] == [
        "PROBLEM: writes have waited 240s (over MAX_LAG_SECONDS=200)"
    ]

    await repos.lifecycle.report_status(NOW - timedelta(seconds=200), 0, None)
    silent = run(uri, "outbox_lag.js")
    assert silent.returncode == 1
    assert silent.stdout.strip().splitlines() == [
        "reported 2026-03-10T11:56:40.000Z (200s ago): 0 write(s) waiting",
        "PROBLEM: the bot has not reported for 200s (over 180s)",
    ]
