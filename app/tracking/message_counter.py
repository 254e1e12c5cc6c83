"""Group commit of message counts: one writer, one guarded bulk write at a time, no timer.

`add()` puts a count in the pending tables (per member and day, and per channel and day) and wakes
the writer. The writer takes everything
pending as one batch under one operation sequence and writes it; events arriving meanwhile wait in the
table for the next write. A batch that failed is retried with the same operation id before any
newer one, so a write the server applied but never acknowledged is not counted again.

A batch MongoDB refuses for good (`WriteRefused`: e.g. an `$inc` that would pass the int64 range
of a counter) is not retried: with `set_aside` (the bot's `Writer.set_aside`) the whole unit is
kept in the outbox file's `dead` table for the operator, one error line names it, and counting goes
on with the next batch. An unordered bulk write applies every other document of the batch (other
guilds, other members); the unit replayed later under its guard would change only what was refused.
Without `set_aside`, or when the unit cannot be kept aside, the batch is retried as before: a
count is never dropped.

While the writer queues units in its outbox (MongoDB away or slow), the counter waits before taking
a batch (`catch_up`, the writer's `Writer.catch_up`) until the outbox is replayed or the oldest
pending event is `spill_after` old: the batches grow to what arrives meanwhile instead of one small
outbox entry per write, each replayed on its own, and no event waits longer than it would for a
write that spilled.

With a `Ledger` (issue 19), each batch also carries the channels' marks (highest message id
counted live) and the backfill ranges it closes, in the same bulk write; nothing is written
before the ledger has loaded the stored marks.

The channels' counts of a batch's messages (`ChannelCount`, the channel-day documents) go in the
same bulk write as the members' counts, under the same operation id: the writer gets them as its
`channels` keyword argument whenever the batch has any (events added with a `channel_id`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.storage.retry import next_op_seq
from app.storage.writes import WriteRefused, WriterStopped
from app.tracking.backfill import Ledger
from repositories.activity import ChannelCount, Credit

log = logging.getLogger(__name__)
Writer = Callable[..., Awaitable[None]]  # (credits, op_id) or, with a ledger, (credits, op_id, marks, ranges)
Written = Callable[[list[Credit], int], None]
ChannelsWritten = Callable[[list[ChannelCount], int], None]
SetAside = Callable[[WriteRefused, str], Awaitable[int | None]]  # Writer.set_aside
Refused = Callable[[list[Credit]], None]
CatchUp = Callable[[float], Awaitable[None]]  # Writer.catch_up


@dataclass(frozen=True)
class _Batch:
    op_id: int
    credits: list[Credit]
    channels: list[ChannelCount]
    extra: tuple[Any, ...]  # with a ledger: the marks and ranges
    upto: int  # add() calls it covers


class MessageCounter:
    def __init__(self, write: Writer, retry_delay: float = 1.0,
                 next_seq: Callable[[], int] = next_op_seq, ledger: Ledger | None = None,
                 on_written: Written | None = None, set_aside: SetAside | None = None,
                 on_refused: Refused | None = None,
                 on_channels_written: ChannelsWritten | None = None,
                 catch_up: CatchUp | None = None) -> None:
        self._write = write
        self._catch_up = catch_up
        self._first_pending = 0.0  # loop time when the oldest pending event arrived
        self._set_aside = set_aside
        self._on_refused = on_refused  # told the credits of a batch kept aside (e.g. rebuild ranks)
        self.refused = 0  # batches kept aside
        self.ledger = ledger
        self._on_written = on_written  # told each batch once written (acknowledged or in the outbox)
        self._on_channels_written = on_channels_written  # and its channels' counts (channel stats)
        self._added = 0  # add() calls so far
        self._written = 0  # of which written (or given up)
        self._progress = asyncio.Condition()
        self._next_seq = next_seq
        self.retry_delay = retry_delay
        self._pending: dict[tuple[int, int, str], int] = {}  # (guild, member, day)
        self._channels: dict[tuple[int, int, str], int] = {}  # (guild, channel, day)
        self._batch: _Batch | None = None
        self._task: asyncio.Task[None] | None = None
        self.writes = 0

    def add(self, guild_id: int, member_id: int, day: str, count: int = 1,
            channel_id: int | None = None) -> None:
        """Count `count` messages of the member on `day` (and of the channel, when given)."""
        key = (guild_id, member_id, day)
        if not self._pending:
            self._first_pending = asyncio.get_running_loop().time()
        self._pending[key] = self._pending.get(key, 0) + count
        if channel_id is not None:
            where = (guild_id, channel_id, day)
            self._channels[where] = self._channels.get(where, 0) + count
        self._added += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="message-counter")

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait_idle(self) -> None:
        """Until everything added so far is written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def barrier(self) -> None:
        """Until everything added before this call is written (later additions do not delay it)."""
        target = self._added
        async with self._progress:
            await self._progress.wait_for(lambda: self._written >= target)

    async def _mark_written(self, upto: int) -> None:
        async with self._progress:
            self._written = max(self._written, upto)
            self._progress.notify_all()

    def _take(self) -> _Batch:
        credits = [Credit(g, m, day, {"messages": n}) for (g, m, day), n in self._pending.items()]
        channels = [ChannelCount(g, c, day, n) for (g, c, day), n in self._channels.items()]
        self._pending, self._channels = {}, {}
        extra: tuple[Any, ...] = self.ledger.take() if self.ledger is not None else ()
        return _Batch(self._next_seq(), credits, channels, extra, self._added)

    async def _run(self) -> None:
        if self.ledger is not None:
            await self.ledger.loaded.wait()  # the stored marks first: live ids are partitioned by them
        while self._batch is not None or self._pending:
            if self._batch is None:
                if self._catch_up is not None:
                    await self._catch_up(self._first_pending)
                self._batch = self._take()
            batch = self._batch
            op_id, credits, upto = batch.op_id, batch.credits, batch.upto
            try:
                await self._write(credits, op_id, *batch.extra,
                                  **({"channels": batch.channels} if batch.channels else {}))
            except WriterStopped:
                log.error("message counts of %d member-day(s) arrived after the outbox closed; not kept",
                          len(credits))
                self._batch, self._pending, self._channels = None, {}, {}
                await self._mark_written(self._added)
                return
            except WriteRefused as refused:
                if await self._keep_aside(refused, credits):
                    self._batch = None
                    await self._mark_written(upto)
                    continue
                await asyncio.sleep(self.retry_delay)
                continue
            except Exception:
                log.exception("message counts (%d documents) not written yet; retrying the same batch",
                              len(credits))
                await asyncio.sleep(self.retry_delay)
                continue
            self._batch = None
            self.writes += 1
            if self._on_written is not None:
                self._on_written(credits, op_id)
            if self._on_channels_written is not None and batch.channels:
                self._on_channels_written(batch.channels, op_id)
            await self._mark_written(upto)

    async def _keep_aside(self, refused: WriteRefused, credits: list[Credit]) -> bool:
        """Keep a refused batch aside (True), or say why it is retried instead (False)."""
        guilds = sorted({c.guild_id for c in credits})
        detail = (f"{len(credits)} member-day message count(s) of guild(s) "
                  f"{', '.join(map(str, guilds[:10]))}{' ...' if len(guilds) > 10 else ''}")
        kept = await self._set_aside(refused, detail) if self._set_aside is not None else None
        if kept is None:
            log.error("message counts (%d documents) refused by MongoDB and not kept aside (%s); "
                      "retrying the same batch", len(credits), refused)
            return False
        self.refused += 1
        if self._on_refused is not None:
            self._on_refused(credits)
        return True
