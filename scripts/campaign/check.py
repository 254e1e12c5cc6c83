"""Invariants of one run, from the ground truth alone (what Discord did), never from the bot's code.

The input is the scenario runner's report (`scripts.scenario.report.build_report`): per member the
truth (what happened, from the emulator's side), what the bot stored (read from MongoDB), and what
the bot could not have observed (voice time of members who left voice while it was down; messages
no session received). Each invariant names one promise:

- `no_double_count`: no counter above the truth (voice: plus the documented tolerance per restart;
  messages: plus those sent while the bot stopped or restarted that a session still received: a
  process shutting down still counts what reaches it);
- `observed_counted`: every counter at least the truth minus what the bot may miss by its own
  documented rules (messages received within 0.3 s before a SIGKILL; voice: the tolerance, the
  downtime of a member whose voice change came within 0.3 s before a SIGKILL (the change may be
  lost, the restart credits the downtime with the state before it), plus
  the time of members who left voice while the bot was down, plus discord.py's chunk timeout for
  a restart while the member list loads);
- `no_wrong_inviter`: a recorded join credits the inviter whose invite was used, or nobody
  (`unknown` covers ambiguous and unknown: allowed, counted in `unattributed`);
- `every_join_recorded`: every join the truth has is recorded;
- `inviter_figures`: no inviter has more regular joins than the truth, bonus equal to the truth;
- `channel_counts`: every channel's messages (a thread's under its parent channel) within the
  member rules' bounds of the truth: at most the truth plus what the bot may have seen, at least the
  truth minus what a SIGKILL may lose (an erase changes no channel count);
- `replies_within_limits`: every command answered, every message it produced (response and
  follow-ups) within Discord's limits, every file it attached whole: not empty, a chart a PNG, an
  export a UTF-8 CSV with the byte-order mark and the header of docs/export.md; an image an embed
  shows (`attachment://name`) attached; an export that says it sent a file sent one;
- `permissions_respected`: no bonus, reset, restore, erase, staff code change, activity-role rule
  change, season start or export file confirmed to a member without Manage Server (a server
  override may show them the command; the bot's own check must still refuse), and no stored rule
  added or removed, and no stored season started, by one;
- `roles_by_rules`: at the end, every member holds a role that has active rules exactly when the
  rules give it to them, computed here from the counts the bot stored (docs/rewards.md: reach: the
  count at least the threshold; top: the first N members with a count, by count descending then
  member id; members who left count in a top but are given nothing). A run lasts under a minute,
  so the 7d and 30d periods (today included) hold all of it: every period's count is the all-time one;
- `season_board`: every `/top board:messages period:season` answered after the last traffic (the
  scenario's quiet tail: the counts no longer change) shows as its first page the board computed
  here from the messages of the day documents MongoDB holds from the current season's start day
  (the latest stored season that started by today) to the next one's: by count descending, then
  member id, members with none left out; "No season yet" exactly when no season has started;
- `clean_log`: no traceback in any bot process's log;
- `exit_codes`: every stop ended 0 (SIGTERM) or -9 (SIGKILL); second processes 0.
"""

from __future__ import annotations

import base64
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.wiring import reply_limits as limits

INVARIANTS = ("no_double_count", "observed_counted", "no_wrong_inviter", "every_join_recorded",
              "inviter_figures", "channel_counts", "replies_within_limits", "permissions_respected",
              "roles_by_rules", "season_board",
              "clean_log", "exit_codes")
