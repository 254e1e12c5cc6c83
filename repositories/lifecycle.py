"""When this bot last started and last shut down cleanly (tells a crash from a redeploy)."""

from __future__ import annotations

from typing import Any

from app.clock import to_ms
from app.retry import with_retry
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

    async def _set(self, fields: dict[str, Any]) -> None:
        await with_retry(
            "write lifecycle",
            lambda: self.collection.update_one({"_id": self.KEY}, {"$set": fields}, upsert=True),
            self.policy,
        )
