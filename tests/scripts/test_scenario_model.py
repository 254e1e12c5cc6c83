"""The scenario file format: what is accepted, and one clear error naming the step otherwise."""

from datetime import UTC, datetime

import pytest

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
