"""Group commit of message counts: one writer, one guarded bulk write at a time, no timer.

`add()` puts a count in the pending table and wakes the writer. The writer takes everything
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

With a `Ledger` (issue 19), each batch also carries the channels' marks (highest message id
counted live) and the backfill ranges it closes, in the same bulk write; nothing is written
before the ledger has loaded the stored marks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.storage.retry import next_op_seq
from app.storage.writes import WriteRefused, WriterStopped
from app.tracking.backfill import Ledger
from repositories.activity import Credit

log = logging.getLogger(__name__)
Writer = Callable[..., Awaitable[None]]  # (credits, op_id) or, with a ledger, (credits, op_id, marks, ranges)
Written = Callable[[list[Credit], int], None]
SetAside = Callable[[WriteRefused, str], Awaitable[int | None]]  # Writer.set_aside
Refused = Callable[[list[Credit]], None]


class MessageCounter:
    def __init__(self, write: Writer, retry_delay: float = 1.0,
                 next_seq: Callable[[], int] = next_op_seq, ledger: Ledger | None = None,
                 on_written: Written | None = None, set_aside: SetAside | None = None,
                 on_refused: Refused | None = None) -> None:
        self._write = write
        self._set_aside = set_aside
        self._on_refused = on_refused  # told the credits of a batch kept aside (e.g. rebuild ranks)
        self.refused = 0  # batches kept aside
        self.ledger = ledger
        self._on_written = on_written  # told each batch once written (acknowledged or in the outbox)
        self._added = 0  # add() calls so far
        self._written = 0  # of which written (or given up)
        self._progress = asyncio.Condition()
        self._next_seq = next_seq
        self.retry_delay = retry_delay
        self._pending: dict[tuple[int, int, str], int] = {}
        self._batch: tuple[int, list[Credit], tuple[Any, ...], int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.writes = 0

    def add(self, guild_id: int, member_id: int, day: str, count: int = 1) -> None:
        key = (guild_id, member_id, day)
        self._pending[key] = self._pending.get(key, 0) + count
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

    def _take(self) -> tuple[int, list[Credit], tuple[Any, ...], int]:
        credits = [Credit(g, m, day, {"messages": n}) for (g, m, day), n in self._pending.items()]
        self._pending = {}
        extra: tuple[Any, ...] = self.ledger.take() if self.ledger is not None else ()
        return self._next_seq(), credits, extra, self._added

    async def _run(self) -> None:
        if self.ledger is not None:
            await self.ledger.loaded.wait()  # the stored marks first: live ids are partitioned by them
        while self._batch is not None or self._pending:
            if self._batch is None:
                self._batch = self._take()
            op_id, credits, extra, upto = self._batch
            try:
                await self._write(credits, op_id, *extra)
            except WriterStopped:
                log.error("message counts of %d member-day(s) arrived after the outbox closed; not kept",
                          len(credits))
                self._batch, self._pending = None, {}
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
