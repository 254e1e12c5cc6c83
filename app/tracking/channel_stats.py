"""Messages per channel and day in memory, per guild: the top channels of `/server stats` without
an aggregation per command.

MongoDB stays the only store of record: the table is derived from the channel-day documents
(`activity`, kind "chday", see `repositories.activity.ChannelCount`) and rebuilt from them, like
the ranks (`app.tracking.ranks`):

- per guild, channel -> day -> [messages, msg_seq, fill_seq] for the days from `KEEP_DAYS - 1`
  days before the build's UTC day on (enough for a 30-day period in any time zone);
- kept current by `note(counts, op_id, guard)`, called when a counting write returned (MongoDB
  acknowledged it or the Writer kept it in the durable outbox): the message group commit's
  batches (guard `msg_seq`) and the backfill's pages (guard `fill_seq`).

Exact under races, by the guards: a write with sequence `s` is added to a mirrored document only
when `s` is above the document's stored sequence for that writer, the rule MongoDB's guarded update
follows. So a write the build's read already saw is not added twice, whether its note arrives
during the build (kept aside and applied at its end) or after it.

A guild's table is built in the background (`ensure`, `rebuild`; `GuildBuilds`): wait until the
outbox is empty, then one pass over the guild's channel-day documents of the kept days. Until then
`covers()` is False and `/server stats` falls back to one aggregation
(`ActivityRepository.channel_totals`). Only the process holding the lease counts, so on a standby
`covers()` is always False.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from app.storage.retry import OpId
from app.tracking.builds import GuildBuilds
from app.wiring.clock import Clock
from repositories.activity import FILL_GUARD, MESSAGE_GUARD, ActivityRepository, ChannelCount

log = logging.getLogger(__name__)
KEEP_DAYS = 32  # days mirrored: a 30-day period in any time zone
SCAN_BATCH = 1000
SEQ_SLOT = {MESSAGE_GUARD: 1, FILL_GUARD: 2}


def _record(doc: Mapping[str, Any]) -> list[int]:
    """A mirrored document: messages, then the live and backfill guard sequences."""
    seqs = [doc.get(guard) for guard in (MESSAGE_GUARD, FILL_GUARD)]
    return [int(doc.get("messages") or 0)] + [s if isinstance(s, int) else 0 for s in seqs]


class GuildChannels:
    """One guild's channel -> day -> record."""

    def __init__(self, guild_id: int, keep_from: str) -> None:
        self.guild_id = guild_id
        self.keep_from = keep_from  # the oldest day mirrored
        self.days: dict[int, dict[str, list[int]]] = {}

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            self.days.setdefault(int(doc["channel_id"]), {})[str(doc["day"])] = _record(doc)

    def apply(self, counts: Iterable[ChannelCount], op_id: int, guard: str) -> None:
        """A guarded write with sequence `op_id`: each document once, as MongoDB applied it."""
        slot = SEQ_SLOT[guard]
        sums: dict[tuple[int, str], int] = {}
        for c in counts:
            if c.messages:
                sums[(c.channel_id, c.day)] = sums.get((c.channel_id, c.day), 0) + c.messages
        for (channel, day), messages in sums.items():
            if day < self.keep_from:
                continue
            record = self.days.setdefault(channel, {}).setdefault(day, [0, 0, 0])
            if op_id > record[slot]:
                record[0] += messages
                record[slot] = op_id

    def covers(self, since: str) -> bool:
        return since >= self.keep_from

    def totals(self, since: str, until: str) -> dict[int, int]:
        """Messages per channel from `since` to `until` (inclusive; channels without any absent)."""
        found: dict[int, int] = {}
        for channel, days in self.days.items():
            total = sum(record[0] for day, record in days.items() if since <= day <= until)
            if total > 0:
                found[channel] = total
        return found


@dataclass
class _Build:
    channels: GuildChannels
    notes: list[tuple[list[ChannelCount], int, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class ChannelStats(GuildBuilds[_Build, GuildChannels]):
    """Every guild's messages per channel and day: built in the background, kept current by notes."""

    what = "channel stats"

    def __init__(self, activity: ActivityRepository, clock: Clock,
                 active: Callable[[], bool] = lambda: True, batch: int = SCAN_BATCH) -> None:
        super().__init__(active)
        self.activity = activity
        self.clock = clock
        self.batch = batch

    def _keep_from(self) -> str:
        return (self.clock.now().astimezone(UTC).date() - timedelta(days=KEEP_DAYS - 1)).isoformat()

    def _new_build(self, guild_id: int) -> _Build:
        return _Build(GuildChannels(guild_id, self._keep_from()))

    def _start_over(self, guild_id: int, build: _Build) -> None:
        build.channels, build.notes = GuildChannels(guild_id, self._keep_from()), []

    async def _build(self, guild_id: int, build: _Build) -> None:
        writer = self.activity.writer
        while writer.draining:  # noted writes kept in the outbox are not in MongoDB yet
            await writer.wait_drained()
        build.notes.clear()  # from here on the read sees, or the notes hold, every write
        table = build.channels
        docs = 0
        async for rows in self.activity.channel_scan(guild_id, table.keep_from, self.batch):
            table.load(rows)
            docs += len(rows)
            await asyncio.sleep(0)
        for counts, op_id, guard in build.notes:  # notes arriving meanwhile are appended: applied too
            table.apply(counts, op_id, guard)
        self._done(guild_id, table)
        log.info("channel stats of guild %s built: %d documents, %d channels", guild_id, docs,
                 len(table.days))

    # ---- the write path -------------------------------------------------------------------
    def note(self, counts: Iterable[ChannelCount], op_id: OpId, guard: str) -> None:
        """A counting write returned (acknowledged by MongoDB or kept in the outbox)."""
        by_guild: dict[int, list[ChannelCount]] = {}
        for c in counts:
            by_guild.setdefault(c.guild_id, []).append(c)
        for guild_id, guild_counts in by_guild.items():
            if not isinstance(op_id, int):  # an intent of a version before sequences: read MongoDB again
                if guild_id in self._ready or guild_id in self._builds:
                    self.rebuild(guild_id)
                continue
            ready = self._ready.get(guild_id)
            if ready is not None:
                ready.apply(guild_counts, op_id, guard)
            build = self._builds.get(guild_id)
            if build is not None:
                build.notes.append((guild_counts, op_id, guard))

    # ---- reads (only when `covers`) --------------------------------------------------------
    def covers(self, guild_id: int, since: str) -> bool:
        return self.ready(guild_id) and self._ready[guild_id].covers(since)

    def totals(self, guild_id: int, since: str, until: str) -> dict[int, int]:
        """Messages per channel of the guild from `since` to `until` (`/server stats`)."""
        return self._ready[guild_id].totals(since, until)
