"""The attribution rule as pure functions: increases between snapshots, and matching joiners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.tracking.attribution import (
    SELF_INVITE,
    VANITY,
    YOUNG_ACCOUNT,
    GroupMatch,
    InviteUses,
    Settlement,
    Snapshot,
    Window,
    fake_reason,
    increases,
    inviter_of,
    match_group,
    settle,
)


def snap(vanity: int | None = None, **codes: tuple[int, int] | int) -> Snapshot:
    invites = {}
    for code, value in codes.items():
        uses, max_uses = value if isinstance(value, tuple) else (value, 0)
        invites[code] = InviteUses(code, uses, max_uses, inviter_id=hash(code) % 1000)
    return Snapshot(invites, "study" if vanity is not None else None, vanity)


def test_one_code_up_by_one():
    assert increases(snap(abc=3, bobs=1), snap(abc=4, bobs=1)) == {"abc": 1}


def test_several_codes_up():
    assert increases(snap(abc=3, bobs=1), snap(abc=4, bobs=3)) == {"abc": 1, "bobs": 2}


def test_vanity_up():
    assert increases(snap(0, abc=1), snap(2, abc=1)) == {VANITY: 2}


def test_vanity_unknown_on_either_side_is_no_increase():
    assert increases(snap(None, abc=1), snap(5, abc=1)) == {}
    assert increases(snap(5, abc=1), snap(None, abc=1)) == {}


def test_code_missing_from_the_snapshot_counts_from_zero():
    assert increases(snap(abc=1), snap(abc=1, fresh=1)) == {"fresh": 1}
    assert increases(snap(abc=1), snap(abc=1, fresh=0)) == {}


def test_used_up_max_uses_invite_counts_one_use():
    assert increases(snap(once=(0, 1), five=(4, 5)), snap()) == {"once": 1, "five": 1}


def test_an_expired_limited_invite_that_vanished_unused_is_no_candidate():
    """Issue 14, failure 2: expiry is checked against the time of the live list."""
    expires = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    stored = Snapshot({"once": InviteUses("once", 0, 1, 7, "cy", expires_at=expires)})
    assert increases(stored, snap(), now=expires + timedelta(seconds=1)) == {}
    assert increases(stored, snap(), now=expires - timedelta(seconds=1)) == {"once": 1}


def test_vanished_invite_below_max_minus_one_or_without_max_is_no_candidate():
    assert increases(snap(five=(3, 5), open=(7, 0)), snap()) == {}


def test_uses_going_down_are_ignored():
    assert increases(snap(abc=5), snap(abc=2)) == {}


def test_single_joiner_single_increase_is_attributed():
    assert match_group(1, {"abc": 1}) == GroupMatch("abc", ("abc",))


def test_no_increase_is_unknown():
    result = match_group(1, {})
    assert (result.code, result.candidates, result.status) == (None, (), "unknown")


def test_two_codes_for_one_joiner_is_ambiguous_with_both_candidates():
    result = match_group(1, {"bobs": 1, "abc": 1})
    assert (result.code, result.candidates, result.status) == (None, ("abc", "bobs"), "ambiguous")


def test_more_uses_than_joiners_is_ambiguous():
    assert match_group(1, {"abc": 2}).status == "ambiguous"


def test_downtime_joiners_matching_one_code_exactly_are_attributed():
    assert match_group(3, {"abc": 3}).code == "abc"
    assert match_group(2, {VANITY: 2}).code == VANITY


def test_downtime_joiners_spread_over_codes_are_not_guessed():
    result = match_group(2, {"abc": 1, "bobs": 1})
    assert result.code is None and result.candidates == ("abc", "bobs")


def test_fewer_uses_than_joiners_is_not_guessed():
    result = match_group(3, {"abc": 2})
    assert result.code is None and result.candidates == ("abc",)


def test_match_needs_a_joiner():
    with pytest.raises(ValueError):
        match_group(0, {"abc": 1})


def test_inviter_of_prefers_live_and_falls_back_to_the_snapshot_for_a_used_up_code():
    stored = Snapshot({"once": InviteUses("once", 0, 1, 7, "cy")})
    live = Snapshot({"abc": InviteUses("abc", 1, 0, 8, "ada")})
    assert inviter_of("once", stored, live).inviter_id == 7
    assert inviter_of("abc", stored, live).inviter_id == 8
    assert inviter_of(VANITY, stored, live) is None


JOINED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "inviter", "days", "expected"),
    [
        (timedelta(days=2, hours=23), 7, 3, YOUNG_ACCOUNT),
        (timedelta(days=3), 7, 3, ""),
        (timedelta(days=400), 7, 3, ""),
        (timedelta(days=400), 5, 3, SELF_INVITE),
        (timedelta(minutes=1), 7, 0, ""),
        (timedelta(minutes=1), None, 3, YOUNG_ACCOUNT),
    ],
)
def test_fake_reason(age, inviter, days, expected):
    result = fake_reason(
        member_id=5,
        inviter_id=inviter,
        joined_at=JOINED,
        account_created_at=JOINED - age,
        fake_account_days=days,
    )
    assert result == expected


# ---- settle: joiners in arrival order against reads whose cut is only known within bounds ----


def uses(**codes: int) -> Snapshot:
    return Snapshot({code: InviteUses(code, n) for code, n in codes.items()})


BASE = uses(abc=0, bobs=0)


def test_a_read_that_may_miss_the_second_joiner_settles_nothing_alone():
    assert settle(BASE, [Window(1, 2, uses(abc=1, bobs=0))]) == Settlement()


def test_the_next_read_fixes_both_cuts_and_both_joiners():
    result = settle(BASE, [Window(1, 2, uses(abc=1, bobs=0)), Window(2, 2, uses(abc=1, bobs=1))])
    assert (result.windows, result.joiners) == (2, 2)
    assert [o.code for o in result.outcomes] == ["abc", "bobs"]


def test_a_joiner_without_a_use_before_one_with_a_use_is_never_given_that_use():
    """Discovery joiner first, then a joiner via abc whose use is already in the first read."""
    result = settle(BASE, [Window(1, 2, uses(abc=1)), Window(2, 2, uses(abc=1))])
    assert result.joiners == 2
    assert [(o.code, o.candidates) for o in result.outcomes] == [(None, ("abc",)), (None, ("abc",))]


def test_two_joiners_in_one_read_through_two_codes_are_both_ambiguous():
    result = settle(BASE, [Window(2, 2, uses(abc=1, bobs=1))])
    assert [o.status for o in result.outcomes] == ["ambiguous", "ambiguous"]


def test_uses_no_joiner_can_account_for_are_absorbed_never_credited():
    result = settle(BASE, [Window(0, 0, uses(abc=3))])
    assert (result.windows, result.joiners, result.unaccounted) == (1, 0, True)
