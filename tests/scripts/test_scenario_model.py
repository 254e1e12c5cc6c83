"""The scenario file format: what is accepted, and one clear error naming the step otherwise."""

from datetime import UTC, datetime

import pytest

from scripts.emulator import REALISTIC_LATENCY, Latency
from scripts.scenario.model import ScenarioError, parse_scenario

GUILD = {"id": 1, "channels": [{"id": 10, "type": "text"}], "members": [{"id": 101, "name": "a"}]}
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_a_valid_scenario_parses_with_settings_upper_cased():
    scenario = parse_scenario({
        "guild": GUILD, "settings": {"voice_flush_seconds": 2},
        "steps": [{"at": 0, "do": "message", "user": 101, "channel": 10},
                  {"at": 1.5, "do": "restart", "signal": "SIGKILL", "down_for": 2}],
    }, now=NOW)
    assert [s.do for s in scenario.steps] == ["message", "restart"]
    assert scenario.settings == {"VOICE_FLUSH_SECONDS": "2"}
    assert scenario.restarts == 1


def test_relative_account_ages_resolve_against_the_start():
    scenario = parse_scenario({
        "guild": {**GUILD, "members": [{"id": 101, "created": "-2d"}]},
        "steps": [{"at": 0, "do": "join", "user": {"id": 201, "created": "-6h"}, "via": None}],
    }, now=NOW)
    assert scenario.guild["members"][0]["created"] == "2026-03-08T12:00:00+00:00"
    assert scenario.steps[0].args["user"]["created"] == "2026-03-10T06:00:00+00:00"


@pytest.mark.parametrize(("steps", "message"), [
    ([{"at": 0, "do": "dance", "user": 1}], "step 0: unknown kind 'dance'"),
    ([{"at": 0, "do": "message", "user": 1}], "step 0 (message): missing channel"),
    ([{"at": 2, "do": "message", "user": 1, "channel": 10}, {"at": 1, "do": "leave", "user": 1}],
     "step 1 (leave): 'at' 1 is before the previous step's 2.0"),
    ([{"at": -1, "do": "leave", "user": 1}], "step 0 (leave): 'at' must be a number"),
    ([{"at": 0, "do": "restart", "signal": "SIGHUP"}],
     "step 0 (restart at 0s): signal must be SIGTERM or SIGKILL"),
    ([{"at": 0, "do": "db_outage", "for": 0}], "step 0 (db_outage at 0s): 'for' must be seconds > 0"),
    (["oops"], "step 0: must be an object"),
    ([{"at": 0, "do": "second_process"}], "step 0 (second_process): missing for"),
    ([{"at": 0, "do": "second_process", "for": -2}],
     "step 0 (second_process at 0s): 'for' must be seconds > 0"),
    ([{"at": 0, "do": "second_process", "for": "10s"}],
     "step 0 (second_process at 0s): 'for' must be seconds > 0"),
    ([{"at": 0, "do": "guild_unavailable", "guild": "one"}, {"at": 1, "do": "guild_available"}],
     "step 0 (guild_unavailable at 0s): guild must be a guild id"),
    ([{"at": 0, "do": "guild_unavailable", "guild": 7}, {"at": 1, "do": "guild_available", "guild": 7}],
     "step 0 (guild_unavailable at 0s): unknown guild 7 (the scenario's guild is 1)"),
    ([{"at": 0, "do": "guild_available"}],
     "step 0 (guild_available at 0s): the guild is not unavailable"),
    ([{"at": 0, "do": "guild_unavailable"}, {"at": 1, "do": "guild_unavailable"},
      {"at": 2, "do": "guild_available"}],
     "step 1 (guild_unavailable at 1s): the guild is already unavailable since step 0"),
    ([{"at": 0, "do": "guild_unavailable"}, {"at": 1, "do": "message", "user": 101, "channel": 10}],
     "step 0 (guild_unavailable at 0s): the guild is still unavailable at the end"),
    ([{"do": "gateway_reconnect"}], "step 0 (gateway_reconnect): 'at' must be a number"),
    ([{"at": 3, "do": "invalid_session"}, {"at": 2, "do": "gateway_reconnect"}],
     "step 1 (gateway_reconnect): 'at' 2 is before the previous step's 3.0"),
])
def test_malformed_steps_are_named(steps, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"guild": GUILD, "steps": steps}, now=NOW)
    assert str(info.value).startswith(message)


def test_malformed_top_level_and_created_values():
    with pytest.raises(ScenarioError, match="unknown top-level keys: extra"):
        parse_scenario({"guild": GUILD, "steps": [], "extra": 1})
    with pytest.raises(ScenarioError, match="'guild' must be an object"):
        parse_scenario({"guild": [], "steps": []})
    with pytest.raises(ScenarioError, match="neither ISO 8601 nor like"):
        parse_scenario({"guild": {**GUILD, "members": [{"id": 1, "created": "yesterday"}]}, "steps": []})


def test_gateway_fault_steps_and_a_second_process_parse():
    scenario = parse_scenario({
        "guild": GUILD,
        "steps": [{"at": 0, "do": "gateway_reconnect"}, {"at": 1, "do": "invalid_session"},
                  {"at": 2, "do": "guild_unavailable"}, {"at": 3, "do": "guild_available", "guild": 1},
                  {"at": 4, "do": "guild_unavailable", "guild": 1}, {"at": 5, "do": "guild_available"},
                  {"at": 6, "do": "second_process", "for": 2.5}],
    }, now=NOW)
    assert [s.do for s in scenario.steps] == [
        "gateway_reconnect", "invalid_session", "guild_unavailable", "guild_available",
        "guild_unavailable", "guild_available", "second_process"]
    assert scenario.steps[-1].args == {"for": 2.5}
    assert scenario.restarts == 0


def test_latency_defaults_to_realistic_and_can_be_set_or_turned_off():
    assert parse_scenario({"guild": GUILD, "steps": []}).latency == REALISTIC_LATENCY
    assert REALISTIC_LATENCY.rest_ms == (100, 200) and REALISTIC_LATENCY.dispatch_ms == (30, 100)
    custom = parse_scenario({"guild": GUILD, "steps": [],
                             "latency": {"rest_ms": [5, 10], "dispatch_ms": [0, 0], "seed": 7}}).latency
    assert custom == Latency(rest_ms=(5, 10), dispatch_ms=(0, 0), seed=7)
    partial = parse_scenario({"guild": GUILD, "steps": [], "latency": {"dispatch_ms": [1, 2]}}).latency
    assert partial == Latency(rest_ms=REALISTIC_LATENCY.rest_ms, dispatch_ms=(1, 2))


@pytest.mark.parametrize(("latency", "message"), [
    ([100, 200], "'latency' must be an object"),
    ({"rest": [1, 2]}, "unknown latency keys: rest (known: rest_ms, dispatch_ms, seed)"),
    ({"rest_ms": [200, 100]}, "latency.rest_ms must be [min, max] milliseconds with 0 <= min <= max"),
    ({"dispatch_ms": [-5, 10]}, "latency.dispatch_ms must be [min, max]"),
    ({"dispatch_ms": 50}, "latency.dispatch_ms must be [min, max]"),
    ({"rest_ms": [1, 2, 3]}, "latency.rest_ms must be [min, max]"),
    ({"seed": "abc"}, "latency.seed must be an integer"),
])
def test_malformed_latency_is_refused(latency, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"guild": GUILD, "steps": [], "latency": latency}, now=NOW)
    assert str(info.value).startswith(message)
