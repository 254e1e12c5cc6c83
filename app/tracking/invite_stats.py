"""Invite figures per member and leaderboards, read from `joins` and `invite_bonus`.

total = regular - left - fake + bonus, where for the members credited to an inviter (the first
join of each member, attributed to one of the inviter's invites, not cleared by a reset):
regular = all of them, fake = those flagged fake, left = the non-fake ones no longer in the guild.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.tracking.invite_boards import InviteBoards
from repositories.invite_bonus import InviteBonusRepository
from repositories.joins import InviterCounts, JoinRepository


@dataclass(frozen=True)
class InviteSummary:
    member_id: int
    regular: int = 0
    left: int = 0
    fake: int = 0
    bonus: int = 0

    @property
    def total(self) -> int:
        return self.regular - self.left - self.fake + self.bonus


class InviteStats:
    """Answered from the invite boards in memory when the guild's are built (this process counts),
    else from the aggregations over `joins` (the same figures: a test holds them equal)."""

    def __init__(self, joins: JoinRepository, bonus: InviteBonusRepository,
                 boards: InviteBoards | None = None) -> None:
        self.joins = joins
        self.bonus = bonus
        self.boards = boards

    def _boards(self, guild_id: int) -> InviteBoards | None:
        return self.boards if self.boards is not None and self.boards.ready(guild_id) else None

    async def member_summary(self, guild_id: int, member_id: int,
                             since: datetime | None = None) -> InviteSummary:
        """A member's invite figures: all time, or (`since`) their row of that period's leaderboard,
        members brought in from then on and no bonus (a bonus has no date)."""
        boards = self._boards(guild_id)
        if boards is not None:
            counts, bonus = await boards.counts(guild_id, member_id, since)
            return _summary(member_id, counts, bonus if since is None else 0)
        counts = (await self.joins.counts(guild_id, since=since, inviter_id=member_id)
                  ).get(member_id, InviterCounts())
        bonus = await self.bonus.get(guild_id, member_id) if since is None else 0
        return _summary(member_id, counts, bonus)

    async def leaderboard(self, guild_id: int, since: datetime | None = None) -> list[InviteSummary]:
        """Everyone with invite figures, best total first (ties: more regular, then lower id).

        With `since`, only members brought in from then on count, and bonus (which has no date)
        is left out. From the aggregations, always (the reference the boards are held to).
        """
        counts = await self.joins.counts(guild_id, since=since)
        bonuses = await self.bonus.all(guild_id) if since is None else {}
        rows = [
            _summary(member_id, counts.get(member_id, InviterCounts()), bonuses.get(member_id, 0))
            for member_id in set(counts) | set(bonuses)
        ]
        return sorted(rows, key=lambda r: (-r.total, -r.regular, r.member_id))

    async def leaderboard_page(self, guild_id: int, since: datetime | None, skip: int,
                               limit: int) -> tuple[list[InviteSummary], int]:
        """The leaderboard's rows `skip` to `skip + limit`, and how many rows it has."""
        boards = self._boards(guild_id)
        if boards is not None:
            rows, count = await boards.page(guild_id, since, skip, limit)
            return [_summary(m, counts, bonus) for m, counts, bonus in rows], count
        everyone = await self.leaderboard(guild_id, since)
        return everyone[skip: skip + limit], len(everyone)


def _summary(member_id: int, counts: InviterCounts, bonus: int) -> InviteSummary:
    return InviteSummary(member_id, counts.regular, counts.left, counts.fake, bonus)
