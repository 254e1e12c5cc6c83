"""The scenario file: a guild and a timeline of steps (format in docs/scenarios.md).

Parsing checks everything before anything runs; a bad file gets one error naming the step.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts.emulator.latency import REALISTIC_LATENCY, Latency

STEP_KINDS = {
    "message": {"user", "channel"},
    "voice": {"user", "channel"},
    "join": {"user"},
    "leave": {"user"},
    "role_add": {"user", "role"},
    "role_remove": {"user", "role"},
    "invite_create": {"code", "inviter"},
    "invite_delete": {"code"},
    "restart": {"signal"},
    "db_outage": {"for"},
    "command": {"user", "name"},
    "gateway_reconnect": set(),
    "invalid_session": set(),
    "guild_unavailable": set(),
    "guild_available": set(),
    "second_process": {"for"},
    "member_list_held": {"for"},
    # Between the bot and MongoDB (the fault proxy): for `for` seconds, each request's reply is
    # lost (the server applied it) with probability `reply_lost`, cut before it is sent with
    # `cut`, and every request is delayed `delay` seconds.
    "db_faults": {"for"},
    # The next write is cut from the bot's side at once and reaches MongoDB `hold` seconds late.
    "db_late_request": {"hold"},
    # The next `times` writes (default 1) are applied but answered with a writeConcernError.
    "db_write_concern_error": set(),
    # The next `times` REST requests of a route answer `status` (429: with `retry_after`).
    "rest_fault": {"route", "status"},
}
SECONDS_FOR = ("db_outage", "second_process", "member_list_held", "db_faults")
DB_PROXY_STEPS = ("db_faults", "db_late_request", "db_write_concern_error")
# The routes a `rest_fault` can hit: the invite reads and the channel history reads.
REST_ROUTES = {
    "invites": ("GET", r"/guilds/\d+/invites"),
    "history": ("GET", r"/channels/\d+/messages"),
    "audit_log": ("GET", r"/guilds/\d+/audit-logs"),
}
GUILD_STEPS = ("guild_unavailable", "guild_available")
LATENCY_KEYS = ("rest_ms", "dispatch_ms", "seed")
SIGNALS = ("SIGTERM", "SIGKILL")
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScenarioError(ValueError):
    """The scenario file is malformed; the message names the step or field."""


@dataclass(frozen=True)
class Step:
    index: int
    at: float
    do: str
    args: dict[str, Any]

    @property
    def label(self) -> str:
        return f"step {self.index} ({self.do} at {self.at:g}s)"


@dataclass
class Scenario:
    guild: dict[str, Any]
    steps: list[Step]
    settings: dict[str, str] = field(default_factory=dict)
    name: str = "scenario"
    latency: Latency = REALISTIC_LATENCY

    @property
    def guild_id(self) -> int:
        return int(self.guild["id"])

    @property
    def restarts(self) -> int:
        return sum(1 for step in self.steps if step.do == "restart")


def resolve_created(value: str, now: datetime) -> str:
    """`created` may be ISO 8601 or relative to the run's start: "-2d", "-6h", "-30m", "-90s"."""
    match = _RELATIVE.match(value)
    if match is None:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ScenarioError(f"created {value!r} is neither ISO 8601 nor like '-3d'") from None
        if when.tzinfo is None:
            raise ScenarioError(f"created {value!r} has no time zone (add Z)")
        return value
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return (now - timedelta(seconds=seconds)).astimezone(UTC).isoformat()


def _resolve_users(guild: dict[str, Any], steps: list[Step], now: datetime) -> None:
    for member in guild.get("members", []):
        if "created" in member:
            member["created"] = resolve_created(str(member["created"]), now)
    for step in steps:
        user = step.args.get("user")
        if step.do == "join" and isinstance(user, dict) and "created" in user:
            user["created"] = resolve_created(str(user["created"]), now)


def _check_guild(guild: Any) -> dict[str, Any]:
    if not isinstance(guild, dict) or "id" not in guild:
        raise ScenarioError("'guild' must be an object with an 'id'")
    for key in ("channels", "members", "roles", "invites"):
        if key in guild and not isinstance(guild[key], list):
            raise ScenarioError(f"guild.{key} must be a list")
    return guild


def _check_step(index: int, raw: Any, previous_at: float) -> Step:
    if not isinstance(raw, dict):
        raise ScenarioError(f"step {index}: must be an object")
    do = raw.get("do")
    if do not in STEP_KINDS:
        raise ScenarioError(f"step {index}: unknown kind {do!r} (known: {', '.join(sorted(STEP_KINDS))})")
    at = raw.get("at")
    if not isinstance(at, int | float) or at < 0:
        raise ScenarioError(f"step {index} ({do}): 'at' must be a number of seconds >= 0")
    if at < previous_at:
        raise ScenarioError(f"step {index} ({do}): 'at' {at} is before the previous step's {previous_at}")
    args = {k: v for k, v in raw.items() if k not in ("at", "do")}
    missing = STEP_KINDS[do] - set(args)
    if missing:
        raise ScenarioError(f"step {index} ({do}): missing {', '.join(sorted(missing))}")
    step = Step(index, float(at), do, args)
    _check_step_values(step)
    return step


