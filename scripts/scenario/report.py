"""The report: what MongoDB holds beside the ground truth, the differences, every command response."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.storage.database import make_client
from app.storage.retry import RetryPolicy
from scripts.scenario.runner import RunResult
from scripts.scenario.tracked import TrackedInvites, read_channels, read_tracked
from scripts.scenario.truth import COUNTERS, ChannelTruth, MemberTruth, Truth

VOICE_TOLERANCE_PER_RESTART_S = 1.5
VOICE_COUNTERS = tuple(name for name in COUNTERS if name != "messages")


def voice_tolerance(result: RunResult) -> float:
    """1.5 s of voice time per restart (and once for the run's own start and stop)."""
    return VOICE_TOLERANCE_PER_RESTART_S * (1 + result.scenario.restarts)


def compute_truth(result: RunResult) -> Truth:
    settings = result.scenario.settings
    cap = float(settings.get("VOICE_DOWNTIME_CAP_SECONDS", 600))
    afk = result.scenario.guild.get("afk_channel")
    unreadable = {int(c) for c in result.scenario.guild.get("history_denied", [])}
    parents = {int(c["id"]): int(c["parent"]) for c in result.scenario.guild.get("channels", [])
               if c.get("parent") is not None}
    return Truth(int(afk) if afk is not None else None, cap, unreadable=unreadable,
                 parents=parents).compute(result.happened)


def channel_rows(truth: dict[int, ChannelTruth], tracked: dict[int, int]) -> list[dict[str, Any]]:
    """Per channel: the messages tracked beside the truth; `difference` when outside the bounds the
    member rules allow (maybe counted, maybe lost), else 0."""
    rows = []
    for channel in sorted(set(truth) | set(tracked)):
        true = truth.get(channel, ChannelTruth())
        got = tracked.get(channel, 0)
        low, high = true.messages - true.losable_messages, true.messages + true.maybe_messages
        rows.append({"id": channel, "tracked": got, "truth": true.messages, "unobservable": asdict(true),
                     "difference": 0 if low <= got <= high else got - true.messages})
    return rows


def _inviter_label(inviter: int | None, names: dict[int, str]) -> str:
    if inviter is None:
        return "unknown"
    if inviter < 0:
        return "vanity"
    return names.get(inviter, str(inviter))


def _within_losable(figure: str, delta: int, losable: int) -> bool:
    """Rejoins the bot may take for first joins (`InviterTruth.losable_regular`) may add up to
    `losable` to the inviter's regular (and so to left and total)."""
    if figure in ("regular", "left"):
        return 0 <= delta <= losable
    if figure == "total":
        return -losable <= delta <= losable
    return delta == 0


def _member_row(member_id: int, alias: int, name: str, truth: MemberTruth, tracked: dict[str, int],
                invited: TrackedInvites, tolerance: float, names: dict[int, str]) -> dict[str, Any]:
    diff: dict[str, float] = {}
    for counter in COUNTERS:
        delta = tracked.get(counter, 0) - getattr(truth, counter)
        slack = truth.erase_voice_s + truth.losable_voice_s + truth.rounding_voice_s
        allowed = tolerance + slack if counter in VOICE_COUNTERS else 0
        if abs(delta) > allowed:
            diff[counter] = round(delta, 3)
    true_inviter = _inviter_label(truth.inviter, names) if truth.joined_at is not None else None
    tracked_inviter = invited.inviter_label(member_id, names)
    next_inviter = (_inviter_label(truth.losable_next_inviter, names) if truth.losable_rejoined else None)
    lost_with_the_process = truth.losable_join and tracked_inviter in (None, next_inviter)
    if true_inviter is not None and tracked_inviter != true_inviter and not lost_with_the_process:
        diff["invited_by"] = f"{tracked_inviter} != {true_inviter}"
    return {
        "id": alias, "discord_id": str(member_id), "name": name,
        "tracked": {**tracked, "invited_by": tracked_inviter},
        "truth": {**{c: round(getattr(truth, c), 3) for c in COUNTERS}, "invited_by": true_inviter},
        "unobservable": {"voice_s": round(truth.unobservable_voice_s, 3),
                         "messages": truth.unobservable_messages, "maybe_messages": truth.maybe_messages,
                         "losable_messages": truth.losable_messages, "joins": truth.unobservable_joins,
                         "erase_voice_s": round(truth.erase_voice_s, 3),
                         "losable_voice_s": round(truth.losable_voice_s, 3),
                         "rounding_voice_s": truth.rounding_voice_s,
                         "losable_join": truth.losable_join,
                         "losable_next_inviter": next_inviter},
        "differences": diff,
    }


async def build_report(result: RunResult, policy: RetryPolicy | None = None) -> dict[str, Any]:
    truth = compute_truth(result)
    reverse = {real: alias for alias, real in result.aliases.items()}
    names = _names(result)
    everyone = set(truth.members) | set(truth.inviters) | set(names)
    member_ids = sorted(everyone, key=lambda m: reverse.get(m, m))
    client = make_client(result.mongodb_uri)
    try:
        tracked, invites = await read_tracked(client[result.db_name], result.scenario.guild_id, member_ids,
                                              policy or RetryPolicy())
        channels = channel_rows(truth.channels, await read_channels(
            client[result.db_name], result.scenario.guild_id, policy or RetryPolicy()))
        reward_log = [{k: v for k, v in doc.items() if k != "_id"}
                      async for doc in client[result.db_name].reward_log.find({}).sort("at_ms", 1)]
        rewards = await _rewards(client[result.db_name], result, reverse)
        seasons = await _seasons(client[result.db_name], result)
    finally:
        await client.close()
    tolerance = voice_tolerance(result)
    members = [
        _member_row(m, reverse.get(m, m), names.get(m, str(m)), truth.members.get(m, MemberTruth()),
                    tracked.get(m, {}), invites, tolerance, names)
        for m in member_ids
    ]
    for row in members:  # the emulator's roles at the end (None: not a member any more)
        row["roles"] = result.member_roles.get(int(row["discord_id"]))
    inviters = []
    for inviter in sorted(set(truth.inviters) | set(invites.counts)):
        expected = truth.inviters.get(inviter)
        true_counts = {"regular": expected.regular, "left": expected.left, "fake": expected.fake,
                       "bonus": expected.bonus, "total": expected.total} if expected else {}
        got = invites.counts.get(inviter, {})
        losable = expected.losable_regular if expected else 0
        differences = {k: got.get(k, 0) - v for k, v in true_counts.items()
                       if not _within_losable(k, got.get(k, 0) - v, losable)}
        if expected is None and any(got.values()):
            differences = dict(got)
        inviters.append({"id": reverse.get(inviter, inviter), "name": names.get(inviter, str(inviter)),
                         "tracked": got, "truth": true_counts, "differences": differences,
                         "unobservable": {"losable_regular": losable}})
    exit_codes = result.bot_exit_codes + [p.exit_code for p in result.second_processes]
    ok = (all(not row["differences"] for row in members) and all(not row["differences"] for row in inviters)
          and all(not row["difference"] for row in channels)
          and all(code == 0 for code in exit_codes if code is not None and code >= 0))
    return {
        "scenario": result.scenario.name,
        "ok": ok,
        "voice_tolerance_s": tolerance,
        "restarts": result.scenario.restarts,
        "bot_exit_codes": result.bot_exit_codes,
        "second_processes": [asdict(p) for p in result.second_processes],
        "latency": asdict(result.scenario.latency),
        "members": members,
        "inviters": inviters,
        "channels": channels,
        "commands": [asdict(command) for command in result.commands],
        # activity roles: the bot's accepted role changes in the emulator, and what it recorded
        "role_changes": [list(change) for change in result.role_changes],
        "reward_log": reward_log,
        "rewards": rewards,
        "seasons": seasons,
        "bot_log": str(result.bot_log) if result.bot_log else None,
    }


async def _rewards(db: Any, result: RunResult, reverse: dict[int, int]) -> dict[str, Any]:
    """The activity-role rules stored (every status; who added and removed them: Discord ids, like
    the commands' `user`) and each present member's roles in the emulator at the end (by scenario id,
    like the members' rows)."""
    keys = ("rule_id", "role_id", "metric", "period", "reach", "top", "status", "added_by", "removed_by")
    rules = []
    async for doc in db["reward_rules"].find({"guild_id": result.scenario.guild_id}).sort("rule_id", 1):
        rules.append({k: doc.get(k) for k in keys})
    roles = {str(reverse.get(member, member)): held for member, held in sorted(result.member_roles.items())}
    return {"rules": rules, "roles": roles}


async def _seasons(db: Any, result: RunResult) -> dict[str, Any]:
    """The seasons stored (who started them: Discord ids, like the commands' `user`); the messages
    of each member's day documents (Discord id -> day -> messages); the server's day now (UTC, the
    campaign's time zone); and when the last step other than a command came (seconds from the
    start): a command after it read settled counts."""
    guild = result.scenario.guild_id
    stored = [{k: doc.get(k) for k in ("name", "start_day", "started_by")}
              async for doc in db["seasons"].find({"guild_id": guild}).sort("start_day", 1)]
    days: dict[str, dict[str, int]] = {}
    async for doc in db["activity"].find({"guild_id": guild, "kind": "day"}):
        days.setdefault(str(doc["member_id"]), {})[str(doc["day"])] = int(doc.get("messages", 0))
    changes = [step.at for step in result.scenario.steps if step.do != "command"]
    return {"stored": stored, "day_messages": days, "today": datetime.now(UTC).date().isoformat(),
            "last_change_at": max(changes, default=0.0)}


def _names(result: RunResult) -> dict[int, str]:
    names: dict[int, str] = {}
    for member in result.scenario.guild.get("members", []):
        real = result.aliases.get(int(member["id"]), int(member["id"]))
        names[real] = str(member.get("name", member["id"]))
    for step in result.scenario.steps:
        user = step.args.get("user")
        if step.do == "join" and isinstance(user, dict):
            names[result.aliases.get(int(user["id"]), int(user["id"]))] = str(user.get("name", user["id"]))
    return names


def write_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def _hms(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def render_table(report: dict[str, Any]) -> str:
    """A readable table: tracked / true per member, then invite counts per inviter."""
    header = ["member", "messages", "voice", "camera on", "camera off", "streaming", "invited by", "ok"]
    rows = [header]
    for row in report["members"]:
        tracked, truth = row["tracked"], row["truth"]
        cells = [row["name"], f"{tracked.get('messages', 0)} / {truth['messages']:g}"]
        for counter in VOICE_COUNTERS:
            cells.append(f"{_hms(tracked.get(counter, 0))} / {_hms(truth[counter])}")
        cells.append(f"{tracked['invited_by'] or '-'} / {truth['invited_by'] or '-'}")
        cells.append("yes" if not row["differences"] else "NO: " + ", ".join(row["differences"]))
        rows.append(cells)
    lines = _format(rows)
    lines.append("")
    invite_rows = [["inviter", "regular", "left", "fake", "bonus", "total", "ok"]]
    for row in report["inviters"]:
        tracked, truth = row["tracked"], row["truth"]
        cells = [row["name"]] + [f"{tracked.get(k, 0)} / {truth.get(k, 0)}"
                                 for k in ("regular", "left", "fake", "bonus", "total")]
        cells.append("yes" if not row["differences"] else "NO: " + ", ".join(row["differences"]))
        invite_rows.append(cells)
    lines += _format(invite_rows)
    lines.append("")
    lines.append("(each cell: tracked in MongoDB / ground truth from the emulator; voice within "
                 f"{report['voice_tolerance_s']:g}s over {report['restarts']} restart(s))")
    for second in report.get("second_processes", []):
        lines.append(f"second bot process (step {second['step']}, {second['seconds']:g}s from "
                     f"{second['at']:g}s): exit code {second['exit_code']}")
    return "\n".join(lines)


def _format(rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        out.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return out
