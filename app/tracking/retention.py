"""Invite retention, as pure functions: of the members an inviter (or a code) brought in, how many
stayed at least 1, 7 and 30 days, and the median activity of those members.

The members counted are those the invite figures count as "regular" (`docs/invites.md`): first
joins credited to an inviter and not cleared by a reset (fake ones included; rejoins and joins
credited to nobody never count). For each of them and each horizon of N days:

- **stayed**: still present (`member_status: present`, which a rejoin restores) and joined at least
  N days ago, or left (`member_status: left`) with the stay their credited join began lasting at
  least N days (`left_ms - joined_ms`);
- **did not stay**: left after less than N days;
- **not yet known**: still present and joined less than N days ago, or left at a time never
  recorded (joins imported from an old bot). Left out of that horizon's denominator.

N days are N * 86,400 s, compared in epoch milliseconds (`joined_ms` is Discord's join time).
No I/O here: the invite boards in memory keep the same outcome incrementally
(`app/tracking/invite_boards.py`) and a test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from repositories.activity import Counters

DAY_MS = 86_400_000
HORIZONS = (1, 7, 30)
BOARD_HORIZON = 30  # `/invites retention` ranks inviters by this horizon's retained count


@dataclass(frozen=True)
class Stay:
    """One credited member as retention sees them."""

    member_id: int
    joined_ms: int
    left_ms: int | None  # when the stay their credited join began ended (None: not recorded)
    present: bool  # `member_status` is present (a rejoin counts as here again)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Stay:
        left_ms = doc.get("left_ms")
        return cls(int(doc["member_id"]), int(doc["joined_ms"]),
                   int(left_ms) if left_ms is not None else None,
                   doc.get("member_status") != "left")

    def stayed(self, days: int, now_ms: int) -> bool | None:
        """True / False whether they stayed `days` days; None: not known yet."""
        span = days * DAY_MS
        if self.present:
            return True if now_ms - self.joined_ms >= span else None
        if self.left_ms is None:
            return None
        return self.left_ms - self.joined_ms >= span


@dataclass(frozen=True)
class Horizon:
    """One horizon's figures: `stayed` of `known` members stayed `days` days; `pending` are not
    known yet (left out of `known`)."""

    days: int
    stayed: int = 0
    known: int = 0
    pending: int = 0

    def __add__(self, other: Horizon) -> Horizon:
        return Horizon(self.days, self.stayed + other.stayed, self.known + other.known,
                       self.pending + other.pending)


@dataclass(frozen=True)
class Retention:
    """The figures of one group of credited members (an inviter's, a code's)."""

    brought_in: int = 0
    horizons: tuple[Horizon, ...] = tuple(Horizon(d) for d in HORIZONS)

    def horizon(self, days: int) -> Horizon:
        return next(h for h in self.horizons if h.days == days)

    def __add__(self, other: Retention) -> Retention:
        return Retention(self.brought_in + other.brought_in,
                         tuple(a + b for a, b in zip(self.horizons, other.horizons, strict=True)))


def retention_of(stays: Iterable[Stay], now_ms: int, horizons: Sequence[int] = HORIZONS) -> Retention:
    """The figures of `stays` at `now_ms`."""
    listed = list(stays)
    figures = []
    for days in horizons:
        outcomes = [stay.stayed(days, now_ms) for stay in listed]
        known = [o for o in outcomes if o is not None]
        figures.append(Horizon(days, sum(known), len(known), len(outcomes) - len(known)))
    return Retention(len(listed), tuple(figures))


def retained_order(member_id: int, retention: Retention) -> tuple[int, ...]:
    """The retention board's order: 30-day retained count, then 7-day, then 1-day, then members
    brought in, highest first, then member id."""
    return (*(-retention.horizon(d).stayed for d in sorted(HORIZONS, reverse=True)),
            -retention.brought_in, member_id)


# ---- median activity -----------------------------------------------------------------------------
def median(values: Iterable[int]) -> int:
    """The middle value; with an even count the mean of the two middle ones, rounded down; 0 for none."""
    ordered = sorted(values)
    if not ordered:
        return 0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2


@dataclass(frozen=True)
class Medians:
    """The median all-time messages and voice seconds of `members` members."""

    members: int = 0
    messages: int = 0
    voice_s: int = 0


def medians_of(counters: Sequence[Counters]) -> Medians:
    return Medians(len(counters), median(c.messages for c in counters), median(c.voice_s for c in counters))


@dataclass(frozen=True)
class RetentionView:
    """What `/invites retention` shows for one group: its figures, its members (for the medians)
    and the inviters credited (a code's: whose figures they are)."""

    retention: Retention
    members: tuple[int, ...] = ()
    inviters: frozenset[int] = field(default_factory=frozenset)


def views_by(docs: Iterable[dict[str, Any]], now_ms: int, key: str) -> dict[Any, RetentionView]:
    """Credited join documents (`credit_to`, `code`, `member_id`, `joined_ms`, `member_status`,
    `left_ms`) grouped by the field `key` (`credit_to`: per inviter, `code`: per code): the
    from-scratch computation the invite boards are held to."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for doc in docs:
        group = doc.get(key) or ("" if key == "code" else 0)
        groups.setdefault(group, []).append(doc)
    return {group: view_of(members, now_ms) for group, members in groups.items()}


def view_of(docs: Sequence[dict[str, Any]], now_ms: int) -> RetentionView:
    return RetentionView(retention_of((Stay.of(d) for d in docs), now_ms),
                         tuple(sorted(int(d["member_id"]) for d in docs)),
                         frozenset(int(d["credit_to"]) for d in docs))
