"""The fault campaign: reproducible scenarios, a checker that sees every kind of violation, and a
short run of fixed seeds with the real bot (CI's campaign)."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.campaign.broken import ROOT, broken_copy
from scripts.campaign.check import EXPORT_HEADERS, check
from scripts.campaign.generate import (
    ADMIN,
    DRAWABLE,
    FAULT_KINDS,
    LAST_RULE,
    LAST_SEASON,
    REWARD_ROLES,
    REWARDS_SECONDS,
    SEASON_NAMES,
    drawn_commands,
    scenario_for,
)
from scripts.campaign.run import fault_details, faults_of, shrink
from scripts.scenario.model import parse_scenario
from scripts.scenario.runner import SEASON_STARTED, CommandResult, confirmed_backup, confirmed_effect

# Between them: a slow member list with a SIGKILL inside it, a SIGTERM, a second process, a guild
# outage, a gateway reconnect, writeConcernErrors, a REST fault, /data erase refused to a member.
CI_SEEDS = (11, 38, 117)


def test_the_same_seed_gives_the_same_scenario_and_every_scenario_is_valid() -> None:
    for seed in range(1, 30):
        first, again = scenario_for(seed), scenario_for(seed)
        assert first == again
        parse_scenario(copy.deepcopy(first))  # raises on anything the runner would refuse
    assert scenario_for(1) != scenario_for(2)


def test_a_long_campaign_draws_every_fault_kind_at_least_40_times() -> None:
    """The long run of docs/reliability.md: 200 seeds with the default parameters."""
    seen: Counter[str] = Counter()
    details: Counter[str] = Counter()
    for seed in range(1, 201):
        seen.update(faults_of(scenario_for(seed)))
        details.update(fault_details(scenario_for(seed)))
    kinds = {"sigterm", "sigkill", "db_outage", "db_proxy", "gateway_reconnect", "invalid_session",
             "guild_outage", "second_process", "member_list_held", "rest"}
    assert set(seen) == kinds and min(seen.values()) >= 40, seen
    assert {"db_faults", "db_late_request", "db_write_concern_error"} <= set(details)
    assert any(d.startswith("rest 429 ") for d in details) and any(d.startswith("rest 503 ") for d in details)
    assert {d.split()[-1] for d in details if d.startswith("rest ")} == {"invites", "history"}
    assert len(FAULT_KINDS) == 11


def test_a_long_campaign_draws_restores_and_staff_codes_and_a_seed_stays_the_same() -> None:
    """The admin commands of the issue: `/invites-admin restore` of the last reset and `staff add`
    (also of a code another member holds: refused), `staff remove`, each also by a member without
    Manage Server (`override`)."""
    drawn: Counter[tuple[str, bool]] = Counter()
    taken_codes = 0
    for seed in range(1, 201):
        scenario = scenario_for(seed)
        assert scenario == scenario_for(seed)
        commands = [s for s in scenario["steps"] if s["do"] == "command"]
        drawn.update((c["name"], bool(c.get("override"))) for c in commands)
        assert all(c["options"] == {"backup_id": "@last_reset"} for c in commands
                   if c["name"] == "invites-admin restore")
        taken_codes += _adds_of_a_held_code(commands)
    for name in ("invites-admin restore", "invites-admin staff add", "invites-admin staff remove"):
        assert drawn[(name, False)] >= 20 and drawn[(name, True)] >= 10, drawn
    assert taken_codes >= 5
    restores = [seed for seed in range(1, 201) if any(
        s.get("name") == "invites-admin restore" for s in scenario_for(seed)["steps"])]
    assert len(restores) >= 50


def _adds_of_a_held_code(commands: list[dict[str, Any]]) -> int:
    """Staff adds by the admin of a code the admin gave another member before (and did not remove)."""
    holders: dict[str, int] = {}
    found = 0
    for command in commands:
        if command.get("override"):
            continue
        options = command.get("options", {})
        if command["name"] == "invites-admin staff remove":
            holders = {code: m for code, m in holders.items() if m != options["member"]}
        elif command["name"] == "invites-admin staff add":
            holder = holders.get(options["code"])
            if holder is not None and holder != options["member"]:
                found += 1
            else:
                holders = {code: m for code, m in holders.items() if m != options["member"]}
                holders[options["code"]] = options["member"]
    return found


def answered(name: str, content: str) -> CommandResult:
    return CommandResult(1, 1.0, 101, name, {}, content, [], True,
                         messages=[{"content": content, "embeds": []}])


def test_the_runner_reads_restores_and_staff_changes_from_the_bots_answers() -> None:
    """What the bot's reply confirms, with the backup id a reset answered or a restore gave back;
    refusals and errors confirm nothing. A confirmation to a member without Manage Server (a
    server override showed them the command) breaks `permissions_respected`."""
    cases = [
        ("invites-admin reset", "Invites of <@102> reset: 2 joins no longer counted. Backup id: "
                                "`ib-0123456789ab` - undo with `/invites-admin restore ib-0123456789ab`.",
         "reset", "ib-0123456789ab"),
        ("invites-admin restore", "Backup `ib-0123456789ab` restored: 2 joins counted again.",
         "restore", "ib-0123456789ab"),
        ("invites-admin restore", "There is no backup `ib-000000000000` in this server: give the id "
                                  "that `/invites-admin reset` answered with.", None, None),
        ("invites-admin restore", "Backup `ib-0123456789ab` was already restored.", None, None),
        ("invites-admin restore", "You need the **Manage Server** permission to use "
                                  "`/invites-admin restore`.", None, None),
        ("invites-admin staff add", "Staff code `abc` saved for <@102>.", "staff", None),
        ("invites-admin staff add", "`abc` already belongs to <@103>; remove it there first with "
                                    "`/invites-admin staff remove`.", None, None),
        ("invites-admin staff remove", "Staff code of <@102> removed.", "staff", None),
        ("invites-admin staff remove", "<@102> has no staff code; `/invites-admin staff list` shows "
                                       "who has one.", None, None),
    ]
    confirmed = []
    for name, content, effect, backup in cases:
        result = answered(name, content)
        result.effect = confirmed_effect(result)
        assert (result.effect, confirmed_backup(result)) == (effect, backup), content
        confirmed += [asdict(result)] if result.effect else []
    verdict = check(report([], commands=confirmed), [], logs=[])
    assert len(verdict.violations["permissions_respected"]) == len(confirmed) == 4


def member(name: str, tracked: dict[str, Any], truth: dict[str, Any], **unseen: Any) -> dict[str, Any]:
    return {"name": name, "tracked": tracked, "truth": truth,
            "unobservable": {"voice_s": 0.0, "messages": 0, "maybe_messages": 0, "losable_messages": 0,
                             **unseen}}


def report(members: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"voice_tolerance_s": 3.0, "members": members, "inviters": [], "commands": [],
            "bot_exit_codes": [0], "second_processes": [], **extra}


def test_the_checker_names_each_broken_promise() -> None:
    base = {"messages": 5, "voice_s": 60, "cam_on_s": 0, "cam_off_s": 60, "stream_s": 0}
    rows = [
        member("double", {**base, "messages": 6}, base),
        member("lost", {**base, "voice_s": 50, "cam_off_s": 50}, base),
        member("wrong", {**base, "invited_by": "bob"}, {**base, "invited_by": "ada"}),
        member("missing", {**base, "invited_by": None}, {**base, "invited_by": "ada"}),
        member("ambiguous", {**base, "invited_by": "unknown"}, {**base, "invited_by": "ada"}),
        member("maybe", {**base, "messages": 7}, base, maybe_messages=2),
        member("losable", {**base, "messages": 4}, base, losable_messages=1),
    ]
    inviters = [{"name": "ada", "tracked": {"regular": 3, "bonus": 0}, "truth": {"regular": 2, "bonus": 1}}]
    too_many_fields = [{"fields": [{"name": "n", "value": "v"}] * 26}]
    commands = [{"name": "top", "at": 1.0, "content": "x" * 2001, "embeds": []},
                {"name": "ud", "at": 2.0, "content": None, "embeds": too_many_fields},
                # a follow-up over the limit, though the first message is fine
                {"name": "invites show", "at": 3.0, "content": "ok", "embeds": [],
                 "messages": [{"content": "ok", "embeds": []}, {"content": "y" * 2001, "embeds": []}],
                 "manage_server": True},
                # a server override showed /invites-admin bonus to a member; the bot confirmed it
                {"name": "invites-admin bonus", "at": 4.0, "content": "+2 bonus invites for <@102>: now 2",
                 "embeds": [], "effect": "bonus", "manage_server": False},
                {"name": "invites-admin bonus", "at": 5.0, "content": "+2 bonus invites for <@102>: now 4",
                 "embeds": [], "effect": "bonus", "manage_server": True}]
    def channel(ident: int, tracked: int, truth: int, **unseen: int) -> dict[str, Any]:
        return {"id": ident, "tracked": tracked, "truth": truth,
                "unobservable": {"maybe_messages": 0, "losable_messages": 0, **unseen}}

    channels = [channel(10, 6, 5), channel(11, 4, 5), channel(12, 7, 5, maybe_messages=2),
                channel(13, 4, 5, losable_messages=1)]  # counted twice, lost, and two within bounds
    run = report(rows, inviters=inviters, commands=commands, bot_exit_codes=[1, 0], channels=channels)
    verdict = check(run, ["SIGTERM"], logs=[])
    found = {name: len(texts) for name, texts in verdict.violations.items() if texts}
    assert found == {"no_double_count": 1, "observed_counted": 2, "no_wrong_inviter": 1,
                     "every_join_recorded": 1, "inviter_figures": 2, "channel_counts": 2,
                     "replies_within_limits": 3, "permissions_respected": 1, "exit_codes": 1}
    assert verdict.violations["channel_counts"] == ["channel 10: 6 messages > truth 5 (+0 maybe seen)",
                                                    "channel 11: 4 messages < truth 5 (-0 losable)"]
    assert verdict.unattributed == 1 and verdict.joins == 3


def test_each_credited_interval_past_the_first_may_add_a_whole_second_of_voice() -> None:
    """Campaign seed 38: a member with two sessions was credited 20 s for 18.493 s of truth, over
    the run's 1.5 s tolerance, by the whole-second rule alone."""
    truth = {"messages": 0, "voice_s": 18.493, "cam_on_s": 0, "cam_off_s": 18.493, "stream_s": 0}
    credited = {**truth, "voice_s": 20, "cam_off_s": 20}
    run = report([member("two sessions", credited, truth, rounding_voice_s=1.0),
                  member("one session", credited, truth)], voice_tolerance_s=1.5)
    found = check(run, [], logs=[]).violations["no_double_count"]
    assert found == ["one session: voice_s 20 > truth 18.493 (+1.5 the bot may have seen)",
                     "one session: cam_off_s 20 > truth 18.493 (+1.5 the bot may have seen)"]


