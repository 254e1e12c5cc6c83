"""`python -m scripts.export_csv` as a real process on the test database, configured like the bot."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.operations.export import CHANNELS_COLUMNS, JOINS_COLUMNS, LEADERBOARD_COLUMNS, read_id
from tests.scripts.test_backup_scripts import run

G = 123456789012345678
EVIL = "=cmd|' /C calc'!A0"


async def seed(db: Any) -> None:
    at = datetime(2020, 5, 1, 9, 30, tzinfo=UTC)
    await db.joins.insert_many([
        {"_id": f"{G}:{2**62 + n}:{n}", "guild_id": G, "member_id": 2**62 + n,
         "member_name": EVIL if n == 1 else f"m{n}", "joined_at": at,
         "joined_ms": int(at.timestamp() * 1000) + n,
         "source": "unknown", "code": None, "inviter_id": None, "counted": "first", "credit_to": 0,
         "fake_reason": "", "member_status": "present", "reset_id": ""}
        for n in range(1200)  # more than one cursor batch
    ])
    await db.joins.insert_one({"_id": "other", "guild_id": 5, "member_id": 9, "joined_at": at,
                               "joined_ms": 0})
    await db.activity.insert_one({"_id": f"t:{G}:{2**62 + 1}", "kind": "total", "guild_id": G,
                                  "member_id": 2**62 + 1, "messages": 4, "voice_s": 7200, "cam_on_s": 0,
                                  "cam_off_s": 7200, "stream_s": 60})


def csv_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".csv", ".part"))


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


async def test_export_joins_and_leaderboard_to_files(db: Any, mongo_uri: str, tmp_path: Path) -> None:
    await seed(db)
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": db.name}
    code, out, err = await run("scripts.export_csv", "--guild", str(G), "joins", "--out", "joins.csv",
                               cwd=tmp_path, **env)
    assert code == 0, err
    assert out.strip() == f"export joins (all) of guild {G}: 1200 rows, " \
                          f"{(tmp_path / 'joins.csv').stat().st_size} bytes in joins.csv"
    rows = read_csv((tmp_path / "joins.csv").read_bytes())
    assert tuple(rows[0]) == JOINS_COLUMNS and len(rows) == 1201
    assert [read_id(r[0]) for r in rows[1:]] == [2**62 + n for n in range(1200)], "all of them, oldest first"
    assert rows[2][1] == "'" + EVIL and rows[1][2] == "2020-05-01T09:30:00Z"
    assert csv_files(tmp_path) == ["joins.csv"], "no .part file left"

    code, out, err = await run("scripts.export_csv", "--guild", str(G), "leaderboard", "--plain-ids",
                               cwd=tmp_path, **env)
    assert code == 0, err
    written = next(name for name in csv_files(tmp_path) if name != "joins.csv")
    assert written.startswith(f"leaderboard-all-{G}-")
    rows = read_csv((tmp_path / written).read_bytes())
    assert tuple(rows[0]) == LEADERBOARD_COLUMNS
    assert rows[1:] == [[str(2**62 + 1), "'" + EVIL, "4", "7200", "2.00", "0", "7200", "60"]]

    code, out, err = await run("scripts.export_csv", "--guild", str(G), "joins", "--period", "7d",
                               "--out", "-", cwd=tmp_path, **env)
    assert code == 0, err
    header = '\ufeff"' + '","'.join(JOINS_COLUMNS) + '"\r\n'
    assert out == header, "only the header: 2020 is not in the last 7 days"
    assert err.strip() == (f"export joins (7d) of guild {G}: 0 rows, {len(header.encode())} bytes in "
                           "standard output")


async def test_export_channels_to_standard_output(db: Any, mongo_uri: str, tmp_path: Path) -> None:
    await db.activity.insert_many([
        {"_id": f"c:{G}:{2**62 + c}:2020-05-0{d}", "kind": "chday", "guild_id": G, "channel_id": 2**62 + c,
         "day": f"2020-05-0{d}", "messages": n}
        for c, d, n in ((1, 1, 2), (1, 2, 4), (2, 1, 3))
    ])
    code, out, err = await run("scripts.export_csv", "--guild", str(G), "channels", "--plain-ids",
                               "--out", "-", cwd=tmp_path, MONGODB_URI=mongo_uri, MONGODB_DB=db.name)
    assert code == 0, err
    rows = read_csv(out.encode())
    assert tuple(rows[0]) == CHANNELS_COLUMNS
    assert rows[1:] == [[str(2**62 + 1), "", "6", "66.7"], [str(2**62 + 2), "", "3", "33.3"]]


async def test_a_bad_period_or_guild_is_refused_by_the_command_line(tmp_path: Path) -> None:
    code, _, err = await run("scripts.export_csv", "--guild", "12", "joins", "--period", "week", cwd=tmp_path)
    assert code == 2 and "invalid choice: 'week'" in err
    code, _, err = await run("scripts.export_csv", "--guild", "-1", "joins", cwd=tmp_path)
    assert code == 2 and "positive 64-bit integer" in err
