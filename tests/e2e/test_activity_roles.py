"""End to end: activity roles (`/rewards`) with the real bot process against the emulator, across a
SIGTERM restart and a SIGKILL with the bot kept down while members' activity changes who qualifies
and someone gives and takes ruled roles by hand. At the end every member holds exactly the roles
the rules give from the true counts, and `reward_log` has one record per change the bot made."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from scripts.scenario.__main__ import run_and_report
from scripts.scenario.model import load_scenario

SCENARIOS = Path(__file__).parent / "scenarios"
CHATTER, TOP_VOICE, REGULAR, BOOSTER = 50, 51, 52, 53
RULED = {CHATTER, TOP_VOICE, REGULAR}


def expected_roles(members: list[dict[str, Any]]) -> dict[str, set[int]]:
    """The rules of the scenario, from the true counts: reach 3 messages (all time), top 1 of voice
    (all time; value, then the lower id), active on 1 of the last 7 days (one message makes a day
    active by default; voice alone does not)."""
    present = [m for m in members if m["roles"] is not None]
    voiced = sorted((-m["truth"]["voice_s"], int(m["discord_id"])) for m in present
                    if m["truth"]["voice_s"] > 0)
    top = {str(voiced[0][1])} if voiced else set()
    return {m["discord_id"]: ({CHATTER} if m["truth"]["messages"] >= 3 else set())
            | ({TOP_VOICE} if m["discord_id"] in top else set())
            | ({REGULAR} if m["truth"]["messages"] >= 1 else set())
            for m in present}


async def test_activity_roles_are_exact_across_a_restart_and_a_downtime(tmp_path: Path) -> None:
    report = await run_and_report(load_scenario(SCENARIOS / "activity_roles_restart_and_downtime.json"),
                                  workdir=tmp_path)
    log = Path(report["bot_log"]).read_text()  # noqa: ASYNC240 (after the run)
    assert report["ok"], [r for r in report["members"] if r["differences"]]
    assert report["bot_exit_codes"] == [0, -9, 0]
    added = [c for c in report["commands"] if c["name"] == "rewards add"]
    assert [c["content"].split(",")[0].split(": ")[-1] for c in added[:3]] == [
        f"<@&{CHATTER}>", f"<@&{TOP_VOICE}>", f"<@&{REGULAR}>"], added
    assert added[3]["content"].startswith(f"<@&{BOOSTER}> is managed by Discord"), added[3]
    members = {m["name"]: m for m in report["members"]}
    # the activity that decides: messages read from the history while the bot was down, voice
    # across a SIGKILL (credited the downtime), and a top that moved from cy to dan
    assert (members["dan"]["truth"]["messages"], members["eve"]["truth"]["messages"]) == (1, 3)
    assert members["dan"]["truth"]["voice_s"] > members["cy"]["truth"]["voice_s"] + 5

    want = expected_roles(report["members"])
    got = {m["discord_id"]: set(m["roles"]) & RULED for m in report["members"] if m["roles"] is not None}
    assert got == want, log[-4000:]
    assert want[members["bob"]["discord_id"]] == {CHATTER, REGULAR}  # CHATTER taken by hand while down
    assert want[members["eve"]["discord_id"]] == {CHATTER, REGULAR}  # TOP_VOICE given by hand while down
    assert want[members["cy"]["discord_id"]] == set()  # CHATTER given before the rules; TOP_VOICE lost

    # one reward_log record per change Discord accepted from the bot, with a rule of the role
    made = Counter((int(member), role, action) for member, role, action in report["role_changes"])
    recorded = Counter((int(d["member_id"]), d["role_id"], d["action"]) for d in report["reward_log"])
    assert made == recorded and sum(made.values()) >= 9, (made, recorded)
    assert not [d for d in report["reward_log"] if d.get("pending")]
    rules = {int(c["content"].split("`")[1]): role
             for c, role in zip(added[:3], (CHATTER, TOP_VOICE, REGULAR), strict=True)}
    assert all(rules[d["rule_id"]] == d["role_id"] for d in report["reward_log"]), report["reward_log"]
