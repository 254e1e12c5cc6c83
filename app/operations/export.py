"""CSV exports of one guild: the activity leaderboard, invite figures per inviter, every join,
messages per channel.

Used by `/export` (cogs/export.py, the file attached to the reply, cut at Discord's upload limit)
and `python -m scripts.export_csv` (a file on the host, never cut). The columns are documented in
docs/export.md. What makes the file open in a spreadsheet as is:

- UTF-8 with a byte-order mark (`utf-8-sig`): Excel reads names in any script correctly;
- every field quoted (`csv.QUOTE_ALL`), comma separated, CRLF line ends (RFC 4180);
- Discord ids as text: a 19-digit id read as a number loses its last digits (spreadsheets keep
  15 significant digits: 1.23456789012346E+18), and quoting does not stop that (Excel and, by
  default, LibreOffice type a quoted field like an unquoted one). An id is written as the formula
  `="123..."`, which Excel, LibreOffice and Google Sheets show as the text 123...; `plain_ids`
  writes bare digits for programs (`read_id` reads both);
- dates ISO 8601 in UTC (`2026-03-10T12:00:00Z`), durations in whole seconds plus hours with two
  decimals;
- text from members (names, codes) that starts with `=`, `+`, `-`, `@`, a tab or a carriage
  return gets a leading `'`, so a spreadsheet never runs it as a formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, BinaryIO, Protocol
from zoneinfo import ZoneInfo

from app.tracking.invite_stats import InviteStats, InviteSummary
from app.tracking.voice import PERIODS, period_start_day
from repositories.activity import ActivityRepository, Counters
from repositories.joins import JoinRepository, StoredJoin
from repositories.staff_codes import StaffCodeRepository

log = logging.getLogger(__name__)
KINDS = ("leaderboard", "invites", "joins", "channels")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff".encode()
LEADERBOARD_COLUMNS = ("member_id", "member_name", "messages", "voice_seconds", "voice_hours",
                       "camera_on_seconds", "camera_off_seconds", "streaming_seconds")
INVITES_COLUMNS = ("member_id", "member_name", "regular", "left", "fake", "bonus", "total", "staff_code")
JOINS_COLUMNS = ("member_id", "member_name", "joined_at", "source", "code", "inviter_id", "inviter_name",
                 "counted", "fake_reason", "left_at", "status", "reset_id")
CHANNELS_COLUMNS = ("channel_id", "channel_name", "messages", "share_percent")
COLUMNS = {"leaderboard": LEADERBOARD_COLUMNS, "invites": INVITES_COLUMNS, "joins": JOINS_COLUMNS,
           "channels": CHANNELS_COLUMNS}

Row = Sequence[str]
Names = Callable[[set[int]], Awaitable[dict[int, str]]]
ChannelNames = Callable[[int], str | None]  # a channel's name now (None: unknown, e.g. deleted)


# ---- cells ---------------------------------------------------------------------------------
def text_cell(value: str | None) -> str:
    """Member-supplied text, defused: a leading `'` when it would start a formula."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_START) else text


def id_cell(value: int | None, *, plain: bool = False) -> str:
    """A Discord id as text a spreadsheet keeps exactly (`="123..."`), or bare digits; "" for none."""
    if not value:
        return ""
    return str(int(value)) if plain else f'="{int(value)}"'


def read_id(cell: str) -> int | None:
    """An id cell read back (either form); None when empty."""
    digits = cell.removeprefix('="').removesuffix('"')
    return int(digits) if digits else None


