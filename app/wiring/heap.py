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
generations are collected first, so only cyclic garbage already in the old generation at that
moment is kept for good (a one-off, bounded amount per call; nothing the bot makes per event).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def keep_long_lived(reason: str) -> None:
    """Freeze every object alive now (see the module docstring)."""
    gc.collect(1)
    before = gc.get_freeze_count()
    gc.freeze()
    log.debug("heap: %d object(s) frozen after %s (%d in all)", gc.get_freeze_count() - before, reason,
              gc.get_freeze_count())
