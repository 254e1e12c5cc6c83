"""Who may see another member's numbers: the one rule every surface asks.

The guild setting `members_view_others` (default on) decides whether members may see other
members' numbers. When it is off:

- a lookup of another member (`/ud member:x`, with their streak and weekly goal, `/invites show
  member:x`, `/invites who member:x`, `/invites retention member:x`, and `/invites retention
  code:c` for a code credited to someone else) is refused ephemerally;
- a board (`/top`, `/invites leaderboard`, `/invites retention` without options, and their
  selects and buttons) shows a member only their own row and rank, ephemerally, with a line
  saying why;
- a join or leave announcement (read by everyone in the channel) leaves out the inviter's total;
- Manage Server sees everything, but privately: an admin's board or lookup of another member is
  ephemeral, so it is not posted where members read it.

`SURFACES` lists every slash command by what it shows of other members; a test walks the command
tree (`tests/cogs/test_privacy.py`) and fails on a command missing from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Surface(Enum):
    """What a command shows of other members' numbers, and so how the policy applies to it."""

    LOOKUP = "one member's numbers, chosen by the caller: `may_see` before reading"
    BOARD = "every member's numbers: `sight` picks the whole board or the caller's own row"
    ADMIN = "only for Manage Server, who sees everything (the command refuses anyone else)"
    NONE = "no other member's numbers: the caller's own at most, or none"


SURFACES: dict[str, Surface] = {
    "ud": Surface.LOOKUP,
    "invites show": Surface.LOOKUP,
    "invites who": Surface.LOOKUP,
    "top": Surface.BOARD,
    "invites leaderboard": Surface.BOARD,
    "invites retention": Surface.BOARD,  # a board; with `member` or `code` a lookup (refused the same way)
    "invites-admin staff add": Surface.ADMIN,
    "invites-admin staff remove": Surface.ADMIN,
    "invites-admin staff list": Surface.ADMIN,
    "invites-admin bonus": Surface.ADMIN,
    "invites-admin debug": Surface.ADMIN,
    "invites-admin refresh": Surface.ADMIN,
    "invites-admin reset": Surface.ADMIN,
    "invites-admin restore": Surface.ADMIN,
    "backup-data": Surface.ADMIN,
    "data erase": Surface.ADMIN,
    "data-status": Surface.ADMIN,
    "rewards add": Surface.ADMIN,
    "rewards remove": Surface.ADMIN,
    "rewards list": Surface.ADMIN,
    "season start": Surface.ADMIN,
    "season list": Surface.ADMIN,
    "settings show": Surface.ADMIN,
    "settings set": Surface.ADMIN,
    "export leaderboard": Surface.ADMIN,
    "export invites": Surface.ADMIN,
    "export joins": Surface.ADMIN,
    "export channels": Surface.ADMIN,
    "help": Surface.NONE,
    "server stats": Surface.NONE,  # sums over the whole server, no member's numbers
    "goal set": Surface.NONE,
    "goal clear": Surface.NONE,
}


@dataclass(frozen=True)
class Sight:
    """What one caller may see of other members in one guild, and whether the answer is private."""

    others: bool  # other members' numbers (a whole board, a lookup of someone else)
    private: bool  # answer ephemerally: a member's reduced board, or an admin where members may not look


def sight(members_view_others: bool, manage_guild: bool) -> Sight:
    """The rule: members see others when the guild allows it; Manage Server always does, privately
    when members may not."""
    if manage_guild:
        return Sight(others=True, private=not members_view_others)
    return Sight(others=members_view_others, private=not members_view_others)


def may_see(members_view_others: bool, manage_guild: bool, caller_id: int, member_id: int) -> bool:
    """A lookup: one's own numbers always; another member's as `sight` allows."""
    return member_id == caller_id or sight(members_view_others, manage_guild).others


def announce_totals(members_view_others: bool) -> bool:
    """Announcements are read by every member of the channel: totals only where members may look."""
    return members_view_others
