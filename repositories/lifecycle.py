"""When this bot last started and last shut down cleanly (tells a crash from a redeploy), and what
it last reported about its outbox (`_id: "status"`, for `scripts/mongosh/outbox_lag.js`)."""

from __future__ import annotations

from typing import Any

from app.storage.retry import with_retry
from app.wiring.clock import to_ms
from repositories.base import Repository


class LifecycleRepository(Repository):
    collection_name = "lifecycle"
    KEY = "bot"

    async def load(self) -> dict[str, Any]:
        doc = await with_retry(
            "read lifecycle", lambda: self.collection.find_one({"_id": self.KEY}), self.policy
        )
        doc = doc or {}
        if "running" in doc:
            doc["running"] = bool(doc["running"])  # nx-27017 reads a $set boolean back as 0/1
        return doc

    async def mark_started(self, at: Any, version: str) -> None:
        await self._set({"started_at_ms": to_ms(at), "version": version, "running": True})

    async def mark_clean_shutdown(self, at: Any) -> None:
        await self._set({"clean_shutdown_at_ms": to_ms(at), "running": False})

    async def report_status(self, at: Any, outbox_depth: int, oldest_waiting_ms: int | None) -> None:
        """Written every minute while MongoDB answers: an operator can see a backlog from mongosh."""
        await self.collection.update_one(
            {"_id": "status"},
            {"$set": {"reported_ms": to_ms(at), "outbox_depth": outbox_depth,
                      "oldest_waiting_ms": oldest_waiting_ms}},
            upsert=True,
        )

    async def _set(self, fields: dict[str, Any]) -> None:
        await with_retry(
            "write lifecycle",
            lambda: self.collection.update_one({"_id": self.KEY}, {"$set": fields}, upsert=True),
            self.policy,
        )
