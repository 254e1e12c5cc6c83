"""Builds every repository on one database; the bot and the tools share this wiring."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

from app.retry import RetryPolicy
from repositories.activity import ActivityRepository
from repositories.base import Repository
from repositories.guild_settings import GuildSettingsRepository
from repositories.lifecycle import LifecycleRepository
from repositories.probe import ProbeRepository
from repositories.voice_sessions import VoiceSessionRepository

log = logging.getLogger(__name__)


@dataclass
class Repositories:
    probe: ProbeRepository
    lifecycle: LifecycleRepository
    guild_settings: GuildSettingsRepository
    activity: ActivityRepository
    voice_sessions: VoiceSessionRepository

    @classmethod
    def create(cls, db: Any, policy: RetryPolicy) -> Repositories:
        return cls(
            probe=ProbeRepository(db, policy),
            lifecycle=LifecycleRepository(db, policy),
            guild_settings=GuildSettingsRepository(db, policy),
            activity=ActivityRepository(db, policy),
            voice_sessions=VoiceSessionRepository(db, policy),
        )

    def all(self) -> list[Repository]:
        return [getattr(self, f.name) for f in fields(self)]

    async def ensure_indexes(self) -> None:
        for repo in self.all():
            await repo.ensure_indexes()
        log.info("indexes ensured on %d collections", len(self.all()))
