"""Invite attribution as pure functions: which invite each joiner came through, or a refusal to guess.

Discord does not say which invite a member used. What it does say is every invite's use count
(`GET /guilds/{id}/invites`) and the vanity URL's (`GET /guilds/{id}/vanity-url`). Comparing the
accounted snapshot (uses that recorded joins account for) with the live counts gives the
*increases*; this module turns increases plus the joiners into attributions.

The rule, for a group of N joiners (N >= 1) whose uses are exactly the increases: they are
attributed to code C exactly when the increases all fall on C and add up to N. Anything else
(no increase, several codes, more or fewer uses than joiners) is `unknown` (no candidate) or
`ambiguous` (the increased codes are kept as candidates). The bot never picks one of several
candidates: use counts carry no order (two joiners and one use each on codes A and B fit both
"first A, then B" and "first B, then A").

Live joins arrive as a stream, and a fetch may already hold the uses of members whose join
events have not arrived yet. `settle` finds the groups: joiners in arrival order, and for each
fetch the range of how many of them its counts can include (`Window.lo`: those whose events
arrived before the fetch was sent, which joined before it, up to `Window.hi`: those that arrived
before its answer plus the longest gateway delay assumed). The uses between two fetches belong
to the joiners between their two cuts; a cut is certain when every possible world puts it at
the same joiner. Only joiners before a certain cut are settled, and the snapshot advances to
that fetch: a stored snapshot never holds uses of joiners still waiting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    expires_at: datetime | None = None

    def expired(self, now: datetime | None) -> bool:
        return now is not None and self.expires_at is not None and self.expires_at <= now


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


def increases(stored: Snapshot, live: Snapshot, now: datetime | None = None) -> dict[str, int]:
    """Uses gained per code since `stored` (VANITY for the vanity URL); only positive increases.

    - a live code missing from the snapshot (created while nobody was looking) counts from 0;
    - a stored code with `max_uses` that is gone from the live list and stood at `max_uses - 1`
      was used up by one join (Discord deletes it, and the INVITE_DELETE comes after the join),
      unless its `expires_at` has passed by `now` (the time of the live list): then it expired
      unused; a code gone at any other count was revoked or expired and is no candidate;
    - the vanity URL only when both sides know its uses (None: not read, e.g. the request failed).
    """
    gained: dict[str, int] = {}
    for code, current in live.invites.items():
        before = stored.invites.get(code)
        delta = current.uses - (before.uses if before else 0)
        if delta > 0:
            gained[code] = delta
    for code, before in stored.invites.items():
        used_up = before.max_uses > 0 and before.uses == before.max_uses - 1
        if code not in live.invites and used_up and not before.expired(now):
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


NONE = ""  # a joiner who used no invite use we can see (Discovery, an OAuth add)


@dataclass(frozen=True)
class Window:
    """One fetch of the live counts (`live`, read at `at`), and how many of the waiting joiners
    (in arrival order) its counts can include: at least `lo`, at most `hi`."""

    lo: int
    hi: int
    live: Snapshot
    at: datetime | None = None


@dataclass(frozen=True)
class Settlement:
    """What `settle` could decide: the first `joiners` waiting joiners (one outcome each), and the
    number of windows used up; the snapshot advances to the last of them (0: it stays)."""

    windows: int = 0
    joiners: int = 0
    outcomes: tuple[GroupMatch, ...] = ()
    unaccounted: bool = False  # more uses than joiners could explain: absorbed, nobody credited


def settle(base: Snapshot, windows: Sequence[Window]) -> Settlement:
    """Settle the joiners before the latest certain cut (see the module rule).

    The joiners the counts of window n include are a prefix of length k_n, with
    lo_n <= k_n <= hi_n, k_n nondecreasing, and k_n - k_(n-1) >= the uses gained between windows
    n-1 and n (each use is one joiner). These bounds form intervals; a cut is certain when its
    interval is one value. A joiner can be any code gained in a segment it may belong to, or
    none when that segment may hold more joiners than uses.
    """
    gains, prev = [], base
    for window in windows:
        gains.append(increases(prev, window.live, window.at))
        prev = window.live
    need = [sum(g.values()) for g in gains]
    reach: list[tuple[int, int]] = [(0, 0)]
    for n, window in enumerate(windows):
        low = max(window.lo, reach[-1][0] + need[n])
        if low > window.hi:
            return _infeasible(base, windows, gains, n)
        reach.append((low, window.hi))
    bounds = list(reach)
    for n in range(len(windows) - 1, 0, -1):
        low, high = bounds[n]
        bounds[n] = (low, min(high, bounds[n + 1][1] - need[n]))
    certain = [n for n in range(1, len(bounds)) if bounds[n][0] == bounds[n][1]]
    if not certain:
        return Settlement()
    last = certain[-1]
    settled = bounds[last][0]
    outcomes = tuple(_outcome(i, bounds[: last + 1], gains, need) for i in range(settled))
    return Settlement(last, settled, outcomes)


def _outcome(
    joiner: int, bounds: list[tuple[int, int]], gains: list[dict[str, int]], need: list[int]
) -> GroupMatch:
    values: set[str] = set()
    for m in range(1, len(bounds)):
        first, last = bounds[m - 1][0], bounds[m][1]
        if first <= joiner < last:
            values.update(gains[m - 1])
            if last - first > need[m - 1]:
                values.add(NONE)
    codes = tuple(sorted(values - {NONE}))
    if len(values) == 1 and codes:
        return GroupMatch(codes[0], codes)
    return GroupMatch(None, codes)


def _infeasible(
    base: Snapshot, windows: Sequence[Window], gains: list[dict[str, int]], n: int
) -> Settlement:
    """Window n holds more uses than the joiners it can include (a join event never seen, or one
    later than the assumed delay). Settle what the earlier windows allow; else absorb window n:
    the joiners surely in it become ambiguous (their uses cannot be told from the extra ones),
    and the snapshot takes its counts, so no extra use is ever credited to a later joiner."""
    earlier = settle(base, windows[:n]) if n else Settlement()
    if earlier.windows:
        return earlier
    gained: set[str] = set()
    for g in gains[: n + 1]:
        gained.update(g)
    outcome = GroupMatch(None, tuple(sorted(gained)))
    return Settlement(n + 1, windows[n].lo, (outcome,) * windows[n].lo, unaccounted=True)


def inviter_of(code: str, stored: Snapshot, live: Snapshot) -> InviteUses | None:
    """The invite behind `code` (live first, the snapshot for a used-up code); None for VANITY."""
    if code == VANITY:
        return None
    return live.invites.get(code) or stored.invites.get(code)


YOUNG_ACCOUNT = "young_account"
SELF_INVITE = "self_invite"
REPEAT_JOINER = "repeat_joiner"  # optional rule: a member's later join
LEFT_QUICKLY = "left_quickly"  # optional rule: left within the guild's N seconds (set at the leave)


def fake_reason(
    *,
    member_id: int,
    inviter_id: int | None,
    joined_at: datetime,
    account_created_at: datetime,
    fake_account_days: int,
    repeat_joiner: bool = False,
) -> str:
    """Why a join is fake ("" when it is not): a self-invite, an account younger than the
    guild's threshold (`fake_account_days`, 0 disables the age rule) when it joined, or a rejoin
    while the guild's repeat-joiner rule is on (`repeat_joiner`)."""
    if inviter_id is not None and inviter_id == member_id:
        return SELF_INVITE
    if fake_account_days > 0 and joined_at - account_created_at < timedelta(days=fake_account_days):
        return YOUNG_ACCOUNT
    if repeat_joiner:
        return REPEAT_JOINER
    return ""


def left_quickly(joined_at: datetime, left_at: datetime, within_seconds: int) -> bool:
    """The optional "left within N seconds" rule (0: off)."""
    return within_seconds > 0 and left_at - joined_at < timedelta(seconds=within_seconds)
