"""Simulated network latency: REST round trips and gateway dispatch delays, jittered from a seeded RNG.

Discord answers REST calls in ~100-300 ms and gateway dispatches arrive tens of ms after the change;
an emulator answering in 1 ms hides every race that depends on those gaps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

Range = tuple[float, float]


@dataclass(frozen=True)
class Latency:
    """``rest_ms``: each REST call takes a uniform time in this range (half before the emulator
    handles it, half before the answer leaves). ``dispatch_ms``: each gateway dispatch is written a
    uniform time in this range after it happened, never before an earlier frame of the same
    connection (one shard's events are not reordered)."""

    rest_ms: Range = (0.0, 0.0)
    dispatch_ms: Range = (0.0, 0.0)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rest_ms", "dispatch_ms"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"latency {name} must be (min, max) with 0 <= min <= max, not {(low, high)}")

    @property
    def enabled(self) -> bool:
        return self.rest_ms[1] > 0 or self.dispatch_ms[1] > 0


NO_LATENCY = Latency()
REALISTIC_LATENCY = Latency(rest_ms=(100.0, 200.0), dispatch_ms=(30.0, 100.0))


class Jitter:
    """Draws delays (in seconds) for a :class:`Latency`; one RNG per kind, so REST traffic does not
    shift the dispatch delays of a seeded run."""

    def __init__(self, latency: Latency = NO_LATENCY) -> None:
        self.latency = latency
        self._rest = random.Random(f"{latency.seed}:rest")
        self._dispatch = random.Random(f"{latency.seed}:dispatch")

    def rest_s(self) -> float:
        return _draw(self._rest, self.latency.rest_ms)

    def dispatch_s(self) -> float:
        return _draw(self._dispatch, self.latency.dispatch_ms)


def _draw(rng: random.Random, bounds: Range) -> float:
    low, high = bounds
    if high <= 0:
        return 0.0
    return rng.uniform(low, high) / 1000.0
