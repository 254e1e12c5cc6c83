"""Invite retention's definitions as pure functions, and the invite boards' incremental sets held
to them over random documents (no database: `tests/app/tracking/test_invite_boards.py` does the
same through the real repositories)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.tracking.invite_boards import Figures, GuildInvites
from app.tracking.retention import (
    DAY_MS,
    HORIZONS,
    Horizon,
    Medians,
    Retention,
    Stay,
    median,
    medians_of,
    retained_order,
    retention_of,
    views_by,
)
from repositories.activity import Counters

NOW = 1_800_000_000_000


def present(joined_days_ago: float, member: int = 1) -> Stay:
    return Stay(member, NOW - int(joined_days_ago * DAY_MS), None, True)


def gone(stayed_days: float | None, member: int = 1) -> Stay:
    joined = NOW - 100 * DAY_MS
    return Stay(member, joined, None if stayed_days is None else joined + int(stayed_days * DAY_MS), False)


@pytest.mark.parametrize(("stay", "outcomes"), [
    (present(0.5), (None, None, None)),  # here, too recent for every horizon
    (present(1), (True, None, None)),  # exactly one day: stayed one day
    (present(7.2), (True, True, None)),
    (present(400), (True, True, True)),
    (gone(0.2), (False, False, False)),  # left within hours
    (gone(1), (True, False, False)),
    (gone(29.99), (True, True, False)),
    (gone(30), (True, True, True)),
    (gone(None), (None, None, None)),  # left at a time never recorded: not known
    (present(-1), (None, None, None)),  # joined "after now" (clocks apart): not known yet
])
def test_a_member_stayed_n_days_when_here_that_long_or_when_their_stay_lasted_that_long(
        stay: Stay, outcomes: tuple[bool | None, ...]) -> None:
    assert tuple(stay.stayed(days, NOW) for days in HORIZONS) == outcomes


def test_a_member_who_left_and_came_back_counts_from_their_first_join() -> None:
    """member_status is present again after a rejoin: their credited (first) join's time counts."""
    doc = {"member_id": 5, "joined_ms": NOW - 10 * DAY_MS, "left_ms": NOW - 9 * DAY_MS,
           "member_status": "present"}
    assert [Stay.of(doc).stayed(d, NOW) for d in HORIZONS] == [True, True, None]


def test_retention_counts_known_members_and_states_the_rest() -> None:
    stays = [present(40, 1), present(3, 2), gone(10, 3), gone(0.5, 4), present(0.1, 5)]
    r = retention_of(stays, NOW)
    assert r.brought_in == 5
    assert r.horizon(1) == Horizon(1, stayed=3, known=4, pending=1)
    assert r.horizon(7) == Horizon(7, stayed=2, known=3, pending=2)
    assert r.horizon(30) == Horizon(30, stayed=1, known=3, pending=2)
    assert retention_of([], NOW) == Retention()


def test_retention_figures_add_up() -> None:
    a, b = retention_of([present(40)], NOW), retention_of([gone(2), present(2)], NOW)
    assert a + b == retention_of([present(40), gone(2), present(2)], NOW)


def test_median_is_the_middle_value_or_the_mean_of_the_two_middle_ones_rounded_down() -> None:
    assert median([]) == 0
    assert median([7]) == 7
    assert median([9, 1, 4]) == 4
    assert median([1, 4, 5, 100]) == 4  # (4 + 5) // 2
    counters = [Counters(messages=3, voice_s=60), Counters(messages=10, voice_s=0),
                Counters(messages=1, voice_s=3600)]
    assert medians_of(counters) == Medians(members=3, messages=3, voice_s=60)


def test_the_board_order_is_30_day_retained_then_7_then_1_then_members_then_id() -> None:
    strong = retention_of([present(40), present(40)], NOW)  # 2 stayed 30 days
    recent = retention_of([present(8), present(8), present(8)], NOW)  # none yet at 30 days
    tie = retention_of([present(40), present(40)], NOW)
    rows = sorted([(3, recent), (2, tie), (1, strong)], key=lambda r: retained_order(*r))
    assert [m for m, _ in rows] == [1, 2, 3]


# ---- the boards' sets against the definition -------------------------------------------------
def random_doc(rng: random.Random, key: int) -> dict[str, Any]:
    member = rng.randrange(40)
    joined = NOW - rng.randrange(-2 * DAY_MS, 60 * DAY_MS)
    status = rng.choice(("present", "left"))
    left_ms = rng.choice((None, joined + rng.randrange(-DAY_MS, 45 * DAY_MS)))
    return {
        "_id": f"9:{member}:{key}", "member_id": member, "joined_ms": joined,
        "credit_to": rng.choice((0, 101, 102, 103)), "reset_id": rng.choice(("", "", "", "ib-1")),
        "code": rng.choice(("a", "b", "c", None)), "fake_reason": rng.choice(("", "young_account")),
        "member_status": status, "left_ms": left_ms,
    }


def credited(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs.values() if d["credit_to"] and d["reset_id"] == ""]


@pytest.mark.parametrize("seed", range(4))
def test_the_boards_retention_sets_equal_the_definition_after_random_changes(seed: int) -> None:
    rng = random.Random(seed)
    invites, docs = GuildInvites(9), {}
    for step in range(400):
        key = rng.choice(list(docs)) if docs and rng.random() < 0.4 else f"k{step}"
        if key in docs and rng.random() < 0.3:
            del docs[key]
            invites.put(key, None)
        else:
            docs[key] = {**random_doc(rng, step), "_id": key}
            invites.put(key, Figures.of(docs[key]))
        if step % 25:
            continue
        now = NOW + rng.randrange(0, 40 * DAY_MS)
        for inviter, view in views_by(credited(docs), now, "credit_to").items():
            assert invites.retention_view(inviter, None, now) == view
            by_code = views_by([d for d in credited(docs) if d["credit_to"] == inviter], now, "code")
            assert {c: invites.retention_view(inviter, c, now) for c in invites.codes(inviter)} == by_code
        for code, view in views_by(credited(docs), now, "code").items():
            assert invites.retention_view(None, code, now) == view
        since = now - rng.randrange(0, 50 * DAY_MS)
        in_period = [d for d in credited(docs) if d["joined_ms"] >= since]
        for inviter, view in views_by(in_period, now, "credit_to").items():
            assert invites.inviter_retention(inviter, now, since) == view.retention
        board = [(m, v.retention) for m, v in views_by(credited(docs), now, "credit_to").items()]
        assert invites.retention_board(now) == sorted(board, key=lambda r: retained_order(*r))
    assert invites.retention_view(999, None, NOW).retention == Retention()
