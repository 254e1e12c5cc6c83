"""Activity roles: which members should hold which role, from the ranks in memory. No Discord I/O.

A rule gives a role to the members who reach `reach` (messages, or hours of voice or camera) in a
period, who are in the top `top` of that period's board (ordered like `/top`: value descending,
then member id; the period `season` is the guild's current season, `app.tracking.seasons`: with no
season, its values are empty and the rule qualifies nobody), or who were active on at least
`active_days` of the last `of_last` guild-local days (today included; an active day as the streaks
define it, `app.tracking.streaks.ActiveRule`). A role with at least one rule is the bot's: the
members who should hold it are the union of its rules' qualifiers; `plan` grants it to those who
lack it and removes it from everyone else who holds it. See `docs/rewards.md`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HOUR = 3600
REWARD_METRICS = {"messages": "messages", "voice": "voice_s", "camera": "cam_on_s"}  # metric -> counter
SEASON = "season"  # the guild's current season: its days are read at each evaluation
REWARD_PERIODS = ("all", "7d", "30d", SEASON)  # for reach and top rules; a new period is one more entry
ACTIVE = "active"  # the metric of an `active_days` rule (its values: active days per member)
MAX_OF_LAST = 30  # days an `active_days` rule looks back; the ranks mirror keeps 32 (`KEEP_DAYS`)


@dataclass(frozen=True)
class RewardRule:
    guild_id: int
    rule_id: int
    role_id: int
    metric: str  # a key of REWARD_METRICS, or ACTIVE
    period: str | None  # one of REWARD_PERIODS; None for an ACTIVE rule
    reach: int | None = None  # messages, or hours of voice or camera
    top: int | None = None
    active_days: int | None = None  # active on at least this many days...
    of_last: int | None = None  # ...of the last `of_last` days (1 to MAX_OF_LAST)

    @property
    def values_key(self) -> tuple[str, str]:
        """Which values the rule reads: (metric, period), or (ACTIVE, of_last) for an active rule."""
        if self.active_days is not None:
            return ACTIVE, str(self.of_last)
        return self.metric, self.period or "all"

    @property
    def threshold(self) -> int:
        """`reach` in the counter's unit (seconds for voice and camera)."""
        assert self.reach is not None
        return self.reach if self.metric == "messages" else self.reach * HOUR


@dataclass(frozen=True)
class RoleChange:
    member_id: int
    role_id: int
    grant: bool  # False: remove
    rule_id: int  # the rule that qualifies the member (a grant) or one rule of the role (a removal)


Values = Mapping[int, int]  # member -> the metric's value in the period, or their active days
# (members with 0 may be absent)


def qualifiers(rule: RewardRule, values: Values) -> set[int]:
    """The members `rule` gives its role to, given the values of its metric in its period (or, for an
    active rule, each member's number of active days among the last `of_last`)."""
    if rule.active_days is not None:
        return {m for m, days in values.items() if days >= rule.active_days}
    if rule.top is not None:
        ranked = sorted(((v, m) for m, v in values.items() if v > 0), key=lambda vm: (-vm[0], vm[1]))
        return {m for _, m in ranked[:rule.top]}
    return {m for m, v in values.items() if v >= rule.threshold and v > 0}


def plan(rules: Iterable[RewardRule], values: Mapping[tuple[str, str], Values],
         holders: Mapping[int, set[int]], present: set[int]) -> list[RoleChange]:
    """The changes that make every ruled role held by exactly its qualifiers.

    `values[rule.values_key]`: the values each rule reads; `holders[role]`: the members holding the
    role now; `present`: the guild's members (a member who left is not granted anything). Grants
    first (a member's reward is not late behind a removal), then removals, each in member order."""
    by_role: dict[int, dict[int, int]] = {}  # role -> member -> the first rule qualifying them
    first_rule: dict[int, int] = {}
    for rule in sorted(rules, key=lambda r: r.rule_id):
        first_rule.setdefault(rule.role_id, rule.rule_id)
        members = by_role.setdefault(rule.role_id, {})
        for member in sorted(qualifiers(rule, values.get(rule.values_key, {}))):
            members.setdefault(member, rule.rule_id)
    grants: list[RoleChange] = []
    removals: list[RoleChange] = []
    for role, qualified in sorted(by_role.items()):
        held = holders.get(role, set())
        grants += [RoleChange(m, role, True, r) for m, r in sorted(qualified.items())
                   if m in present and m not in held]
        removals += [RoleChange(m, role, False, first_rule[role]) for m in sorted(held - set(qualified))]
    return grants + removals
