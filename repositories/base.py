"""The base of every repository: one collection, the retry policy, the writer, indexes it owns.

Writes that must survive a MongoDB outage go through `self.writer` (`app.storage.writes.Writer`): while
MongoDB answers they are applied at once; while it does not, the bot's writer keeps them in the
durable outbox and replays them in order. Reads go to MongoDB directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, ClassVar, TypeVar

from pymongo import IndexModel

from app.storage.retry import GuardedUpdate, OpId, RetryPolicy, with_retry
from app.storage.writes import Op, Write, Writer

T = TypeVar("T")


async def in_batches(items: AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    """A cursor's documents in lists of up to `size` (for one-pass scans that yield to the loop
    between lists)."""
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Repository:
    """One MongoDB collection. Subclasses set `collection_name` and `indexes`."""

    collection_name: ClassVar[str]
    indexes: ClassVar[tuple[IndexModel, ...]] = ()

    def __init__(self, db: Any, policy: RetryPolicy | None = None, writer: Writer | None = None) -> None:
        self.db = db
        self.collection = db[self.collection_name]
        self.policy = policy or RetryPolicy()
        self.writer = writer or Writer(db, self.policy)

    async def guarded(self, items: Sequence[GuardedUpdate], op_id: OpId, guard: str, what: str) -> None:
        """Counting updates on this collection, exactly once under `op_id`, outage-proof."""
        if items:
            await self.writer.submit([Write.guarded(self.collection_name, items, op_id, guard)], what)

    async def idempotent(self, ops: Sequence[Op], what: str) -> None:
        """Idempotent operations on this collection (one unordered bulk write), outage-proof."""
        if ops:
            await self.writer.submit([Write.bulk(self.collection_name, ops)], what)

    async def aggregate(self, pipeline: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        """The rows of an aggregation on this collection, with bounded retries of transient errors."""

        async def run() -> list[dict[str, Any]]:
            cursor = await self.collection.aggregate(pipeline)
            return [row async for row in cursor]

        return await with_retry(what, run, self.policy)

    async def ensure_indexes(self) -> None:
        if self.indexes:
            await with_retry(
                f"create indexes on {self.collection_name}",
                lambda: self.collection.create_indexes(list(self.indexes)),
                self.policy,
            )
