"""Pure voice-time arithmetic: which counters an interval credits, split by the guild's days.

No I/O and no Discord here. Times are epoch milliseconds; credits are whole seconds computed as
`floor(end_s) - floor(start_s)`, so consecutive intervals sharing a checkpoint telescope and no
fraction of a second is lost or counted twice over a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

COUNTERS = ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")
VOICE_COUNTERS = ("voice_s", "cam_on_s", "cam_off_s", "stream_s")


@dataclass(frozen=True, slots=True)
class VoiceFlags:
    """The state a member's voice time is credited under."""

    camera: bool = False
    stream: bool = False
    afk: bool = False
    deaf_excluded: bool = False

    @property
    def counted(self) -> bool:
        return not (self.afk or self.deaf_excluded)

    def to_document(self) -> dict[str, int]:
        return {"camera": int(self.camera), "stream": int(self.stream), "afk": int(self.afk),
                "deaf_excluded": int(self.deaf_excluded)}

    @classmethod
    def from_document(cls, doc: dict[str, object]) -> VoiceFlags:
        return cls(bool(doc.get("camera", 0)), bool(doc.get("stream", 0)), bool(doc.get("afk", 0)),
                   bool(doc.get("deaf_excluded", 0)))


@dataclass(frozen=True, slots=True)
class LiveVoice:
    """Where a member is right now: a voice channel and the flags that apply there."""

    channel_id: int
    flags: VoiceFlags


def voice_flags(
    *,
    channel_id: int,
    self_video: bool,
    self_stream: bool,
    self_deaf: bool,
    afk_channel_id: int | None,
    count_self_deafened: bool,
) -> VoiceFlags:
    """The flags for a member in `channel_id` (AFK channel and excluded self-deafen count nothing)."""
    return VoiceFlags(
        camera=bool(self_video),
        stream=bool(self_stream),
        afk=afk_channel_id is not None and channel_id == afk_channel_id,
        deaf_excluded=bool(self_deaf) and not count_self_deafened,
    )


def day_of(when_ms: int, tz: ZoneInfo) -> str:
    """The guild-local calendar day (YYYY-MM-DD) of an instant."""
    return datetime.fromtimestamp(when_ms / 1000, tz=UTC).astimezone(tz).date().isoformat()


def _next_midnight_s(local_day: date, tz: ZoneInfo) -> int:
    midnight = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=tz)
    return int(midnight.astimezone(UTC).timestamp())


def day_segments(start_ms: int, end_ms: int, tz: ZoneInfo) -> list[tuple[str, int]]:
    """Whole seconds of [start, end) per guild-local day, in order; days with 0 seconds left out."""
    start_s, end_s = start_ms // 1000, end_ms // 1000
    segments: list[tuple[str, int]] = []
    while start_s < end_s:
        local_day = datetime.fromtimestamp(start_s, tz=UTC).astimezone(tz).date()
        boundary = max(_next_midnight_s(local_day, tz), start_s + 1)
        stop = min(boundary, end_s)
        segments.append((local_day.isoformat(), stop - start_s))
        start_s = stop
    return segments


def amounts_for(seconds: int, flags: VoiceFlags) -> dict[str, int]:
    """The counters `seconds` of voice time under `flags` adds (empty when nothing counts)."""
    if seconds <= 0 or not flags.counted:
        return {}
    return {
        "voice_s": seconds,
        "cam_on_s": seconds if flags.camera else 0,
        "cam_off_s": 0 if flags.camera else seconds,
        "stream_s": seconds if flags.stream else 0,
    }


def credit(start_ms: int, end_ms: int, flags: VoiceFlags, tz: ZoneInfo) -> dict[str, dict[str, int]]:
    """Per guild-local day, the counters the interval [start, end) under `flags` adds."""
    if not flags.counted:
        return {}
    return {day: amounts_for(seconds, flags) for day, seconds in day_segments(start_ms, end_ms, tz)}


def zone(name: str) -> ZoneInfo:
    """The guild's time zone; an unknown name falls back to UTC."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


PERIODS = {"today": 1, "7d": 7, "30d": 30, "all": None}
PERIOD_LABELS = {"today": "today", "7d": "last 7 days", "30d": "last 30 days", "all": "all time",
                 "season": "this season"}  # a season's days: app.tracking.seasons


def period_start_day(period: str, now: datetime, tz: ZoneInfo) -> str | None:
    """The first guild-local day a period covers (None: all time). Raises KeyError on a bad period."""
    days = PERIODS[period]
    if days is None:
        return None
    return (now.astimezone(tz).date() - timedelta(days=days - 1)).isoformat()


def last_days(now: datetime, tz: ZoneInfo, count: int) -> list[str]:
    """The `count` guild-local days ending today, oldest first."""
    today = now.astimezone(tz).date()
    return [(today - timedelta(days=i)).isoformat() for i in range(count - 1, -1, -1)]


def format_duration(seconds: int) -> str:
    """`12h 05m` (minutes rounded down)."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