def _check_step_values(step: Step) -> None:
    args = step.args
    if step.do == "restart":
        if args["signal"] not in SIGNALS:
            raise ScenarioError(f"{step.label}: signal must be SIGTERM or SIGKILL")
        if not isinstance(args.get("down_for", 0), int | float) or args.get("down_for", 0) < 0:
            raise ScenarioError(f"{step.label}: down_for must be seconds >= 0")
    if step.do in SECONDS_FOR and (not _is_number(args["for"]) or args["for"] <= 0):
        raise ScenarioError(f"{step.label}: 'for' must be seconds > 0")
    if step.do in GUILD_STEPS and "guild" in args and not _is_id(args["guild"]):
        raise ScenarioError(f"{step.label}: guild must be a guild id")
    if step.do == "join":
        user = args["user"]
        if not (isinstance(user, int) or (isinstance(user, dict) and "id" in user)):
            raise ScenarioError(f"{step.label}: user must be an id or an object with an id")
        via = args.get("via")
        if via is not None and not isinstance(via, str):
            raise ScenarioError(f"{step.label}: via must be a code, \"vanity\" or null")
    if step.do == "rest_fault" and (args["route"] not in REST_ROUTES
                                    or args["status"] not in (429, 500, 502, 503)):
        raise ScenarioError(f"{step.label}: route must be one of {', '.join(REST_ROUTES)} "
                            "and status 429, 500, 502 or 503")
    if step.do == "db_late_request" and (not _is_number(args["hold"]) or args["hold"] <= 0):
        raise ScenarioError(f"{step.label}: 'hold' must be seconds > 0")
    if step.do == "command" and not isinstance(args.get("options", {}), dict):
        raise ScenarioError(f"{step.label}: options must be an object")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_guild_outages(steps: list[Step], guild_id: int) -> None:
    """Each guild_unavailable is ended by a guild_available of the same (the scenario's) guild."""
    unavailable_since: Step | None = None
    for step in steps:
        if step.do not in GUILD_STEPS:
            continue
        target = step.args.get("guild", guild_id)
        if target != guild_id:
            raise ScenarioError(f"{step.label}: unknown guild {target} (the scenario's guild is {guild_id})")
        if step.do == "guild_unavailable" and unavailable_since is not None:
            raise ScenarioError(f"{step.label}: the guild is already unavailable "
                                f"since {unavailable_since.label}")
        if step.do == "guild_available" and unavailable_since is None:
            raise ScenarioError(f"{step.label}: the guild is not unavailable "
                                "(add a guild_unavailable before)")
        unavailable_since = step if step.do == "guild_unavailable" else None
    if unavailable_since is not None:
        raise ScenarioError(f"{unavailable_since.label}: the guild is still unavailable at the end "
                            "(add a guild_available step)")


def _check_range(raw: dict[str, Any], key: str) -> tuple[float, float]:
    value = raw.get(key, getattr(REALISTIC_LATENCY, key))
    if not (isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value)
            and 0 <= value[0] <= value[1]):
        raise ScenarioError(f"latency.{key} must be [min, max] milliseconds with 0 <= min <= max")
    return float(value[0]), float(value[1])


def _check_latency(raw: Any) -> Latency:
    """`"latency": {"rest_ms": [100, 200], "dispatch_ms": [30, 100], "seed": 0}`; a missing key keeps
    the realistic default, `[0, 0]` turns that delay off."""
    if raw is None:
        return REALISTIC_LATENCY
    if not isinstance(raw, dict):
        raise ScenarioError("'latency' must be an object with rest_ms, dispatch_ms and seed")
    unknown = set(raw) - set(LATENCY_KEYS)
    if unknown:
        raise ScenarioError(f"unknown latency keys: {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(LATENCY_KEYS)})")
    seed = raw.get("seed", REALISTIC_LATENCY.seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ScenarioError("latency.seed must be an integer")
    return Latency(rest_ms=_check_range(raw, "rest_ms"), dispatch_ms=_check_range(raw, "dispatch_ms"),
                   seed=seed)


def parse_scenario(data: Any, *, now: datetime | None = None, name: str = "scenario") -> Scenario:
    """Validate a scenario (already decoded JSON) and resolve relative account ages against `now`."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a JSON object with 'guild' and 'steps'")
    unknown = set(data) - {"guild", "steps", "settings", "name", "latency"}
    if unknown:
        raise ScenarioError(f"unknown top-level keys: {', '.join(sorted(unknown))}")
    guild = copy.deepcopy(_check_guild(data.get("guild")))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        raise ScenarioError("'steps' must be a list")
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        steps.append(_check_step(index, copy.deepcopy(raw), steps[-1].at if steps else 0.0))
    _check_guild_outages(steps, int(guild["id"]))
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ScenarioError("'settings' must be an object of setting names to values")
    latency = _check_latency(data.get("latency"))
    _resolve_users(guild, steps, now or datetime.now(UTC))
    return Scenario(
        guild=guild, steps=steps, settings={str(k).upper(): str(v) for k, v in settings.items()},
        name=str(data.get("name", name)), latency=latency,
    )


def load_scenario(path: Path, *, now: datetime | None = None) -> Scenario:
    data = _load_json(path)
    if isinstance(data, dict) and isinstance(data.get("guild"), str):
        # "guild": "guild.json" shares one guild between scenario files
        data["guild"] = _load_json(path.parent / data["guild"])
    return parse_scenario(data, now=now, name=path.stem)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
