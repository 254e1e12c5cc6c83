"""Invite attribution as pure functions: which invite a group of joiners came through.

Discord does not say which invite a member used. What it does say is every invite's use count
(`GET /guilds/{id}/invites`) and the vanity URL's (`GET /guilds/{id}/vanity-url`). Comparing the
stored snapshot with the live counts gives the *increases*; this module turns increases plus the
number of members who joined since the snapshot into an attribution, or refuses to guess.

The one rule, used both for live joins and for joins that happened while the bot was down:

    A group of N joiners (N >= 1) is attributed to code C exactly when the increases since the
    snapshot all fall on C and add up to N. Anything else (no increase, several codes, more or
    fewer uses than joiners) is `unknown` (no candidate) or `ambiguous` (the increased codes are
    kept as candidates). The bot never picks one of several candidates.

Why not "one increase each, in join order"? Use counts carry no order: two joiners and one use
each on codes A and B fit both "first A, then B" and "first B, then A". Only a single code can
be matched without guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

VANITY = "(vanity)"  # the vanity URL as a pseudo-code: parentheses never occur in invite codes


@dataclass(frozen=True)
class InviteUses:
    """One invite as the snapshot knows it."""

    code: str
    uses: int
    max_uses: int = 0
    inviter_id: int | None = None
    inviter_name: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every invite's uses at one moment, and the vanity URL's uses (None: no vanity URL)."""

    invites: Mapping[str, InviteUses] = field(default_factory=dict)
    vanity_code: str | None = None
    vanity_uses: int | None = None


@dataclass(frozen=True)
class GroupMatch:
    """The outcome for a group of joiners: `code` when attributed, else candidate codes."""

    code: str | None
    candidates: tuple[str, ...]

    @property
    def attributed(self) -> bool:
        return self.code is not None

    @property
    def status(self) -> str:
        if self.code is not None:
            return "attributed"
        return "ambiguous" if self.candidates else "unknown"


def increases(stored: Snapshot, live: Snapshot) -> dict[str, int]:
    """Uses gained per code since `stored` (VANITY for the vanity URL); only positive increases.

    - a live code missing from the snapshot (created while nobody was looking) counts from 0;
    - a stored code with `max_uses` that is gone from the live list and stood at `max_uses - 1`
      was used up by one join (Discord deletes it, and the INVITE_DELETE comes after the join);
      a code gone at any other count was revoked or expired and is no candidate.
    """
    gained: dict[str, int] = {}
    for code, now in live.invites.items():
        before = stored.invites.get(code)
        delta = now.uses - (before.uses if before else 0)
        if delta > 0:
            gained[code] = delta
    for code, before in stored.invites.items():
        if code not in live.invites and before.max_uses > 0 and before.uses == before.max_uses - 1:
            gained[code] = 1
    if (
        stored.vanity_uses is not None
        and live.vanity_uses is not None
        and live.vanity_uses > stored.vanity_uses
    ):
        gained[VANITY] = live.vanity_uses - stored.vanity_uses
    return gained


def match_group(joiners: int, gained: Mapping[str, int]) -> GroupMatch:
    """Attribute `joiners` members to the increases `gained` (see the module rule)."""
    candidates = tuple(sorted(gained))
    if joiners < 1:
        raise ValueError("match_group needs at least one joiner")
    if len(candidates) == 1 and gained[candidates[0]] == joiners:
        return GroupMatch(code=candidates[0], candidates=candidates)
    return GroupMatch(code=None, candidates=candidates)


def inviter_of(code: str, stored: Snapshot, live: Snapshot) -> InviteUses | None:
    """The invite behind `code` (live first, the snapshot for a used-up code); None for VANITY."""
    if code == VANITY:
        return None
    return live.invites.get(code) or stored.invites.get(code)


YOUNG_ACCOUNT = "young_account"
SELF_INVITE = "self_invite"


def fake_reason(
    *,
    member_id: int,
    inviter_id: int | None,
    joined_at: datetime,
    account_created_at: datetime,
    fake_account_days: int,
) -> str:
    """Why a join is fake ("" when it is not): a self-invite, or an account younger than the
    guild's threshold (`fake_account_days`, 0 disables the age rule) when it joined."""
    if inviter_id is not None and inviter_id == member_id:
        return SELF_INVITE
    if fake_account_days > 0 and joined_at - account_created_at < timedelta(days=fake_account_days):
        return YOUNG_ACCOUNT
    return ""
