"""Per-guild settings (`guild_settings`): one document per guild, defaults applied on read, validated
on write, cached, and every change recorded in `guild_settings_history` (who, when, old, new).

Only the fields a guild changed are stored; everything else comes from `GuildConfig`'s defaults,
so a new default reaches every guild that never set that field. The bot is the only writer, so
its cache is refreshed by its own writes.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from app.storage.retry import with_retry
from repositories.base import Repository

PLACEHOLDERS = (
    "member", "member_name", "inviter", "inviter_name", "code", "invites", "source", "account_age",
)
TEMPLATE_MAX = 500
FAKE_LEFT_MAX_SECONDS = 7 * 86400
STREAK_MAX_MESSAGES = 1000
STREAK_MAX_VOICE_MINUTES = 1440  # a whole day
BOOLEAN_SETTINGS = ("count_self_deafened", "members_view_others", "mention_member", "fake_repeat_joiner")
DEFAULT_JOIN_TEMPLATE = "{member} joined; invited by {inviter} ({source}, code {code}; {invites} invites)"
DEFAULT_LEAVE_TEMPLATE = "{member_name} left; they were invited by {inviter_name} ({invites} invites)"


class SettingError(ValueError):
    """A setting value is not allowed; the message names the setting and what is allowed."""


def check_template(name: str, template: str) -> str:
    """Only the known placeholders, no format specs or attribute access; `{{` `}}` for braces."""
    if len(template) > TEMPLATE_MAX:
        raise SettingError(f"{name}: at most {TEMPLATE_MAX} characters")
    try:
        parts = list(Formatter().parse(template))
    except ValueError:
        raise SettingError(f"{name}: unbalanced braces (write {{{{ or }}}} for a literal brace)") from None
    for _, placeholder, spec, conversion in parts:
        if placeholder is None:
            continue
        if placeholder not in PLACEHOLDERS or spec or conversion:
            allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise SettingError(f"{name}: unknown placeholder {{{placeholder}}}; allowed: {allowed}")
    return template


def check_time_zone(value: str) -> str:
    if value not in available_timezones():
        raise SettingError(f"time_zone: {value!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"time_zone: {value!r} is not an IANA time zone") from None
    return value


def _bounded(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not (low <= value <= high):
        raise SettingError(f"{name}: must be between {low} and {high}")


@dataclass(frozen=True)
class GuildConfig:
    guild_id: int
    time_zone: str = "UTC"
    ignored_channels: frozenset[int] = field(default_factory=frozenset)
    count_self_deafened: bool = True
    fake_account_days: int = 3
    fake_left_within_seconds: int = 0  # a member who leaves this soon after joining is fake (0: off)
    fake_repeat_joiner: bool = False  # a member's later joins (rejoins) are fake
    conversion_role: int | None = None
    members_view_others: bool = True
    voice_downtime_cap_seconds: int | None = None  # None: the VOICE_DOWNTIME_CAP_SECONDS setting
    announcement_channel: int | None = None
    join_template: str = DEFAULT_JOIN_TEMPLATE
    leave_template: str = DEFAULT_LEAVE_TEMPLATE
    mention_member: bool = False
    # A day counts towards a streak with this many messages OR voice minutes (0: not a criterion;
    # both 0: any activity counts). See app/tracking/streaks.py.
    streak_min_messages: int = 1
    streak_min_voice_minutes: int = 0

    def validate(self) -> GuildConfig:
        check_time_zone(self.time_zone)
        _bounded("fake_account_days", self.fake_account_days, 0, 365)
        _bounded("fake_left_within_seconds", self.fake_left_within_seconds, 0, FAKE_LEFT_MAX_SECONDS)
        _bounded("voice_downtime_cap_seconds", self.voice_downtime_cap_seconds, 0, 86400)
        _bounded("streak_min_messages", self.streak_min_messages, 0, STREAK_MAX_MESSAGES)
        _bounded("streak_min_voice_minutes", self.streak_min_voice_minutes, 0, STREAK_MAX_VOICE_MINUTES)
        check_template("join_template", self.join_template)
        check_template("leave_template", self.leave_template)
        if len(self.ignored_channels) > 500:
            raise SettingError("ignored_channels: at most 500 channels")
        return self

    @classmethod
    def from_document(cls, guild_id: int, doc: dict[str, Any] | None) -> GuildConfig:
        known = {f.name: f for f in fields(cls) if f.name != "guild_id"}
        values: dict[str, Any] = {}
        for name, stored in (doc or {}).items():
            if name not in known:
                continue
            if name == "ignored_channels":
                values[name] = frozenset(int(c) for c in stored)
            elif name in BOOLEAN_SETTINGS:
                values[name] = bool(stored)  # nx-27017 reads a $set boolean back as 0/1
            else:
                values[name] = stored
        return cls(guild_id=guild_id, **values)

    def to_document(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "guild_id"}
        doc["ignored_channels"] = sorted(self.ignored_channels)
        return doc


SETTING_NAMES = tuple(f.name for f in fields(GuildConfig) if f.name != "guild_id")


class GuildSettingsRepository(Repository):
    collection_name = "guild_settings"

    def __init__(self, db: Any, policy: Any = None) -> None:
        super().__init__(db, policy)
        self.history = db["guild_settings_history"]
        self._cache: dict[int, GuildConfig] = {}

    async def ensure_indexes(self) -> None:
        await super().ensure_indexes()
        await with_retry(
            "create indexes on guild_settings_history",
            lambda: self.history.create_indexes(
                [IndexModel([("guild_id", ASCENDING), ("at", DESCENDING)])]
            ),
            self.policy,
        )

    async def get(self, guild_id: int) -> GuildConfig:
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached
        doc = await with_retry(
            "read guild settings", lambda: self.collection.find_one({"_id": guild_id}), self.policy
        )
        config = GuildConfig.from_document(guild_id, doc)
        self._cache[guild_id] = config
        return config

    def forget(self, guild_id: int | None = None) -> None:
        """Drop cached settings (all guilds when None); the next read goes to MongoDB."""
        if guild_id is None:
            self._cache.clear()
        else:
            self._cache.pop(guild_id, None)

    async def set_fields(self, guild_id: int, *, by: int | None = None, at: datetime | None = None,
                         **changes: Any) -> GuildConfig:
        """Validate and store the given fields, record each change, refresh the cache."""
        unknown = set(changes) - set(SETTING_NAMES)
        if unknown:
            raise SettingError(f"unknown setting {sorted(unknown)[0]}")
        current = await self.get(guild_id)
        updated = replace(current, **changes).validate()
        new_doc, old_doc = updated.to_document(), current.to_document()
        stored = {k: v for k, v in new_doc.items() if k in changes}
        await with_retry(
            "write guild settings",
            lambda: self.collection.update_one(
                {"_id": guild_id}, {"$set": {**stored, "guild_id": guild_id}}, upsert=True
            ),
            self.policy,
        )
        self._cache[guild_id] = updated
        for name, value in stored.items():
            if old_doc[name] != value:
                await self._record(guild_id, name, old_doc[name], value, by, at)
        return updated

    async def _record(self, guild_id: int, name: str, old: Any, new: Any, by: int | None,
                      at: datetime | None) -> None:
        entry = {"_id": uuid.uuid4().hex, "guild_id": guild_id, "setting": name, "old": old, "new": new,
                 "by": by, "at": at}

        async def insert() -> None:
            with contextlib.suppress(DuplicateKeyError):  # the first attempt landed, its reply was lost
                await self.history.insert_one(entry)

        await with_retry("record a settings change", insert, self.policy)

    async def changes(self, guild_id: int, limit: int = 20) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            cursor = self.history.find({"guild_id": guild_id}).sort("at", DESCENDING).limit(limit)
            return [doc async for doc in cursor]

        return await with_retry("read settings history", read, self.policy)