def date_cell(moment: datetime | None) -> str:
    """ISO 8601 in UTC to the second, `2026-03-10T12:00:00Z`; "" for none."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # BSON dates read back naive unless the client is tz-aware
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hours_cell(seconds: int) -> str:
    return f"{seconds / 3600:.2f}"


# ---- the file ------------------------------------------------------------------------------
class CsvOut:
    """Rows written as CSV to a binary stream, BOM first; with `limit` (bytes), a row that would
    pass it is not written and `cut` turns True (the file stays whole rows, under the limit)."""

    def __init__(self, stream: BinaryIO, header: Row, limit: int | None = None) -> None:
        self.stream = stream
        self.limit = limit
        self.size = 0
        self.rows = 0
        self.cut = False
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        if not self._put(BOM + self._encode(header)):
            raise ValueError(f"an upload limit of {limit} bytes cannot hold the header")

    def write(self, row: Row) -> bool:
        """Write one row; False (and `cut`) when it would pass the limit: stop there."""
        if self.cut:
            return False
        if not self._put(self._encode(row)):
            self.cut = True
            return False
        self.rows += 1
        return True

    def _encode(self, row: Row) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(row)
        return self._buffer.getvalue().encode("utf-8")

    def _put(self, data: bytes) -> bool:
        if self.limit is not None and self.size + len(data) > self.limit:
            return False
        self.stream.write(data)
        self.size += len(data)
        return True


# ---- periods -------------------------------------------------------------------------------
def period_bounds(period: str, now: datetime, tz: ZoneInfo) -> tuple[str | None, datetime | None]:
    """The first guild-local day of the period (the activity buckets) and its start as a UTC time
    (joins and invites); (None, None) for all time. KeyError on an unknown period."""
    day = period_start_day(period, now, tz)
    if day is None:
        return None, None
    start = datetime.combine(date.fromisoformat(day), time(), tz)
    return day, start.astimezone(UTC)


# ---- where the figures come from -----------------------------------------------------------
class RanksView(Protocol):
    def covers(self, guild_id: int, since: str | None) -> bool: ...

    async def every_member(self, guild_id: int, since: str | None) -> list[tuple[int, Counters]]: ...


@dataclass(frozen=True)
class Sources:
    """What the exports read: the repositories, and the ranks in memory when this process has them."""

    activity: ActivityRepository
    joins: JoinRepository
    staff_codes: StaffCodeRepository
    invite_stats: InviteStats
    ranks: RanksView | None = None

    @classmethod
    def of(cls, repos: Any, ranks: RanksView | None = None) -> Sources:
        """From an `app.wiring.container.Repositories`."""
        return cls(repos.activity, repos.joins, repos.staff_codes, repos.invite_stats, ranks)


@dataclass(frozen=True)
class ExportRequest:
    guild_id: int
    kind: str
    period: str
    now: datetime
    time_zone: ZoneInfo
    plain_ids: bool = False


@dataclass(frozen=True)
class ExportResult:
    rows: int
    size: int
    cut: bool


async def activity_totals(sources: Sources, guild_id: int,
                          since_day: str | None) -> list[tuple[int, Counters]]:
    """Every member's counters of the period: from the ranks in memory when they cover it, else
    from the repository's aggregation. Most messages first, then most voice, then member id."""
    ranks = sources.ranks
    if ranks is not None and ranks.covers(guild_id, since_day):
        totals = await ranks.every_member(guild_id, since_day)
    else:
        totals = await sources.activity.member_totals(guild_id, since_day)
    return sorted(totals, key=lambda item: (-item[1].messages, -item[1].voice_s, item[0]))


async def leaderboard_rows(sources: Sources, request: ExportRequest,
                           names: Names) -> AsyncGenerator[Row, None]:
    since_day, _ = period_bounds(request.period, request.now, request.time_zone)
    totals = await activity_totals(sources, request.guild_id, since_day)
    known = await names({member for member, _ in totals})
    for member, c in totals:
        yield (id_cell(member, plain=request.plain_ids), text_cell(known.get(member)), str(c.messages),
               str(c.voice_s), hours_cell(c.voice_s), str(c.cam_on_s), str(c.cam_off_s), str(c.stream_s))


async def invite_rows(sources: Sources, request: ExportRequest, names: Names) -> AsyncGenerator[Row, None]:
    """The invite leaderboard of the period (bonus counts only all time, as on /invites
    leaderboard), plus every staff member with an active code (with zeros when they have none)."""
    _, since = period_bounds(request.period, request.now, request.time_zone)
    board = await sources.invite_stats.leaderboard(request.guild_id, since)
    staff = {s.member_id: s for s in await sources.staff_codes.active(request.guild_id)}
    listed = {row.member_id for row in board}
    board += [InviteSummary(member_id) for member_id in staff if member_id not in listed]
    known = await names({row.member_id for row in board})
    for row in board:
        code = staff.get(row.member_id)
        name = known.get(row.member_id) or (code.member_name if code else None)
        yield (id_cell(row.member_id, plain=request.plain_ids), text_cell(name), str(row.regular),
               str(row.left), str(row.fake), str(row.bonus), str(row.total),
               text_cell(code.code if code else None))


