"""app.operations.export: the cells, the capped file, and the leaderboard from memory and MongoDB alike."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.operations.export import (
    BOM,
    CsvOut,
    ExportRequest,
    Sources,
    date_cell,
    id_cell,
    period_bounds,
    read_id,
    text_cell,
    write_export,
)
from app.storage.retry import RetryPolicy
from app.tracking.ranks import Ranks
from app.tracking.voice import zone
from app.wiring.clock import ManualClock
from app.wiring.container import Repositories
from repositories.activity import Credit

G = 7
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("name", "cell"), [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+1+1", "'+1+1"),
    ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("ada", "ada"),
    ("a=b", "a=b"),
    ("", ""),
    (None, ""),
])
def test_text_that_would_start_a_formula_gets_a_quote(name: str | None, cell: str) -> None:
    assert text_cell(name) == cell


def test_ids_are_text_a_spreadsheet_keeps_and_read_back_exactly() -> None:
    big = 1234567890123456789
    assert id_cell(big) == '="1234567890123456789"' and read_id(id_cell(big)) == big
    assert id_cell(big, plain=True) == "1234567890123456789" and read_id(id_cell(big, plain=True)) == big
    assert id_cell(None) == id_cell(0) == "" and read_id("") is None


def test_dates_are_iso_utc() -> None:
    paris = zone("Europe/Paris")
    assert date_cell(datetime(2026, 3, 10, 13, 5, 9, 999000, tzinfo=paris)) == "2026-03-10T12:05:09Z"
    assert date_cell(datetime(2026, 3, 10, 12, 0)) == "2026-03-10T12:00:00Z"  # noqa: DTZ001 - naive = UTC
    assert date_cell(None) == ""


def test_periods_start_at_the_guilds_midnight() -> None:
    tokyo = zone("Asia/Tokyo")  # 2026-03-10 21:00 there
    assert period_bounds("today", NOW, tokyo) == ("2026-03-10", datetime(2026, 3, 9, 15, 0, tzinfo=UTC))
    assert period_bounds("7d", NOW, zone("UTC")) == ("2026-03-04", datetime(2026, 3, 4, tzinfo=UTC))
    assert period_bounds("all", NOW, tokyo) == (None, None)


def test_a_capped_file_keeps_whole_rows_under_the_limit() -> None:
    stream = io.BytesIO()
    out = CsvOut(stream, ("a", "b"), limit=40)
    assert out.write(("é", "1")) and out.write(("x", "2"))
    assert not out.write(("a long row that does not fit", "3")) and out.cut
    assert not out.write(("y", "4")), "nothing after the cut"
    data = stream.getvalue()
    assert data.startswith(BOM) and len(data) == out.size <= 40 and out.rows == 2
    assert data.decode("utf-8-sig") == '"a","b"\r\n"é","1"\r\n"x","2"\r\n'
    with pytest.raises(ValueError, match="cannot hold the header"):
        CsvOut(io.BytesIO(), ("a", "b"), limit=5)


async def export_text(sources: Sources, kind: str, period: str) -> list[list[str]]:
    stream = io.BytesIO()
    request = ExportRequest(G, kind, period, NOW, zone("UTC"))
    await write_export(sources, request, stream)
    return list(csv.reader(io.StringIO(stream.getvalue().decode("utf-8-sig"), newline="")))


async def test_leaderboard_from_the_ranks_equals_the_repositorys(db: Any, clock: ManualClock) -> None:
    repos = Repositories.create(db, RetryPolicy())
    for n in range(40):
        member = 2**62 + n
        for back in (0, 3, 12, 40):
            day = (NOW - timedelta(days=back)).date().isoformat()
            await repos.activity.add_messages([Credit(G, member, day, {"messages": (n * back) % 7})],
                                              f"m-{n}-{back}")
            voice = {"voice_s": n * 60 + back, "cam_on_s": n, "cam_off_s": n * 59 + back, "stream_s": back}
            await repos.activity.add_voice([Credit(G, member, day, voice)], f"v-{n}-{back}")
    await db.joins.insert_one({"_id": "j", "guild_id": G, "member_id": 2**62 + 3, "member_name": "@three",
                               "joined_at": NOW, "joined_ms": 0})
    ranks = Ranks(repos.activity, clock)
    ranks.ensure(G)
    await ranks.wait_ready(G)
    for period in ("today", "7d", "30d", "all"):
        from_memory = await export_text(Sources.of(repos, ranks), "leaderboard", period)
        from_mongodb = await export_text(Sources.of(repos), "leaderboard", period)
        assert from_memory == from_mongodb, period
        # the header and every member with something in the period (member 0 has nothing today)
        assert len(from_memory) == (40 if period == "today" else 41), period
    rows = await export_text(Sources.of(repos), "leaderboard", "all")
    three = next(r for r in rows[1:] if read_id(r[0]) == 2**62 + 3)
    assert three[1] == "'@three", "the name at the member's last join, defused"
    messages = [(-int(r[2]), -int(r[3]), read_id(r[0])) for r in rows[1:]]
    assert messages == sorted(messages), "most messages first, then most voice, then id"
    await ranks.stop()
