"""The base of every repository: one collection, the retry policy, indexes it owns."""

from __future__ import annotations

from typing import Any, ClassVar

from pymongo import IndexModel

from app.retry import RetryPolicy, with_retry


class Repository:
    """One MongoDB collection. Subclasses set `collection_name` and `indexes`."""

    collection_name: ClassVar[str]
    indexes: ClassVar[tuple[IndexModel, ...]] = ()

    def __init__(self, db: Any, policy: RetryPolicy | None = None) -> None:
        self.db = db
        self.collection = db[self.collection_name]
        self.policy = policy or RetryPolicy()

    async def ensure_indexes(self) -> None:
        if self.indexes:
            await with_retry(
                f"create indexes on {self.collection_name}",
                lambda: self.collection.create_indexes(list(self.indexes)),
                self.policy,
            )
