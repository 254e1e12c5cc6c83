"""The lease (`lease`, `_id: "bot"`): which process may count. One document per database.

Fields: `token` (int64, +1 at every take-over: the fencing token), `holder` (the holding process,
`host:pid:random`; "" once released), `data_dir` (the holder's DATA_DIR id), `renewed_ms` (the
holder's last renewal, epoch ms of the holder's clock; standbys only compare it for change).
Every write is a compare-and-set on the document as last seen, so two processes never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.storage.retry import RetryPolicy, with_retry
from repositories.base import Repository

LEASE_POLICY = RetryPolicy(attempts=2, max_seconds=2.0, initial_wait=0.05, max_wait=0.2)


@dataclass(frozen=True)
class LeaseState:
    token: int
    holder: str
    data_dir: str
    renewed_ms: int

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> LeaseState:
        return cls(int(doc["token"]), str(doc.get("holder") or ""), str(doc.get("data_dir") or ""),
                   int(doc.get("renewed_ms") or 0))


class LeaseRepository(Repository):
    collection_name = "lease"
    KEY = "bot"

    async def read(self) -> LeaseState | None:
        doc = await with_retry("read the lease", lambda: self.collection.find_one({"_id": self.KEY}),
                               LEASE_POLICY)
        return LeaseState.from_document(doc) if doc else None

    async def take(self, seen: LeaseState | None, holder: str, data_dir: str, now_ms: int) -> int | None:
        """Take the lease if it is still as `seen` (None: no lease yet); the new token, or None when
        another process changed it first. A lost reply reads as None: callers read it back."""
        fields = {"holder": holder, "data_dir": data_dir, "renewed_ms": now_ms}
        if seen is None:
            try:
                await self.collection.insert_one({"_id": self.KEY, "token": 1, **fields})
            except DuplicateKeyError:
                return None
            return 1
        result = await self.collection.update_one(
            {"_id": self.KEY, "token": seen.token, "renewed_ms": seen.renewed_ms},
            {"$set": fields, "$inc": {"token": 1}},
        )
        return seen.token + 1 if result.matched_count == 1 else None

    async def renew(self, holder: str, token: int, now_ms: int) -> bool:
        """False when the lease is no longer this process's (another took it over)."""
        result = await self.collection.update_one(
            {"_id": self.KEY, "token": token, "holder": holder}, {"$set": {"renewed_ms": now_ms}}
        )
        return result.matched_count == 1

    async def release(self, holder: str, token: int, now_ms: int) -> None:
        await self.collection.update_one(
            {"_id": self.KEY, "token": token, "holder": holder},
            {"$set": {"holder": "", "renewed_ms": now_ms}},
        )
