"""The activity-role evaluation: who qualifies for a rule, and the changes that make roles match."""

from __future__ import annotations

from app.tracking.rewards import HOUR, RewardRule, RoleChange, plan, qualifiers

G, ROLE, OTHER = 1, 50, 51


def rule(rule_id: int = 1, role: int = ROLE, metric: str = "messages", period: str = "all", *,
         reach: int | None = None, top: int | None = None) -> RewardRule:
    return RewardRule(G, rule_id, role, metric, period, reach, top)


def test_reach_counts_messages_and_hours_of_voice() -> None:
    assert qualifiers(rule(reach=10), {1: 9, 2: 10, 3: 11}) == {2, 3}
    voice = rule(metric="voice", reach=2)
    assert qualifiers(voice, {1: 2 * HOUR - 1, 2: 2 * HOUR}) == {2}


def test_top_is_ordered_like_the_board_value_then_member_id() -> None:
    values = {5: 10, 3: 10, 4: 20, 6: 0, 7: 1}
    assert qualifiers(rule(top=2), values) == {4, 3}  # 3 and 5 tie: the lower id first, like /top
    assert qualifiers(rule(top=10), values) == {3, 4, 5, 7}  # nobody with 0


def test_each_rule_reads_its_own_metric_and_period() -> None:
    rules = [rule(1, metric="messages", period="7d", reach=5), rule(2, metric="camera", period="all", top=1)]
    values = {("messages", "7d"): {1: 5}, ("messages", "all"): {2: 100}, ("camera", "all"): {3: 60}}
    changes = plan(rules, values, {}, {1, 2, 3})
    assert changes == [RoleChange(1, ROLE, True, 1), RoleChange(3, ROLE, True, 2)]


def test_a_role_goes_to_the_union_of_its_rules_and_is_removed_from_everyone_else() -> None:
    rules = [rule(1, reach=10), rule(2, metric="voice", top=1)]
    values = {("messages", "all"): {1: 10, 2: 3}, ("voice", "all"): {2: 60, 3: 30}}
    holders = {ROLE: {1, 3, 4}}  # 1 keeps it, 3 and 4 qualify for nothing; 2 gets it
    assert plan(rules, values, holders, {1, 2, 3, 4}) == [
        RoleChange(2, ROLE, True, 2), RoleChange(3, ROLE, False, 1), RoleChange(4, ROLE, False, 1),
    ]


def test_nobody_is_granted_twice_nor_a_member_who_left() -> None:
    values = {("messages", "all"): {1: 10, 2: 10}}
    assert plan([rule(reach=1)], values, {ROLE: {1}}, {1}) == []


def test_roles_without_rules_are_left_alone() -> None:
    values = {("messages", "all"): {}}
    assert plan([rule(reach=1)], values, {ROLE: {1}, OTHER: {2}}, {1, 2}) == [RoleChange(1, ROLE, False, 1)]


def active(rule_id: int = 1, role: int = ROLE, *, days: int, of_last: int) -> RewardRule:
    return RewardRule(G, rule_id, role, "active", None, active_days=days, of_last=of_last)


def test_an_active_rule_counts_active_days_and_reads_the_values_of_its_own_window() -> None:
    assert qualifiers(active(days=3, of_last=7), {1: 2, 2: 3, 3: 7}) == {2, 3}
    rules = [active(1, days=2, of_last=7), active(2, days=1, of_last=1), rule(3, reach=100)]
    assert [r.values_key for r in rules] == [("active", "7"), ("active", "1"), ("messages", "all")]
    values = {("active", "7"): {1: 2, 2: 1}, ("active", "1"): {3: 1}, ("messages", "all"): {1: 500, 4: 99}}
    assert plan(rules, values, {ROLE: {4}}, {1, 2, 3, 4}) == [
        RoleChange(1, ROLE, True, 1), RoleChange(3, ROLE, True, 2), RoleChange(4, ROLE, False, 1),
    ]


def test_a_season_rule_reads_the_season_values_and_without_them_qualifies_nobody() -> None:
    season, all_time = rule(1, period="season", top=1), rule(2, role=OTHER, reach=1)
    assert season.values_key == ("messages", "season")
    values = {("messages", "season"): {2: 3}, ("messages", "all"): {1: 50, 2: 3}}
    assert plan([season, all_time], values, {ROLE: {1}}, {1, 2}) == [
        RoleChange(2, ROLE, True, 1), RoleChange(1, OTHER, True, 2), RoleChange(2, OTHER, True, 2),
        RoleChange(1, ROLE, False, 1),
    ]
    no_season = {("messages", "season"): {}, ("messages", "all"): {1: 50}}  # what the cog reads then
    assert plan([season], no_season, {ROLE: {1, 2}}, {1, 2}) == [
        RoleChange(1, ROLE, False, 1), RoleChange(2, ROLE, False, 1)]