COUNTERS = ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")
VOICE = ("voice_s", "cam_on_s", "cam_off_s", "stream_s")
UNCREDITED = "unknown"
# A restart while the member list loads: discord.py fires guild_available only after its chunk
# timeout (at least 5 s), so voice changes made while the bot was down are seen from then.
CHUNK_TIMEOUT_S = 5.5
TRACEBACK = re.compile(r"^Traceback \(most recent call last\)", re.M)
PNG = b"\x89PNG\r\n\x1a\n"
BOM = b"\xef\xbb\xbf"
# docs/export.md, "Columns": the header line of each export, by the file name's first word.
EXPORT_HEADERS = {
    "leaderboard": ["member_id", "member_name", "messages", "voice_seconds", "voice_hours",
                    "camera_on_seconds", "camera_off_seconds", "streaming_seconds"],
    "invites": ["member_id", "member_name", "regular", "left", "fake", "bonus", "total", "staff_code"],
    "joins": ["member_id", "member_name", "joined_at", "source", "code", "inviter_id", "inviter_name",
              "counted", "fake_reason", "left_at", "status", "reset_id"],
    "channels": ["channel_id", "channel_name", "messages", "share_percent"],
}
# The bot's export replies that say a file is attached (cogs/export.py, `reply_text`).
EXPORT_SENT = ("UTF-8 CSV", "Nothing to export", "The file was cut")
# docs/rewards.md: metric -> the counter it reads; reach in messages, or hours of voice or camera.
RULE_COUNTERS = {"messages": "messages", "voice": "voice_s", "camera": "cam_on_s"}
HOUR_S = 3600
# A `/top` answer read this long after the last traffic sees settled counts (messages are written
# within a second; the faults end QUIET_TAIL_SECONDS before the traffic does).
SETTLED_S = 3.0
TOP_PAGE = 10  # members on a page of /top (cogs/stats.py, PAGE_SIZE)
TOP_LINE = re.compile(r"^`#(\d+)` <@(\d+)>.* - ([\d,]+) messages?$")
NO_SEASON = "No season yet"


@dataclass
class Verdict:
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in INVARIANTS})
    unattributed: int = 0
    joins: int = 0

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def add(self, invariant: str, text: str) -> None:
        self.violations[invariant].append(text)

    def counts(self) -> dict[str, int]:
        return {name: len(found) for name, found in self.violations.items()}


def check(report: dict[str, Any], signals: list[str], logs: list[Path] | None = None, *,
          held_restarts: int = 0) -> Verdict:
    """`signals`: the scenario's restarts in order ("SIGTERM" / "SIGKILL"); the runner stops the
    last process with SIGTERM. `held_restarts`: restarts while the member list loaded slowly."""
    verdict = Verdict()
    tolerance = float(report.get("voice_tolerance_s", 0.0)) + CHUNK_TIMEOUT_S * held_restarts
    for row in report["members"]:
        _counters(verdict, row, tolerance)
        _inviter(verdict, row)
    for row in report["inviters"]:
        _figures(verdict, row)
    for row in report.get("channels", []):
        _channel(verdict, row)
    for command in report["commands"]:
        _reply(verdict, command)
    _rule_authors(verdict, report)
    _season_authors(verdict, report)
    _roles(verdict, report)
    _season_boards(verdict, report)
    for path in logs if logs is not None else _logs(report):
        _log(verdict, path)
    _exits(verdict, report, signals)
    return verdict


def _counters(verdict: Verdict, row: dict[str, Any], tolerance: float) -> None:
    truth, tracked, unseen = row["truth"], row["tracked"], row.get("unobservable", {})
    for counter in COUNTERS:
        got, true = float(tracked.get(counter, 0)), float(truth.get(counter, 0))
        if counter == "messages":
            over, under = unseen.get("maybe_messages", 0), unseen.get("losable_messages", 0)
        else:
            slack = (unseen.get("erase_voice_s", 0.0) + unseen.get("losable_voice_s", 0.0)
                     + unseen.get("rounding_voice_s", 0.0))
            over, under = tolerance + slack, tolerance + slack + unseen.get("voice_s", 0.0)
        if got > true + over:
            verdict.add("no_double_count", f"{row['name']}: {counter} {got:g} > truth {true:g} "
                                           f"(+{over:g} the bot may have seen)")
        if got < true - under:
            verdict.add("observed_counted", f"{row['name']}: {counter} {got:g} < truth {true:g} "
                                            f"(-{under:g} it may have missed)")


def _inviter(verdict: Verdict, row: dict[str, Any]) -> None:
    true = row["truth"].get("invited_by")
    if true is None:
        return
    verdict.joins += 1
    got = row["tracked"].get("invited_by")
    unseen = row.get("unobservable", {})
    if got is None and unseen.get("losable_join"):
        verdict.unattributed += 1  # its event may have died with the process: the rule allows it
    elif unseen.get("losable_join") and got == unseen.get("losable_next_inviter"):
        verdict.unattributed += 1  # and the member's next join was taken for their first
    elif got is None:
        verdict.add("every_join_recorded", f"{row['name']}: no join recorded (invited by {true})")
    elif got == UNCREDITED and true != UNCREDITED:
        verdict.unattributed += 1
    elif got != true:
        verdict.add("no_wrong_inviter", f"{row['name']}: credited to {got}, used {true}'s invite")


