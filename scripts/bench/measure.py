"""Measuring helpers: timers, percentiles, event-loop stalls, resident memory, result records."""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")


@dataclass
class Row:
    """One line of the results table. `ratio` is bot path / baseline (time) or events/s ratio."""

    case: str
    measure: str
    bot: str
    baseline: str = "-"
    ratio: float | None = None
    target: str = "reported"
    met: bool | None = None  # None: nothing to meet (reported only)
    values: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


STALL_TARGET = 0.050  # issue 16: no event-loop stall over 50 ms in any case


def stall_row(case: str, stall_s: float, measure: str = "longest event-loop stall") -> Row:
    """The longest late wakeup of the loop ticker (`watch_loop`) against STALL_TARGET."""
    return Row(case, measure, ms(stall_s), "-", None, f"<= {STALL_TARGET * 1000:.0f} ms",
               stall_s <= STALL_TARGET, {"seconds": stall_s})


@dataclass
class Check:
    """One exactness check, made after a case ran."""

    name: str
    ok: bool
    detail: str = ""


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def samples(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    """`count` sequential timings of `call`, in seconds."""
    out = []
    for _ in range(count):
        seconds, _ = await timed(call)
        out.append(seconds)
    return out


def rss_bytes() -> int:
    """Current resident set size of this process (VmRSS)."""
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def max_rss_bytes() -> int:
    """Peak RSS of this process since it started (getrusage; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class LoopWatch:
    """Filled by `watch_loop`: the longest event-loop stall and the highest RSS seen."""

    longest_stall: float = 0.0
    peak_rss: int = 0
    ticks: int = 0


async def _tick(watch: LoopWatch, interval: float) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval)
        late = time.perf_counter() - started - interval
        watch.longest_stall = max(watch.longest_stall, late)
        watch.ticks += 1
        if watch.ticks % 10 == 0:
            watch.peak_rss = max(watch.peak_rss, rss_bytes())


@contextlib.asynccontextmanager
async def watch_loop(interval: float = 0.001) -> AsyncIterator[LoopWatch]:
    """A ticker task that sleeps `interval` and records how late each wakeup was (the stall)."""
    watch = LoopWatch(peak_rss=rss_bytes())
    task = asyncio.create_task(_tick(watch, interval), name="bench-loop-watch")
    await asyncio.sleep(0)
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        watch.peak_rss = max(watch.peak_rss, rss_bytes())


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def sec(seconds: float) -> str:
    return f"{seconds:.3f} s"


def rate(value: float) -> str:
    return f"{value:,.0f} ev/s"


def mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"
