"""Per-guild settings (`guild_settings`): one document per guild, defaults applied on read.

Only the fields a guild changed are stored; everything else comes from `GuildConfig`'s defaults,
so a new default reaches every guild that never set that field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from app.retry import with_retry
from repositories.base import Repository


@dataclass(frozen=True)
class GuildConfig:
    guild_id: int
    time_zone: str = "UTC"
    ignored_channels: frozenset[int] = field(default_factory=frozenset)
    count_self_deafened: bool = True
    fake_account_days: int = 3
    conversion_role: int | None = None
    members_view_others: bool = True
    voice_downtime_cap_seconds: int | None = None  # None: the VOICE_DOWNTIME_CAP_SECONDS setting

    @classmethod
    def from_document(cls, guild_id: int, doc: dict[str, Any] | None) -> GuildConfig:
        known = {f.name for f in fields(cls)} - {"guild_id"}
        values = {k: v for k, v in (doc or {}).items() if k in known}
        if "ignored_channels" in values:
            values["ignored_channels"] = frozenset(int(c) for c in values["ignored_channels"])
        return cls(guild_id=guild_id, **values)

    def to_document(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "guild_id"}
        doc["ignored_channels"] = sorted(self.ignored_channels)
        return doc


class GuildSettingsRepository(Repository):
    collection_name = "guild_settings"

    async def get(self, guild_id: int) -> GuildConfig:
        doc = await with_retry(
            "read guild settings", lambda: self.collection.find_one({"_id": guild_id}), self.policy
        )
        return GuildConfig.from_document(guild_id, doc)

    async def set_fields(self, guild_id: int, **changes: Any) -> GuildConfig:
        """Store the given fields (validated by constructing the config) and return the new config."""
        current = await self.get(guild_id)
        updated = replace(current, **changes)
        stored = {k: v for k, v in updated.to_document().items() if k in changes}
        await with_retry(
            "write guild settings",
            lambda: self.collection.update_one(
                {"_id": guild_id}, {"$set": {**stored, "guild_id": guild_id}}, upsert=True
            ),
            self.policy,
        )
        return updated