def _figures(verdict: Verdict, row: dict[str, Any]) -> None:
    truth, tracked = row["truth"], row["tracked"]
    if not truth:
        if any(tracked.get(k, 0) for k in ("regular", "bonus")):
            verdict.add("inviter_figures", f"{row['name']}: {tracked} with no invite used")
        return
    regular, bonus = tracked.get("regular", 0), tracked.get("bonus", 0)
    if regular > truth.get("regular", 0) + row.get("unobservable", {}).get("losable_regular", 0):
        verdict.add("inviter_figures", f"{row['name']}: regular {regular} > {truth['regular']}")
    if bonus != truth.get("bonus", 0):
        verdict.add("inviter_figures", f"{row['name']}: bonus {bonus} != {truth['bonus']}")


def _channel(verdict: Verdict, row: dict[str, Any]) -> None:
    got, true, unseen = row["tracked"], row["truth"], row.get("unobservable", {})
    over, under = unseen.get("maybe_messages", 0), unseen.get("losable_messages", 0)
    name = f"channel {row['id']}"
    if got > true + over:
        verdict.add("channel_counts", f"{name}: {got} messages > truth {true} (+{over} maybe seen)")
    if got < true - under:
        verdict.add("channel_counts", f"{name}: {got} messages < truth {true} (-{under} losable)")


def _reply(verdict: Verdict, command: dict[str, Any]) -> None:
    name = f"/{command['name']} at {command['at']:g}s"
    if command.get("error"):
        verdict.add("replies_within_limits", f"{name}: {command['error']}")
        return
    if not command.get("content") and not command.get("embeds"):
        verdict.add("replies_within_limits", f"{name}: no reply")
    messages = command.get("messages") or [{"content": command.get("content"),
                                             "embeds": command.get("embeds")}]
    for index, message in enumerate(messages):
        problems = reply_problems(message.get("content"), message.get("embeds") or [])
        problems += file_problems(message.get("embeds") or [], message.get("attachments") or [])
        for problem in problems:
            verdict.add("replies_within_limits", f"{name}, message {index + 1}: {problem}")
    files = [str(a.get("filename") or "") for m in messages for a in m.get("attachments") or []]
    if command["name"].startswith("export ") and _says_sent(messages) and not any(
            f.endswith(".csv") for f in files):
        verdict.add("replies_within_limits", f"{name}: the reply speaks of a file, none is attached")
    if command.get("effect") and not command.get("manage_server"):
        verdict.add("permissions_respected", f"{name}: {command['effect']} confirmed to a member "
                                             "without Manage Server")


def reply_problems(content: str | None, embeds: list[dict[str, Any]]) -> list[str]:
    """What in a reply breaks Discord's limits (the emulator answers 400 too; this also catches a
    reply that was cut by nobody)."""
    problems = []
    if content is not None and len(content) > limits.CONTENT:
        problems.append(f"content {len(content)} > {limits.CONTENT}")
    if len(embeds) > limits.EMBEDS:
        problems.append(f"{len(embeds)} embeds > {limits.EMBEDS}")
    total = 0
    for embed in embeds:
        fields = embed.get("fields") or []
        if len(fields) > limits.FIELDS:
            problems.append(f"{len(fields)} fields > {limits.FIELDS}")
        sizes = [(len(embed.get("title") or ""), limits.TITLE, "title"),
                 (len(embed.get("description") or ""), limits.DESCRIPTION, "description"),
                 (len((embed.get("footer") or {}).get("text") or ""), limits.FOOTER, "footer")]
        sizes += [(len(f.get("name") or ""), limits.FIELD_NAME, "field name") for f in fields]
        sizes += [(len(f.get("value") or ""), limits.FIELD_VALUE, "field value") for f in fields]
        problems += [f"{what} {size} > {limit}" for size, limit, what in sizes if size > limit]
        total += sum(size for size, _, _ in sizes)
    if total > limits.TOTAL:
        problems.append(f"embeds total {total} > {limits.TOTAL}")
    return problems


