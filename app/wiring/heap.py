"""Keep the garbage collector's full collections short: long-lived objects are frozen.

A bot in a big guild holds millions of long-lived objects (discord.py's member and voice-state
cache, the open voice sessions, the ranks in memory). CPython's full (generation 2) collection
walks every tracked object; measured in the benchmark at 10,000 members in voice, one took
60-375 ms, on the event loop's thread, i.e. an event-loop stall of that length in the middle of a
flush or a restart, whatever the batch size. `gc.freeze()` moves every object alive now into a
permanent generation that collections skip, so later full collections only walk what was
allocated since.

When: after a guild's cache is built (it became available) and after what the trackers build from
it (voice sessions reconciled, ranks built): these objects live as long as the process. The young
generations are collected first. What this costs: cyclic garbage among frozen objects is not
collected while frozen. Plain garbage (no cycle) is freed by reference counting as always; the one
big cyclic structure is discord.py's guild cache (a `Guild` and its `Member`s refer to each other),
which discord.py replaces when a gateway session is re-identified. So when a guild becomes available
as a different `Guild` object than the one frozen before, everything is thawed and collected once
(`gc.unfreeze()` + `gc.collect()`, one pause of the length above, at the moment discord.py has just
rebuilt its whole cache anyway), then frozen again.

While a big structure is built in the background (the ranks, the invite boards: hundreds of
thousands of objects made in a few seconds), the automatic collections are paused
(`young_collections_only`): the allocations would trigger full collections that walk everything
made since the last freeze. The build instead collects the young generations itself whenever they
hold `YOUNG_LIMIT` objects (`collect_young_if_due`, checked every chunk: a collection walks each
young object, about 0.4 microseconds apiece here, so 163,000 of them once took 65 ms), and
freezes what it built (`keep_long_lived`) before the collections resume: `building` does both,
for the ranks, the invite boards, and a voice flush or reconcile of 1,000 sessions or more.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class _Pause:
    """The builds inside `young_collections_only`, and whether automatic collections were on
    when the first of them entered."""

    running = 0
    resume = False


YOUNG_LIMIT = 20_000  # young objects collected at once inside a build: under 10 ms


def collect_young_if_due(reason: str) -> None:
    """Inside `young_collections_only`: once the youngest generation holds `YOUNG_LIMIT` objects,
    collect the young generations and freeze what survives (what the build made)."""
    if gc.get_count()[0] >= YOUNG_LIMIT:
        keep_long_lived(reason)


def keep_long_lived(reason: str) -> None:
    """Freeze every object alive now (see the module docstring)."""
    gc.collect(1)
    gc.freeze()  # (not gc.get_freeze_count(): it walks every frozen object)
    log.debug("heap: objects alive frozen after %s", reason)


def collect_everything(reason: str) -> None:
    """Thaw and collect all (frees cyclic garbage among frozen objects); one long pause."""
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    log.info("heap: full collection after %s: %d object(s) freed in %.3fs", reason, freed,
             time.perf_counter() - started)


class GuildCaches:
    """Which `Guild` object of each guild was frozen last (by identity)."""

    def __init__(self) -> None:
        self._frozen: dict[int, int] = {}

    def built(self, guild_id: int, guild: object) -> None:
        """The guild's cache is (re)built: freeze it; a rebuilt one first frees the old one."""
        previous = self._frozen.get(guild_id)
        if previous is not None and previous != id(guild):
            collect_everything(f"guild {guild_id}'s cache was rebuilt")
        self._frozen[guild_id] = id(guild)
        keep_long_lived("guild available")


@contextmanager
def building(reason: str, *, large: bool = True) -> Iterator[None]:
    """A build of long-lived objects (`large`: big enough to matter): inside
    `young_collections_only`, and what it made frozen (`keep_long_lived(reason)`) before the
    automatic collections resume, so that no full collection walks it at once. Not `large`: as is."""
    if not large:
        yield
        return
    with young_collections_only():
        yield
        keep_long_lived(reason)


@contextmanager
def young_collections_only() -> Iterator[None]:
    """No automatic collection while inside (nested and concurrent builds allowed); the caller
    runs `keep_long_lived` often enough to collect the young generations. Automatic collections
    resume when the last one leaves, unless they were off before."""
    if _Pause.running == 0:
        _Pause.resume = gc.isenabled()
        gc.disable()
    _Pause.running += 1
    try:
        yield
    finally:
        _Pause.running -= 1
        if _Pause.running == 0 and _Pause.resume:
            gc.enable()
