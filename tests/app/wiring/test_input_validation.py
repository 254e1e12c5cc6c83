"""Property tests: hostile strings and numbers at the validation functions, at the option check of
the command tree, and at the repository calls that receive user input. A user value is data:
never a query key or operator, never stored malformed."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.operations.backups import BackupError, validate_backup_id
from app.operations.invite_resets import RestoreError, restore_invites
from app.wiring.commands import invalid_option
from app.wiring.container import Repositories
from app.wiring.validation import INVITE_CODE, MAX_ID, invite_backup_id, invite_code, valid_id
from cogs.invites import InvitesCog, clean_code
from cogs.settings import SettingsCog
from cogs.stats import StatsCog
from repositories.guild_settings import SettingError
from tests.fuzz import HOSTILE_INT, HOSTILE_TEXT, OPERATOR_TEXT, examples

G = 1
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
FAST = settings(max_examples=100, deadline=None, database=None)


# ---- validation functions ------------------------------------------------------------------------
@FAST
@given(HOSTILE_TEXT)
def test_invite_code_is_none_or_a_strict_code_taken_from_the_input(value: str) -> None:
    code = invite_code(value)
    assert code == clean_code(value)
    if code is not None:
        assert INVITE_CODE.fullmatch(code) and code in value
        assert not re.search(r"[\x00$.{}\s/]", code)


@pytest.mark.parametrize(("value", "code"), [
    ("abc", "abc"), ("  bobs ", "bobs"), ("https://discord.gg/bobs", "bobs"),
    ("discord.gg/bobs/", "bobs"), ("https://discord.com/invite/A-b9", "A-b9"),
    ("https://evil.example/abc", None), ("discord.gg/../x", None), ("abc\x00", None),
    ('{"$gt": ""}', None), ("$where", None), ("a", None), ("x" * 33, None), (None, None), ({"$gt": ""}, None),
])
def test_invite_code_examples(value: Any, code: str | None) -> None:
    assert invite_code(value) == code


@FAST
@given(HOSTILE_TEXT)
def test_backup_ids_are_none_or_the_exact_pattern(value: str) -> None:
    found = invite_backup_id(value)
    assert found is None or re.fullmatch(r"ib-[0-9a-f]{12}", found)
    with contextlib.suppress(BackupError):
        assert validate_backup_id(value) == value and re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", value)


@FAST
@given(st.one_of(HOSTILE_INT, st.booleans(), st.text(max_size=5), st.none()))
def test_valid_id_only_accepts_positive_64_bit_ints(value: Any) -> None:
    expected = type(value) is int and 0 < value <= MAX_ID
    assert valid_id(value) is expected


# ---- the option check of the command tree ------------------------------------------------------
def wire_type(value: Any) -> int:
    """The option type a client states for a Python value (bool, int, float, else string)."""
    if isinstance(value, bool):
        return 5
    return 4 if isinstance(value, int) else 10 if isinstance(value, float) else 3


def data(*path: str, **options: Any) -> dict[str, Any]:
    leaf = [{"name": k, "value": v, "type": wire_type(v)} for k, v in options.items()]
    for name in reversed(path):
        leaf = [{"name": name, "type": 1, "options": leaf}]
    return {"name": "x", "options": leaf}


@FAST
@given(st.one_of(HOSTILE_TEXT, HOSTILE_INT))
def test_choices_are_enforced_for_every_choice_option(value: Any) -> None:
    top, ud = StatsCog.top, StatsCog.ud
    leaderboard = InvitesCog.leaderboard
    valid_board = value in ("messages", "voice", "camera", "streaming")
    valid_period = value in ("today", "7d", "30d", "all")
    assert (invalid_option(top, data(board=value)) is None) is valid_board
    assert (invalid_option(top, data(board="voice", period=value)) is None) is valid_period
    assert (invalid_option(ud, data(period=value)) is None) is valid_period
    assert (invalid_option(leaderboard, data("leaderboard", period=value)) is None) is valid_period


@FAST
@given(HOSTILE_INT)
def test_integer_bounds_are_enforced(value: int) -> None:
    bonus = InvitesCog.bonus
    assert (invalid_option(bonus, data("bonus", amount=value)) is None) is (-1000 <= value <= 1000)
    set_ = SettingsCog.set_
    assert (invalid_option(set_, data("set", fake_account_days=value)) is None) is (0 <= value <= 365)
    cap = invalid_option(set_, data("set", voice_downtime_cap_seconds=value))
    assert (cap is None) is (0 <= value <= 86400)


def forged(*path: str, **options: tuple[int, Any]) -> dict[str, Any]:
    """Options with the type the interaction claims given explicitly: `amount=(3, "999")`."""
    leaf = [{"name": k, "type": t, "value": v} for k, (t, v) in options.items()]
    for name in reversed(path):
        leaf = [{"name": name, "type": 1, "options": leaf}]
    return {"name": "x", "options": leaf}


@FAST
@given(st.one_of(HOSTILE_TEXT, st.integers(-10**12, 10**12).map(str), st.sampled_from(["5", "-1000", "1e3"])))
def test_a_number_option_sent_as_a_string_is_refused_whatever_its_length(value: str) -> None:
    bonus, set_ = InvitesCog.bonus, SettingsCog.set_
    for claimed in (3, 4, 10):  # as a string, or claiming to be a number
        assert invalid_option(bonus, forged("bonus", amount=(claimed, value))) == "amount"
        assert invalid_option(set_, forged("set", fake_account_days=(claimed, value))) == "fake_account_days"


@pytest.mark.parametrize(("option", "value"), [
    ((3, "999999999"), "amount"), ((3, "5"), "amount"), ((4, 5.0), "amount"), ((10, 5.0), "amount"),
    ((10, 5), "amount"), ((4, True), "amount"), ((4, None), "amount"), ((4, [5]), "amount"),
    ((4, 2**64), "amount"), ((None, 5), "amount"), ((4, 5), None), ((4, -1000), None),
])
def test_integer_options_are_checked_as_integers(option: tuple[Any, Any], value: str | None) -> None:
    assert invalid_option(InvitesCog.bonus, forged("bonus", amount=option)) == value


@pytest.mark.parametrize(("name", "option", "refused"), [
    ("time_zone", (3, "x" * 65), True), ("time_zone", (3, "Europe/Berlin"), False),
    ("time_zone", (4, 5), True), ("time_zone", (10, 5.0), True), ("time_zone", (3, ["Europe/Berlin"]), True),
    ("fake_repeat_joiner", (5, True), False), ("fake_repeat_joiner", (5, 1), True),
    ("fake_repeat_joiner", (3, "true"), True), ("conversion_role", (8, "123"), False),
    ("conversion_role", (8, "abc"), True), ("conversion_role", (8, str(2**64)), True),
    ("conversion_role", (3, "123"), True), ("ignore_channel", (7, {"$gt": ""}), True),
])
def test_every_option_type_is_checked_against_the_declared_one(name: str, option: tuple[int, Any],
                                                               refused: bool) -> None:
    found = invalid_option(SettingsCog.set_, forged("set", **{name: option}))
    assert found == (name if refused else None)


@FAST
@given(HOSTILE_TEXT)
def test_string_lengths_and_literal_choices_are_enforced(value: str) -> None:
    set_ = SettingsCog.set_
    assert (invalid_option(set_, data("set", time_zone=value)) is None) is (1 <= len(value) <= 64)
    assert (invalid_option(set_, data("set", join_template=value)) is None) is (1 <= len(value) <= 500)
    clear = invalid_option(set_, data("set", clear=value))
    clearable = ("conversion_role", "announcement_channel", "voice_downtime_cap_seconds", "join_template",
                 "leave_template", "ignored_channels")
    assert (clear is None) is (value in clearable)
    assert invalid_option(set_, data("set", **{"$where": value})) == "(unknown option)"


# ---- repository calls with user input ----------------------------------------------------------
@pytest.fixture
def repos(db: Any, policy: Any) -> Repositories:
    return Repositories.create(db, policy)


async def test_hostile_codes_and_backup_ids_match_nothing_and_write_nothing(repos: Repositories, db: Any
                                                                            ) -> None:
    await repos.staff_codes.assign(G, 102, "bob", "bobs", 101, NOW)
    before = {name: await db[name].count_documents({}) for name in ("staff_codes", "invite_backups", "joins")}
    for value in examples(HOSTILE_TEXT, 80) + OPERATOR_TEXT:
        assert await repos.staff_codes.by_code(G, value) is None, repr(value)
        assert await repos.invite_backups.header(value) is None, repr(value)
        with pytest.raises(RestoreError):
            await restore_invites(repos, G, value, NOW)
    after = {name: await db[name].count_documents({}) for name in before}
    assert after == before
    assert (await repos.staff_codes.by_code(G, "bobs")).member_id == 102  # the real one is found


async def test_a_dict_never_reaches_a_filter(repos: Repositories) -> None:
    await repos.staff_codes.assign(G, 102, "bob", "bobs", 101, NOW)
    with pytest.raises(TypeError):
        await repos.staff_codes.by_code(G, {"$gt": ""})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await repos.invite_backups.header({"$ne": None})  # type: ignore[arg-type]
    assert invite_code({"$gt": ""}) is None and invite_backup_id({"$gt": ""}) is None


async def test_hostile_setting_values_are_refused_or_stored_exactly_as_strings(repos: Repositories, db: Any
                                                                               ) -> None:
    for value in examples(HOSTILE_TEXT, 60) + OPERATOR_TEXT:
        for name in ("time_zone", "join_template", "leave_template"):
            try:
                config = await repos.guild_settings.set_fields(G, **{name: value})
            except SettingError as exc:
                assert str(exc).startswith(name), (name, value, exc)
                continue
            assert getattr(config, name) == value
            stored = await db.guild_settings.find_one({"_id": G})
            assert stored[name] == value and isinstance(stored[name], str), (name, value)
    keys = [k for doc in await db.guild_settings.find({}).to_list(None) for k in doc]
    assert all(not k.startswith("$") and "." not in k for k in keys), keys


async def test_hostile_bonus_amounts_in_bounds_are_counted_exactly(repos: Repositories, db: Any) -> None:
    total = 0
    for n, amount in enumerate(examples(st.integers(-1000, 1000), 50)):
        await repos.invite_bonus.add(G, 102, amount, f"fuzz-{n}")
        total += amount
    assert await repos.invite_bonus.get(G, 102) == total
