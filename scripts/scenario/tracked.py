"""What the bot stored, read through its own repositories (the same reads `/ud` and `/invites` use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.storage.retry import RetryPolicy
from app.wiring.container import Repositories
from scripts.scenario.truth import COUNTERS


@dataclass
class TrackedInvites:
    """Who invited whom (member -> inviter id, -1 vanity, None unknown) and counts per inviter."""

    inviter_of: dict[int, int | None] = field(default_factory=dict)
    source_of: dict[int, str] = field(default_factory=dict)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)

    def inviter_label(self, member_id: int, names: dict[int, str]) -> str | None:
        if member_id not in self.source_of:
            return None
        inviter = self.inviter_of.get(member_id)
        if self.source_of[member_id] == "vanity":
            return "vanity"
        if inviter is None:
            return "unknown"
        return names.get(inviter, str(inviter))


async def _read_activity(repos: Repositories, guild_id: int, member_ids: list[int],
                         ) -> dict[int, dict[str, int]]:
    tracked: dict[int, dict[str, int]] = {}
    for member_id in member_ids:
        counters = await repos.activity.member_counters(guild_id, member_id, None)
        tracked[member_id] = {name: int(getattr(counters, name)) for name in COUNTERS}
    return tracked


async def _read_invites(repos: Repositories, guild_id: int, member_ids: list[int]) -> TrackedInvites:
    invites = TrackedInvites()
    vanity_code = (await repos.invite_guilds.get(guild_id)).vanity_code
    for member_id in member_ids:
        first = await repos.joins.first_for_member(guild_id, member_id)
        if first is not None:
            through_vanity = first.code is not None and first.code == vanity_code
            # A join found after a downtime is recorded with source "downtime" and the vanity code.
            invites.source_of[member_id] = "vanity" if through_vanity else first.source
            invites.inviter_of[member_id] = first.inviter_id
    for row in await repos.invite_stats.leaderboard(guild_id):
        invites.counts[row.member_id] = {"regular": row.regular, "left": row.left, "fake": row.fake,
                                         "bonus": row.bonus, "total": row.total}
    return invites


async def read_channels(db: Any, guild_id: int, policy: RetryPolicy) -> dict[int, int]:
    """Messages per channel, all time (the same aggregation `/server stats` falls back to)."""
    return await Repositories.create(db, policy).activity.channel_totals(guild_id, None)


async def read_tracked(db: Any, guild_id: int, member_ids: list[int], policy: RetryPolicy,
                       ) -> tuple[dict[int, dict[str, int]], TrackedInvites]:
    repos = Repositories.create(db, policy)
    return await _read_activity(repos, guild_id, member_ids), await _read_invites(repos, guild_id, member_ids)
