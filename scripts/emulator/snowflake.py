"""Snowflake ids and Discord timestamps.

A snowflake is ``(milliseconds since the Discord epoch << 22) | low bits``; Discord fills the low
22 bits with worker, process and increment fields, this emulator with a counter.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000
_LOW_BITS = 22
_LOW_MASK = (1 << _LOW_BITS) - 1


def snowflake_from_time(when: datetime, low: int = 0) -> int:
    """The snowflake for ``when`` (timezone-aware) with ``low`` in the low 22 bits."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: give a timezone-aware time")
    ms = int(when.timestamp() * 1000) - DISCORD_EPOCH_MS
    if ms < 0:
        raise ValueError(f"{when.isoformat()} is before the Discord epoch (2015-01-01)")
    return (ms << _LOW_BITS) | (low & _LOW_MASK)


def time_from_snowflake(snowflake: int) -> datetime:
    ms = (snowflake >> _LOW_BITS) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_time(value: str | datetime) -> datetime:
    """ISO 8601 text (``Z`` allowed) or an aware datetime -> aware datetime in UTC."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"time without timezone: {value!r}")
    return when.astimezone(UTC)


def iso(when: datetime) -> str:
    """Discord's timestamp format: ``2020-01-01T00:00:00.000000+00:00``."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def utcnow() -> datetime:
    return datetime.now(UTC)


class SnowflakeGenerator:
    """Current, strictly increasing snowflakes: ``(ms_since_epoch << 22) | counter``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def next(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            if ms > self._last_ms:
                self._last_ms = ms
                self._counter = 0
            else:
                self._counter += 1
                if self._counter > _LOW_MASK:
                    self._last_ms += 1
                    self._counter = 0
            return (self._last_ms << _LOW_BITS) | self._counter
