"""Builds every repository on one database; the bot and the tools share this wiring."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

from app.storage.retry import RetryPolicy
from app.storage.writes import Writer
from app.tracking.invite_boards import InviteBoards
from app.tracking.invite_stats import InviteStats
from repositories.activity import ActivityRepository
from repositories.base import Repository
from repositories.goals import GoalRepository
from repositories.guild_settings import GuildSettingsRepository
from repositories.invite_backups import InviteBackupRepository
from repositories.invite_bonus import InviteBonusRepository
from repositories.invites import InviteGuildStateRepository, InviteSnapshotRepository
from repositories.joins import JoinRepository
from repositories.lease import LeaseRepository
from repositories.lifecycle import LifecycleRepository
from repositories.probe import ProbeRepository
from repositories.reward_log import RewardLogRepository
from repositories.reward_rules import RewardRuleRepository
from repositories.seasons import SeasonRepository
from repositories.staff_codes import StaffCodeRepository
from repositories.voice_sessions import VoiceSessionRepository

log = logging.getLogger(__name__)


@dataclass
class Repositories:
    probe: ProbeRepository
    lifecycle: LifecycleRepository
    guild_settings: GuildSettingsRepository
    invites: InviteSnapshotRepository
    invite_guilds: InviteGuildStateRepository
    joins: JoinRepository
    invite_bonus: InviteBonusRepository
    staff_codes: StaffCodeRepository
    invite_backups: InviteBackupRepository
    activity: ActivityRepository
    voice_sessions: VoiceSessionRepository
    lease: LeaseRepository
    goals: GoalRepository
    reward_rules: RewardRuleRepository
    reward_log: RewardLogRepository
    seasons: SeasonRepository

    def __post_init__(self) -> None:
        # The invite figures in memory, set by the bot (app/wiring/bot.py); None: aggregations only.
        self.invite_boards: InviteBoards | None = None

    @classmethod
    def create(cls, db: Any, policy: RetryPolicy, writer: Writer | None = None) -> Repositories:
        """Every repository on `db`; event writes go through `writer` (the bot's outbox-backed one)."""
        writer = writer or Writer(db, policy)
        return cls(
            probe=ProbeRepository(db, policy),
            lifecycle=LifecycleRepository(db, policy, writer),
            guild_settings=GuildSettingsRepository(db, policy),
            invites=InviteSnapshotRepository(db, policy, writer),
            invite_guilds=InviteGuildStateRepository(db, policy, writer),
            joins=JoinRepository(db, policy, writer),
            invite_bonus=InviteBonusRepository(db, policy, writer),
            staff_codes=StaffCodeRepository(db, policy, writer),
            invite_backups=InviteBackupRepository(db, policy, writer),
            activity=ActivityRepository(db, policy, writer),
            voice_sessions=VoiceSessionRepository(db, policy, writer),
            lease=LeaseRepository(db, policy),
            goals=GoalRepository(db, policy, writer),
            reward_rules=RewardRuleRepository(db, policy, writer),
            reward_log=RewardLogRepository(db, policy, writer),
            seasons=SeasonRepository(db, policy, writer),
        )

    @property
    def invite_stats(self) -> InviteStats:
        """Invite figures (regular/left/fake/bonus/total) per member, and leaderboards."""
        return InviteStats(self.joins, self.invite_bonus, self.invite_boards)

    def all(self) -> list[Repository]:
        return [getattr(self, f.name) for f in fields(self)]

    async def ensure_indexes(self) -> None:
        for repo in self.all():
            await repo.ensure_indexes()
        log.info("indexes ensured on %d collections", len(self.all()))