def _says_sent(messages: list[dict[str, Any]]) -> bool:
    return any(said in (m.get("content") or "") for m in messages for said in EXPORT_SENT)


def file_problems(embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> list[str]:
    """What is wrong with a message's files: empty, not what the name says, or shown and missing."""
    problems = []
    names = {str(a.get("filename")) for a in attachments}
    for embed in embeds:
        url = str((embed.get("image") or {}).get("url") or "")
        if url.startswith("attachment://") and url.removeprefix("attachment://") not in names:
            problems.append(f"the embed shows {url}, not attached")
    for attachment in attachments:
        filename = str(attachment.get("filename"))
        head = base64.b64decode(attachment.get("head") or "")
        if not attachment.get("size") or (attachment.get("head") is not None and not head):
            problems.append(f"{filename} is empty")
        elif "head" not in attachment:
            continue  # the report did not keep its bytes
        elif filename.endswith(".png") and not head.startswith(PNG):
            problems.append(f"{filename} is not a PNG")
        elif filename.endswith(".csv"):
            problems += _csv_problems(filename, head)
    return problems


def _csv_problems(filename: str, head: bytes) -> list[str]:
    header = EXPORT_HEADERS.get(filename.split("-", maxsplit=1)[0])
    if not head.startswith(BOM):
        return [f"{filename} does not start with the UTF-8 byte-order mark"]
    line = head[len(BOM):].split(b"\r\n", maxsplit=1)[0].decode("utf-8", errors="replace")
    first = next(csv.reader([line]), [])
    if header is None or first != header:
        return [f"{filename}: header {line[:200]!r}, docs/export.md says {header!r}"]
    return []


def _rule_authors(verdict: Verdict, report: dict[str, Any]) -> None:
    """No stored rule added or removed by a member who had no Manage Server in any of their commands."""
    managers = {c.get("user") for c in report["commands"] if c.get("manage_server")}
    for rule in (report.get("rewards") or {}).get("rules", []):
        for who in ("added_by", "removed_by"):
            if rule.get(who) is not None and rule[who] not in managers:
                verdict.add("permissions_respected", f"rule {rule['rule_id']}: {who.split('_')[0]} by "
                                                     f"{rule[who]}, who has no Manage Server")


def _season_authors(verdict: Verdict, report: dict[str, Any]) -> None:
    """No stored season started by a member who had no Manage Server in any of their commands."""
    managers = {c.get("user") for c in report["commands"] if c.get("manage_server")}
    for season in (report.get("seasons") or {}).get("stored", []):
        if season.get("started_by") not in managers:
            verdict.add("permissions_respected", f"season {season['name']!r}: started by "
                                                 f"{season.get('started_by')}, who has no Manage Server")


def season_board(seasons: dict[str, Any]) -> list[tuple[int, int]] | None:
    """The current season's messages board, first page: (Discord id, messages); None: no season
    has started by `today`."""
    stored = sorted(seasons.get("stored", []), key=lambda s: str(s["start_day"]))
    started = [s for s in stored if str(s["start_day"]) <= seasons["today"]]
    if not started:
        return None
    since = str(started[-1]["start_day"])
    later = [str(s["start_day"]) for s in stored if str(s["start_day"]) > since]
    until = later[0] if later else "9999-12-31"
    sums = {int(member): sum(n for day, n in days.items() if since <= day < until)
            for member, days in seasons.get("day_messages", {}).items()}
    ranked = sorted(((m, n) for m, n in sums.items() if n > 0), key=lambda row: (-row[1], row[0]))
    return ranked[:TOP_PAGE]


def shown_board(command: dict[str, Any]) -> list[tuple[int, int]] | None:
    """The board a `/top` answer shows: (Discord id, messages) in order; None: no season yet."""
    if NO_SEASON in (command.get("content") or ""):
        return None
    lines = str((command.get("embeds") or [{}])[0].get("description") or "").splitlines()
    return [(int(m.group(2)), int(m.group(3).replace(",", ""))) for m in map(TOP_LINE.match, lines) if m]


def _season_boards(verdict: Verdict, report: dict[str, Any]) -> None:
    seasons = report.get("seasons")
    if not seasons:
        return
    for command in report["commands"]:
        options = command.get("options") or {}
        if (command["name"] != "top" or command.get("error") or options.get("period") != "season"
                or "season" in options or options.get("board") != "messages"
                or command["at"] < float(seasons.get("last_change_at", 0.0)) + SETTLED_S):
            continue
        want, got = season_board(seasons), shown_board(command)
        if want != got:
            verdict.add("season_board", f"/top period:season at {command['at']:g}s shows {got}, the day "
                                        f"documents give {want}")


def _roles(verdict: Verdict, report: dict[str, Any]) -> None:
    rewards = report.get("rewards") or {}
    held = {int(member): set(roles) for member, roles in rewards.get("roles", {}).items()}
    rules = [rule for rule in rewards.get("rules", []) if rule.get("status") == "active"]
    counts = {int(row["id"]): (int(row.get("discord_id") or row["id"]), row["tracked"])
              for row in report["members"] if "id" in row}
    given: dict[int, set[int]] = {}  # role -> the members its rules give it to
    for rule in rules:
        given.setdefault(int(rule["role_id"]), set()).update(rule_gives(rule, counts))
    names = {int(row["id"]): row["name"] for row in report["members"] if "id" in row}
    for role, members in sorted(given.items()):
        for member, roles in sorted(held.items()):
            should = member in members
            if should != (role in roles):
                what = "lacks" if should else "holds"
                verdict.add("roles_by_rules", f"{names.get(member, member)} {what} role {role} "
                                              f"({_values_text(rules, role, counts.get(member))})")


def rule_gives(rule: dict[str, Any], counts: dict[int, tuple[int, dict[str, Any]]]) -> set[int]:
    """The members (scenario ids) a rule qualifies, from `counts`: member -> (Discord id, counters)."""
    counter = RULE_COUNTERS[rule["metric"]]
    values = {member: float(tracked.get(counter, 0)) for member, (_, tracked) in counts.items()}
    if rule.get("top") is not None:
        ranked = sorted((m for m, v in values.items() if v > 0), key=lambda m: (-values[m], counts[m][0]))
        return set(ranked[:int(rule["top"])])
    threshold = int(rule["reach"]) * (1 if rule["metric"] == "messages" else HOUR_S)
    return {m for m, v in values.items() if v > 0 and v >= threshold}


def _values_text(rules: list[dict[str, Any]], role: int, count: tuple[int, dict[str, Any]] | None) -> str:
    tracked = count[1] if count else {}
    rule_texts = [f"{r['metric']} {'top' if r.get('top') is not None else 'reach'} "
                  f"{r.get('top') if r.get('top') is not None else r.get('reach')}"
                  for r in rules if int(r["role_id"]) == role]
    shown = {c: tracked.get(c, 0) for c in RULE_COUNTERS.values()}
    return f"rules: {'; '.join(rule_texts)}; stored {shown}"


def _logs(report: dict[str, Any]) -> list[Path]:
    paths = [Path(report["bot_log"])] if report.get("bot_log") else []
    paths += [Path(p["log"]) for p in report.get("second_processes", []) if p.get("log")]
    return paths


def _log(verdict: Verdict, path: Path) -> None:
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    for match in TRACEBACK.finditer(text):
        excerpt = text[match.start(): match.start() + 600].strip().splitlines()
        verdict.add("clean_log", f"{path.name}: {' | '.join(excerpt[-3:])}")


def _exits(verdict: Verdict, report: dict[str, Any], signals: list[str]) -> None:
    expected = [-9 if sig == "SIGKILL" else 0 for sig in signals] + [0]
    codes = report["bot_exit_codes"]
    if len(codes) != len(expected):
        verdict.add("exit_codes", f"{len(codes)} bot processes ended, expected {len(expected)}")
    for index, (code, want) in enumerate(zip(codes, expected, strict=False)):
        if code != want:
            verdict.add("exit_codes", f"bot process {index + 1} exited {code}, expected {want}")
    for second in report.get("second_processes", []):
        if second.get("exit_code") not in (0, None):
            verdict.add("exit_codes", f"second process at {second.get('at')}s exited {second['exit_code']}")