def test_a_traceback_in_the_bot_log_is_a_violation(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("INFO fine\nTraceback (most recent call last):\n  File x\nKeyError: 'y'\n")
    verdict = check(report([]), [], logs=[log])
    assert list(verdict.violations["clean_log"]) and not verdict.ok


# sha256 of the steps of these seeds (default parameters) as the generator on `main` drew them before
# the commands of DRAWABLE existed: the regression scenarios and docs/reliability.md name them.
STEPS_BEFORE_DRAWABLE = {11: "06ab5fce651e3008", 38: "cc65ef924036ef07", 117: "5d66c995aef31341",
                         137: "b6c45d9a6dfca7c2", 163: "16cd1814431d6404", 180: "7e7e560b25053616"}


def test_the_new_commands_leave_every_earlier_step_of_a_seed_as_it_was() -> None:
    for seed, fingerprint in STEPS_BEFORE_DRAWABLE.items():
        drawn = drawn_commands(seed, 30.0)
        steps = scenario_for(seed)["steps"]
        earlier = [s for s in steps if s["at"] <= 31.0 and s not in drawn]  # the tail starts after 31 s
        assert len(earlier) + len(drawn) <= len(steps)
        digest = hashlib.sha256(json.dumps(earlier, sort_keys=True).encode()).hexdigest()[:16]
        assert digest == fingerprint, seed


def test_a_long_campaign_draws_every_command_of_the_table_and_the_refused_ones() -> None:
    """Each command of DRAWABLE, exports and rule changes also by a member without Manage Server
    (`override`); a rule removal names the last rule added."""
    drawn: Counter[tuple[str, bool]] = Counter()
    options: dict[str, set[str]] = {}
    for seed in range(1, 201):
        for step in scenario_for(seed)["steps"]:
            if step["do"] == "command":
                drawn[(step["name"], bool(step.get("override")))] += 1
                for key, value in step.get("options", {}).items():
                    options.setdefault(f"{step['name']} {key}", set()).add(str(value))
    names = {"goal set", "goal clear", "server stats", "invites retention", "export leaderboard",
             "export invites", "export joins", "rewards add", "rewards remove", "rewards list", "top", "ud",
             "season start", "season list", "export channels"}
    assert all(drawn[(name, False)] >= 20 for name in names), drawn
    assert all(drawn[(name, True)] >= 5 for name in ("export leaderboard", "rewards add", "rewards remove",
                                                     "season start", "export channels"))
    assert options["top period"] == {"today", "7d", "30d", "all", "season"}
    assert options["top season"] == {LAST_SEASON} and "season" in options["ud period"]
    assert options["season start starts"] == {"today", "tomorrow"}
    assert set(SEASON_NAMES) <= options["season start name"]
    assert options["top board"] == {"messages", "voice", "camera", "streaming"}
    assert options["ud chart"] == {"True"} and options["invites leaderboard sort"] == {"retained_30d"}
    assert options["rewards remove rule"] == {LAST_RULE}
    assert {"reach", "top"} <= {k.split()[-1] for k in options if k.startswith("rewards add ")}
    assert options["rewards add role"] == {str(r) for r in REWARD_ROLES}
    assert len(DRAWABLE) >= 12


def test_a_scenario_ends_with_everyone_out_of_voice_and_a_quiet_while_longer_than_the_rewards_check() -> None:
    for seed in (1, 2, 3, 11):
        scenario = scenario_for(seed)
        steps = scenario["steps"]
        in_voice: dict[int, Any] = {}
        for step in steps:
            if step["do"] == "voice":
                in_voice[step["user"]] = step["channel"]
            elif step["do"] == "leave":
                in_voice.pop(step["user"], None)
        assert not any(in_voice.values()), seed
        last_change = max(s["at"] for s in steps[:-1] if s["do"] != "command")
        assert scenario["settings"]["REWARDS_SECONDS"] == REWARDS_SECONDS
        assert steps[-1]["at"] - last_change > REWARDS_SECONDS + 2  # + the voice flush
        assert steps[-1] == {"at": steps[-1]["at"], "do": "command", "user": ADMIN, "name": "rewards list"}
        assert {r["id"] for r in scenario["guild"]["roles"]} >= set(REWARD_ROLES)


def test_the_export_headers_the_checker_wants_are_the_columns_of_docs_export_md() -> None:
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    for kind, header in EXPORT_HEADERS.items():
        section = text.split(f"### {kind}\n", 1)[1].split("\n#", 1)[0]
        rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
        assert [name for cell in rows for name in re.findall(r"`([a-z_]+)`", cell)] == header, kind


def attached(filename: str, data: bytes) -> dict[str, Any]:
    return {"filename": filename, "size": len(data), "head": base64.b64encode(data[:512]).decode()}


def test_the_checker_looks_into_every_attached_file() -> None:
    """A chart is a PNG, an export a CSV with the BOM and its documented header; an embed's image is
    attached; an export reply that speaks of its file has one."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 40
    header = '"member_id","member_name","regular","left","fake","bonus","total","staff_code"\r\n'
    good_csv = b"\xef\xbb\xbf" + header.encode() + b'"=""1""","ada","1","0","0","0","1",""\r\n'
    sent = "2 rows (invite figures per inviter, all time). UTF-8 CSV, dates in UTC"

    def reply(name: str, files: list[dict[str, Any]], content: str | None = None,
              image: str | None = None) -> dict[str, Any]:
        embeds = [{"description": "x", "image": {"url": f"attachment://{image}"}}] if image else []
        return {"name": name, "at": 1.0, "content": content, "embeds": embeds, "manage_server": True,
                "messages": [{"content": content, "embeds": embeds, "attachments": files}]}

    fine = [reply("ud", [attached("activity.png", png)], image="activity.png"),
            reply("server stats", [attached("server-stats.png", png)], image="server-stats.png"),
            reply("export invites", [attached("invites-all-1-20261202.csv", good_csv)], sent)]
    assert check(report([], commands=fine), [], logs=[]).ok
    broken = [reply("ud", [attached("activity.png", b"GIF89a")], image="activity.png"),
              reply("ud", [attached("activity.png", b"")], image="activity.png"),
              reply("server stats", [], content="x", image="server-stats.png"),
              reply("export invites", [attached("invites-all-1.csv", good_csv[3:])], sent),
              reply("export invites", [attached("invites-1.csv", good_csv.replace(b"staff_", b""))], sent),
              reply("export joins", [], sent)]
    verdict = check(report([], commands=broken), [], logs=[])
    assert len(verdict.violations["replies_within_limits"]) == len(broken), verdict.violations


def test_the_runner_reads_rule_changes_and_exports_from_the_bots_answers() -> None:
    cases = [
        ("rewards add", "Rule `1577798095926722563` added: <@&60> for members who top 3 of voice.", [],
         "rule"),
        ("rewards remove", "Rule `1577798095926722563` removed (<@&60>, top 3 of voice).", [], "rule"),
        ("rewards remove", "No rule `1` in this server; `/rewards list` shows the rules and their ids.", [],
         None),
        ("rewards add", "You need the **Manage Server** permission to use `/rewards add`.", [], None),
        ("export joins", "7 rows (joins). UTF-8 CSV", [{"filename": "joins-all-1-20261202.csv"}], "export"),
        ("export joins", "You need the **Manage Server** permission to use `/export joins`.", [], None),
    ]
    for name, content, files, effect in cases:
        result = answered(name, content)
        result.messages[0]["attachments"] = files
        assert confirmed_effect(result) == effect, content


def test_a_rule_stored_by_a_member_without_manage_server_breaks_permissions_respected() -> None:
    commands = [{"name": "rewards list", "at": 1.0, "user": 900101, "content": "ok", "embeds": [],
                 "manage_server": True},
                {"name": "rewards add", "at": 2.0, "user": 900102, "content": "no", "embeds": [],
                 "manage_server": False}]
    rule = {"rule_id": 7, "role_id": 60, "metric": "messages", "period": "all", "reach": 1, "top": None,
            "status": "active", "added_by": 900101, "removed_by": None}
    assert check(report([], commands=commands, rewards={"rules": [rule], "roles": {}}), [], logs=[]).ok
    sneaked = {**rule, "rule_id": 8, "added_by": 900102}
    rewards = {"rules": [rule, sneaked], "roles": {}}
    verdict = check(report([], commands=commands, rewards=rewards), [], logs=[])
    assert verdict.violations["permissions_respected"] == [
        "rule 8: added by 900102, who has no Manage Server"]


def test_the_runner_reads_season_starts_from_the_bots_answers() -> None:
    """A started season is an effect (and its name what `@last_season` stands for next); a refusal
    or a refusal for want of Manage Server is none."""
    started = ("Season **Autumn 2026** counts from 00:00 tomorrow in the server's time zone (UTC): "
               "<t:1796256000:F>. **Spring** ends with 2026-12-02 and stays readable.")
    result = answered("season start", started)
    assert confirmed_effect(result) == "season"
    assert SEASON_STARTED.search(started) and SEASON_STARTED.search(started).group(1) == "Autumn 2026"
    for refused in ("This server has a season named **Spring** already; pick another name.",
                    "You need the **Manage Server** permission to use `/season start`."):
        assert confirmed_effect(answered("season start", refused)) is None


def test_a_season_started_by_a_member_without_manage_server_breaks_permissions_respected() -> None:
    commands = [{"name": "season start", "at": 1.0, "user": 900101, "content": "ok", "embeds": [],
                 "manage_server": True, "effect": "season"},
                {"name": "season start", "at": 2.0, "user": 900102, "content": "no", "embeds": [],
                 "manage_server": False}]
    season = {"name": "Spring", "start_day": "2026-12-02", "started_by": 900101}
    seasons = {"stored": [season], "day_messages": {}, "today": "2026-12-02", "last_change_at": 30.0}
    assert check(report([], commands=commands, seasons=seasons), [], logs=[]).ok
    sneaked = {"stored": [season, {"name": "Summer", "start_day": "2026-12-03", "started_by": 900102}]}
    verdict = check(report([], commands=commands, seasons={**seasons, **sneaked}), [], logs=[])
    assert verdict.violations["permissions_respected"] == [
        "season 'Summer': started by 900102, who has no Manage Server"]
    confirmed = [*commands, {**commands[1], "effect": "season"}]
    verdict = check(report([], commands=confirmed, seasons=seasons), [], logs=[])
    assert verdict.violations["permissions_respected"] == [
        "/season start at 2s: season confirmed to a member without Manage Server"]


def top_answer(at: float, lines: list[str], **options: Any) -> dict[str, Any]:
    embed = {"title": "Top messages", "description": "\n".join(lines) or "Nobody yet."}
    return {"name": "top", "at": at, "user": 900101, "content": None, "embeds": [embed],
            "manage_server": True, "options": {"board": "messages", "period": "season", **options}}


def test_season_board_recomputes_the_settled_season_board_from_the_day_documents() -> None:
    """The current season (the latest started by today) from its start day: days before it and a
    season starting tomorrow do not count; by messages descending then member id; a member with
    none is left out. Only answers after the last traffic are compared."""
    seasons = {
        "stored": [{"name": "Old", "start_day": "2026-11-01", "started_by": 900101},
                   {"name": "Spring", "start_day": "2026-12-02", "started_by": 900101},
                   {"name": "Next", "start_day": "2026-12-03", "started_by": 900101}],
        "day_messages": {"905": {"2026-12-01": 50, "2026-12-02": 4}, "902": {"2026-12-02": 4},
                         "903": {"2026-12-02": 9, "2026-12-03": 1}, "904": {"2026-12-01": 3}},
        "today": "2026-12-02", "last_change_at": 31.5}
    right = ["`#1` <@903> - 9 messages", "`#2` <@902> - 4 messages", "`#3` <@905> (eve, left) - 4 messages"]
    early = top_answer(20.0, ["`#1` <@905> - 1 message"])  # traffic still ran: not compared
    fine = [early, top_answer(35.5, right), top_answer(35.5, ["x"], season="Old")]
    assert check(report([], commands=fine, seasons=seasons), [], logs=[]).ok
    wrong = [top_answer(35.5, [right[0], right[2], right[1]]), top_answer(36.0, right[:2]),
             {**top_answer(37.0, []), "embeds": [], "content": "No season yet: an admin starts one."}]
    verdict = check(report([], commands=wrong, seasons=seasons), [], logs=[])
    assert len(verdict.violations["season_board"]) == 3, verdict.violations
    assert "shows None, the day documents give [(903, 9), (902, 4), (905, 4)]" in (
        verdict.violations["season_board"][2])
    none_yet = {**seasons, "stored": seasons["stored"][2:]}  # only one that starts tomorrow
    assert check(report([], commands=wrong[2:], seasons=none_yet), [], logs=[]).ok


def counted(alias: int, discord_id: int, messages: int = 0, voice_s: int = 0,
            cam_on_s: int = 0) -> dict[str, Any]:
    row = member(f"m{alias}", {"messages": messages, "voice_s": voice_s, "cam_on_s": cam_on_s},
                 {"messages": messages, "voice_s": voice_s, "cam_on_s": cam_on_s})
    return {**row, "id": alias, "discord_id": str(discord_id)}


def test_roles_by_rules_recomputes_the_roles_from_the_stored_counts() -> None:
    """Reach: at least the threshold (voice in hours); top N: by count, a tie to the lower Discord
    id (not the scenario's alias), a member who left takes their place but gets nothing; a removed
    rule manages nothing; a role without rules is nobody's business."""
    rows = [counted(101, 905, messages=6), counted(102, 901, messages=6, voice_s=30),
            counted(103, 903, messages=2, voice_s=40), counted(104, 902, messages=9), counted(300, 904)]
    rules = [{"rule_id": 1, "role_id": 60, "metric": "messages", "period": "7d", "top": 2, "reach": None,
              "status": "active"},
             {"rule_id": 2, "role_id": 61, "metric": "messages", "period": "all", "reach": 6, "top": None,
              "status": "active"},
             {"rule_id": 3, "role_id": 61, "metric": "voice", "period": "all", "reach": 1, "top": None,
              "status": "active"},
             {"rule_id": 4, "role_id": 62, "metric": "voice", "period": "all", "top": 1, "reach": None,
              "status": "removed"}]
    # 104 (9) then 102 (6, Discord id 901 below 101's 905) in the top 2; 104 left the server.
    roles = {"101": [61, 62], "102": [60, 61], "103": [50], "300": []}
    run = report(rows, rewards={"rules": rules, "roles": roles})
    assert check(run, [], logs=[]).ok, check(run, [], logs=[]).violations
    wrong = {"101": [60, 61], "102": [61], "103": [61], "300": [62]}
    verdict = check(report(rows, rewards={"rules": rules, "roles": wrong}), [], logs=[])
    assert sorted(verdict.violations["roles_by_rules"]) == [
        "m101 holds role 60 (rules: messages top 2; stored {'messages': 6, 'voice_s': 0, 'cam_on_s': 0})",
        "m102 lacks role 60 (rules: messages top 2; stored {'messages': 6, 'voice_s': 30, 'cam_on_s': 0})",
        "m103 holds role 61 (rules: messages reach 6; voice reach 1; stored "
        "{'messages': 2, 'voice_s': 40, 'cam_on_s': 0})"]


def test_the_shrinker_keeps_only_what_the_failure_needs() -> None:
    scenario = scenario_for(5)
    culprit = next(s for s in scenario["steps"] if s["do"] == "join")

    def still_fails(candidate: dict[str, Any]) -> bool:
        return culprit in candidate["steps"]

    small = shrink(scenario, still_fails, attempts=200)
    assert small["steps"] == [culprit]


async def run_seeds(seeds: tuple[int, ...], folder: Path, cwd: Path | None = None) -> list[dict[str, Any]]:
    """Each seed through `python -m scripts.campaign --seed N` (from `cwd`: another copy of the
    source), side by side."""
    async def one(seed: int) -> dict[str, Any]:
        out = folder / f"seed-{seed}.json"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.campaign", "--seed", str(seed),
            "--workdir", str(folder / f"seed-{seed}"), "--result", str(out),
            cwd=str(cwd or ROOT), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await process.wait()
        return json.loads(out.read_text(encoding="utf-8"))

    return list(await asyncio.gather(*(one(seed) for seed in seeds)))


async def test_ci_campaign_fixed_seeds_with_the_real_bot_break_no_invariant(tmp_path: Path) -> None:
    """CI's campaign: fixed seeds, each 30 s of traffic with faults (then the quiet tail of the
    activity roles), the real bot process."""
    for seed, result in zip(CI_SEEDS, await run_seeds(CI_SEEDS, tmp_path), strict=True):
        assert result["ok"], (seed, result["violations"], result.get("bot_log"))
        assert result["events"] > 50 and sum(result["faults"].values()) >= 3


async def test_a_build_without_the_message_guard_is_caught_by_the_ci_seeds(tmp_path: Path) -> None:
    """Issue 15, done-when: the same seeds against a copy of the source whose message counts lost
    their exactly-once guard. A writeConcernError (the write applied, the reply an error) makes the
    bot retry: the broken build counts those messages twice, and the campaign says so."""
    source = broken_copy("message_guard", tmp_path / "broken")
    results = await run_seeds(CI_SEEDS, tmp_path / "runs", cwd=source)
    doubled = [text for r in results for text in r["violations"].get("no_double_count", [])]
    assert any("messages" in text for text in doubled), [r["violations"] for r in results]


async def test_a_build_whose_top_rules_rank_backwards_is_caught_by_roles_by_rules(tmp_path: Path) -> None:
    """Seed 8 adds a top-3 voice rule (beside a messages reach) for one role: a bot that ranks the
    lowest counts first gives it to other members than the stored counts and rules do."""
    source = broken_copy("rewards_top_order", tmp_path / "broken")
    [result] = await run_seeds((8,), tmp_path / "runs", cwd=source)
    assert result["violations"].get("roles_by_rules"), result["violations"]