async def join_rows(sources: Sources, request: ExportRequest) -> AsyncGenerator[Row, None]:
    _, since = period_bounds(request.period, request.now, request.time_zone)
    async for batch in sources.joins.scan_joins(request.guild_id, since):
        for join in batch:
            yield join_row(join, request.plain_ids)


def join_row(join: StoredJoin, plain_ids: bool = False) -> Row:
    return (id_cell(join.member_id, plain=plain_ids), text_cell(join.member_name), date_cell(join.joined_at),
            join.source, text_cell(join.code), id_cell(join.inviter_id, plain=plain_ids),
            text_cell(join.inviter_name), join.counted, join.fake_reason, date_cell(join.left_at),
            join.member_status, text_cell(str(join.raw.get("reset_id") or "")))


async def channel_rows(sources: Sources, request: ExportRequest,
                       channel_names: ChannelNames | None) -> AsyncGenerator[Row, None]:
    """Messages per channel in the period (a thread's under its parent channel; the channel-day
    documents' aggregation), most first, then by channel id; the share is of every channel's."""
    since_day, _ = period_bounds(request.period, request.now, request.time_zone)
    totals = await sources.activity.channel_totals(request.guild_id, since_day)
    whole = sum(totals.values()) or 1
    for channel, messages in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
        name = channel_names(channel) if channel_names is not None else None
        yield (id_cell(channel, plain=request.plain_ids), text_cell(name), str(messages),
               f"{100 * messages / whole:.1f}")


def rows_of(sources: Sources, request: ExportRequest, names: Names,
            channel_names: ChannelNames | None = None) -> AsyncGenerator[Row, None]:
    """The rows of `request.kind`. ValueError on an unknown kind, KeyError on an unknown period."""
    if request.period not in PERIODS:
        raise KeyError(request.period)
    if request.kind == "leaderboard":
        return leaderboard_rows(sources, request, names)
    if request.kind == "invites":
        return invite_rows(sources, request, names)
    if request.kind == "joins":
        return join_rows(sources, request)
    if request.kind == "channels":
        return channel_rows(sources, request, channel_names)
    raise ValueError(f"unknown export {request.kind!r}; one of {', '.join(KINDS)}")


async def write_export(sources: Sources, request: ExportRequest, stream: BinaryIO, *,
                       names: Names | None = None, limit: int | None = None,
                       channel_names: ChannelNames | None = None) -> ExportResult:
    """Write the export to `stream`; with `limit`, stop before the row that would pass it.
    `channel_names`: the channels' names (the command line has none: the column stays empty)."""
    rows = rows_of(sources, request, names or names_from_joins(sources.joins, request.guild_id),
                   channel_names)
    out = CsvOut(stream, COLUMNS[request.kind], limit)
    try:
        async for row in rows:
            if not out.write(row):
                break
    finally:
        await rows.aclose()
    log.info("export %s of guild %d (%s): %d rows, %d bytes%s", request.kind, request.guild_id,
             request.period, out.rows, out.size, ", cut at the limit" if out.cut else "")
    return ExportResult(out.rows, out.size, out.cut)


def names_from_joins(joins: JoinRepository, guild_id: int) -> Names:
    """Names from the joins the bot recorded (the command line has no member list)."""

    async def lookup(member_ids: set[int]) -> dict[int, str]:
        return await joins.latest_names(guild_id, member_ids)

    return lookup


def file_name(kind: str, period: str, guild_id: int, now: datetime) -> str:
    """`joins-30d-123456789-20260310.csv`."""
    return f"{kind}-{period}-{guild_id}-{now.astimezone(UTC):%Y%m%d}.csv"

