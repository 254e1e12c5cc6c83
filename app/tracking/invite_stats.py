"""Invite figures per member and leaderboards, read from `joins` and `invite_bonus`.

total = regular - left - fake + bonus, where for the members credited to an inviter (the first
join of each member, attributed to one of the inviter's invites, not cleared by a reset):
regular = all of them, fake = those flagged fake, left = the non-fake ones no longer in the guild.

Retention (`app/tracking/retention.py`): of the regular members of an inviter or a code, how many
stayed 1, 7 and 30 days, at a given moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.tracking.invite_boards import InviteBoards
from app.tracking.retention import (
    BOARD_HORIZON,
    Horizon,
    Retention,
    RetentionView,
    retained_order,
    view_of,
    views_by,
)
from app.wiring.clock import to_ms
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
                               limit: int, *, retained_at: datetime | None = None,
                               ) -> tuple[list[InviteSummary], int]:
        """The leaderboard's rows `skip` to `skip + limit`, and how many rows it has. With
        `retained_at` (`sort: retained_30d`) the same rows, ordered by how many of the members
        brought in during the period had stayed 30 days at that moment, then as usual."""
        boards = self._boards(guild_id)
        if boards is not None and retained_at is None:
            rows, count = await boards.page(guild_id, since, skip, limit)
            return [_summary(m, counts, bonus) for m, counts, bonus in rows], count
        if boards is not None and retained_at is not None:
            invites = await boards.guild(guild_id)
            since_ms = to_ms(since) if since is not None else None
            rows, count = invites.retained_page(since_ms, to_ms(retained_at), BOARD_HORIZON, skip, limit)
            return [_summary(m, counts, bonus) for m, counts, bonus in rows], count
        everyone = await self.leaderboard(guild_id, since)
        if retained_at is not None:
            stayed = await self._retained_by_inviter(guild_id, since, retained_at)
            everyone.sort(key=lambda r: -stayed.get(r.member_id, 0))  # stable: ties keep the order
        return everyone[skip: skip + limit], len(everyone)

    async def _retained_by_inviter(self, guild_id: int, since: datetime | None,
                                   now: datetime) -> dict[int, int]:
        views = await self._period_views(guild_id, since, now)
        return {int(m): v.retention.horizon(BOARD_HORIZON).stayed for m, v in views.items()}

    async def _period_views(self, guild_id: int, since: datetime | None,
                            now: datetime) -> dict[int, RetentionView]:
        docs = await self.joins.credited_stays(guild_id)
        if since is not None:
            docs = [d for d in docs if d["joined_ms"] >= to_ms(since)]
        return views_by(docs, to_ms(now), "credit_to")

    async def retained(self, guild_id: int, since: datetime | None, now: datetime,
                       inviter_ids: list[int]) -> dict[int, Horizon]:
        """For `sort: retained_30d`: of the members each inviter brought in during the period, how
        many had stayed 30 days at `now`."""
        boards = self._boards(guild_id)
        if boards is not None:
            invites = await boards.guild(guild_id)
            since_ms, now_ms = (to_ms(since) if since is not None else None), to_ms(now)
            return {m: invites.inviter_retention(m, now_ms, since_ms).horizon(BOARD_HORIZON)
                    for m in inviter_ids}
        views = await self._period_views(guild_id, since, now)
        empty = RetentionView(Retention())
        return {m: views.get(m, empty).retention.horizon(BOARD_HORIZON) for m in inviter_ids}

    # ---- retention (app.tracking.retention) --------------------------------------------------
    async def retention(self, guild_id: int, now: datetime, *, inviter_id: int | None = None,
                        code: str | None = None) -> RetentionView:
        """The retention of an inviter's members, a code's, or one inviter's through one code, at
        `now`: from the boards when built, else one read of the credited joins (`credited_stays`)."""
        boards = self._boards(guild_id)
        if boards is not None:
            return (await boards.guild(guild_id)).retention_view(inviter_id, code, to_ms(now))
        docs = await self.joins.credited_stays(guild_id, inviter_id=inviter_id, code=code)
        return view_of(docs, to_ms(now))

    async def retention_board(self, guild_id: int, now: datetime, skip: int,
                              limit: int) -> tuple[list[tuple[int, RetentionView]], int]:
        """Inviters ordered by members retained 30 days (`retained_order`): rows `skip` to
        `skip + limit` with their members, and how many rows there are."""
        now_ms = to_ms(now)
        boards = self._boards(guild_id)
        if boards is not None:
            invites = await boards.guild(guild_id)
            board = invites.retention_board(now_ms)
            page = [(m, invites.retention_view(m, None, now_ms)) for m, _ in board[skip: skip + limit]]
            return page, len(board)
        views = views_by(await self.joins.credited_stays(guild_id), now_ms, "credit_to")
        rows = sorted(views.items(), key=lambda row: retained_order(row[0], row[1].retention))
        return rows[skip: skip + limit], len(rows)

    async def retention_by_code(self, guild_id: int, now: datetime,
                                inviter_id: int) -> list[tuple[str, RetentionView]]:
        """One inviter's retention per code, most members brought in first (then by code)."""
        now_ms = to_ms(now)
        boards = self._boards(guild_id)
        if boards is not None:
            invites = await boards.guild(guild_id)
            rows = [(c, invites.retention_view(inviter_id, c, now_ms)) for c in invites.codes(inviter_id)]
        else:
            docs = await self.joins.credited_stays(guild_id, inviter_id=inviter_id)
            rows = list(views_by(docs, now_ms, "code").items())
        return sorted(rows, key=lambda row: (-row[1].retention.brought_in, row[0]))


def _summary(member_id: int, counts: InviterCounts, bonus: int) -> InviteSummary:
    return InviteSummary(member_id, counts.regular, counts.left, counts.fake, bonus)
