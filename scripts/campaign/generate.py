"""Random but reproducible scenarios: traffic and faults from one seed (format: docs/scenarios.md).

`scenario_for(seed)` always gives the same scenario for the same seed and parameters. Traffic
(messages over three channels, voice joins / moves / camera and stream toggles / AFK, joins
through codes, the vanity URL and no invite, leaves, rejoins, role grants, invite creates and
deletes, read-only and bonus commands by the admin) is drawn at `rate` events a second; faults
are spread over the run, at least `FAULT_GAP_SECONDS` apart, each kind the runner knows. Staff
codes and restores (`_admin_steps`) come from their own generator too, at `ADMIN_RATE` a second, so
adding them left every seed's traffic and faults as they were; so do the commands of `DRAWABLE`
(goals, server stats, retention, exports, activity-role rules, `/top`, `/ud chart:true`), at
`COMMAND_RATE` a second, and the seasons' commands and `/export channels` (`SEASON_DRAWABLE`, their
own stream at `SEASON_RATE`). After the last traffic, everyone in voice leaves and a quiet tail longer
than `REWARDS_SECONDS` follows: the bot's last activity-role check sees the final counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = (
    "sigterm", "sigkill", "db_outage", "gateway_reconnect", "invalid_session", "guild_outage",
    "second_process", "member_list_held", "sigkill_in_outage", "db_proxy", "rest_fault",
)
FAULT_GAP_SECONDS = 2.0
LONG_FAULTS = {"sigkill_in_outage": 3, "member_list_held": 2, "second_process": 1, "db_outage": 1}
QUIET_TAIL_SECONDS = 5.0  # every fault ends this long before the end: the bot catches up first
GUILD_ID = 1
ADMIN = 101
REGULARS = (102, 103, 104, 105, 106)
TEXT_CHANNELS = (10, 11, 12)
THREAD = 13  # an active public thread in channel 10
VOICE_CHANNELS = (20, 21)
AFK_CHANNEL = 30
CODES = ("abc", "bobs", "cys")
CONVERSION_ROLE = 50
JOINER_BASE = 300
ADMIN_RATE = 0.1  # staff code and restore commands a second
LAST_RESET = "@last_reset"  # the runner sends the backup id of the last confirmed reset
LAST_RULE = "@last_rule"  # the runner sends the id of the last rule `/rewards add` confirmed
LAST_SEASON = "@last_season"  # the runner sends the name of the last season `/season start` confirmed
SEASON_NAMES = ("Spring", "Summer", "spring", "Autumn 2026")  # "spring": taken, names ignore case
SEASON_RATE = 0.12  # commands of SEASON_DRAWABLE a second
SEASON_FIRST = 0.8  # how often a run's season stream opens with `/season start` by the admin
SETTLE_SECONDS = 4.0  # after the tail's voice leaves: the voice flush, then the settled /top
REWARD_ROLES = (60, 61)  # roles only activity-role rules give (traffic never grants them)
COMMAND_RATE = 0.25  # commands of DRAWABLE a second
REWARDS_SECONDS = 10  # the bot's activity-role check interval in the campaign (its minimum)
# From the last traffic (everyone leaves voice then) to the end: a voice flush, then a full
# REWARDS_SECONDS with the role changes made, before the runner stops the bot.
REWARDS_TAIL_SECONDS = REWARDS_SECONDS + 5.0
PERIODS = ("today", "7d", "30d", "all")


def guild() -> dict[str, Any]:
    """The campaign's guild: an admin, five regulars, three text and two voice channels plus AFK,
    three invite codes of three inviters and a vanity URL."""
    names = {101: "ada", 102: "bob", 103: "cy", 104: "dee", 105: "eli", 106: "fay"}
    members = [{"id": m, "name": names[m], "created": "2021-01-01T00:00:00Z"} for m in (ADMIN, *REGULARS)]
    members[0]["admin"] = True
    channels = [{"id": c, "type": "text", "name": f"text-{c}"} for c in TEXT_CHANNELS]
    channels.append({"id": THREAD, "type": "thread", "name": "thread", "parent": TEXT_CHANNELS[0]})
    channels += [{"id": c, "type": "voice", "name": f"voice-{c}"} for c in VOICE_CHANNELS]
    channels.append({"id": AFK_CHANNEL, "type": "voice", "name": "AFK"})
    invites = [{"code": code, "inviter": inviter, "uses": 0, "max_uses": 0}
               for code, inviter in zip(CODES, (101, 102, 103), strict=True)]
    roles = [{"id": CONVERSION_ROLE, "name": "Member"}]
    roles += [{"id": role, "name": f"Active {index + 1}"} for index, role in enumerate(REWARD_ROLES)]
    return {"id": GUILD_ID, "name": "Campaign", "afk_channel": AFK_CHANNEL,
            "vanity": {"code": "camp", "uses": 0}, "channels": channels,
            "roles": roles, "members": members, "invites": invites}


@dataclass
class World:
    """What the generator needs to know to draw valid steps: who is where."""

    rng: random.Random
    present_joiners: list[int] = field(default_factory=list)
    left_joiners: list[int] = field(default_factory=list)
    next_joiner: int = JOINER_BASE
    in_voice: dict[int, dict[str, Any]] = field(default_factory=dict)
    extra_codes: list[str] = field(default_factory=list)
    code_count: int = 0

    def codes(self) -> list[str]:
        return [*CODES, *self.extra_codes]


def scenario_for(seed: int, *, seconds: float = 30.0, rate: float = 3.0, faults: int = 3,
                 kinds: tuple[str, ...] = FAULT_KINDS) -> dict[str, Any]:
    """The scenario of `seed` (a JSON-ready dict)."""
    rng = random.Random(f"campaign:{seed}")
    world = World(rng)
    steps: list[dict[str, Any]] = [{"at": 0.0, "do": "message", "user": ADMIN, "channel": TEXT_CHANNELS[0]}]
    at = 1.0
    while at < seconds:
        steps.append({"at": round(at, 2), **_traffic(world)})
        at += rng.expovariate(rate)
    # Faults from their own generator: a change to the traffic's draws leaves them as they were.
    fault_rng = random.Random(f"campaign faults:{seed}")
    steps += _faults(fault_rng, seconds, faults, _kinds_of(seed, faults, kinds))
    steps += _admin_steps(random.Random(f"campaign admin:{seed}"), steps, seconds)
    steps += drawn_commands(seed, seconds)
    steps.sort(key=lambda step: step["at"])
    steps.append({"at": round(seconds + 1.0, 2), "do": "command", "user": ADMIN,
                  "name": "invites leaderboard"})
    steps += _tail(world, seconds)
    settings = {"VOICE_FLUSH_SECONDS": 2, "REWARDS_SECONDS": REWARDS_SECONDS}
    return {"name": f"campaign-{seed}", "guild": guild(), "settings": settings, "steps": steps}


def _tail(world: World, seconds: float) -> list[dict[str, Any]]:
    """Everyone in voice leaves (voice time stops growing), then a quiet while longer than
    REWARDS_SECONDS ended by `/rewards list`: the roles at the end follow the final counts. In the
    quiet while, `/top period:season` on a settled board (the checker's `season_board`)."""
    leave_at = round(seconds + 1.5, 2)
    steps = [{"at": leave_at, "do": "voice", "user": member, "channel": None}
             for member in sorted(world.in_voice)]
    steps.append({"at": round(leave_at + SETTLE_SECONDS, 2), **_by(ADMIN, "top", board="messages",
                                                                    period="season")})
    steps.append({"at": round(leave_at + REWARDS_TAIL_SECONDS, 2), "do": "command", "user": ADMIN,
                  "name": "rewards list"})
    return steps


def _traffic(world: World) -> dict[str, Any]:
    rng = world.rng
    kind = rng.choices(
        ("message", "voice", "join", "leave", "rejoin", "role", "invite_create", "invite_delete", "command"),
        weights=(50, 20, 8, 3, 2, 2, 1, 1, 2),
    )[0]
    if kind == "voice":
        return _voice(world)
    if kind == "join" or (kind == "rejoin" and not world.left_joiners):
        return _join(world, world.next_joiner)
    if kind == "rejoin":
        return _join(world, world.left_joiners.pop(rng.randrange(len(world.left_joiners))))
    if kind == "leave" and world.present_joiners:
        member = world.present_joiners.pop(rng.randrange(len(world.present_joiners)))
        world.left_joiners.append(member)
        world.in_voice.pop(member, None)
        return {"do": "leave", "user": member}
    if kind == "role" and world.present_joiners:
        return {"do": "role_add", "user": rng.choice(world.present_joiners), "role": CONVERSION_ROLE}
    if kind == "invite_create":
        world.code_count += 1
        code = f"n{world.code_count}x"
        world.extra_codes.append(code)
        return {"do": "invite_create", "code": code, "inviter": rng.choice(REGULARS)}
    if kind == "invite_delete" and world.extra_codes:
        return {"do": "invite_delete", "code": world.extra_codes.pop(0)}
    if kind == "command":
        return _command(rng)
    channel = rng.choice((*TEXT_CHANNELS, THREAD))
    return {"do": "message", "user": rng.choice(_talkers(world)), "channel": channel}


def _command(rng: random.Random) -> dict[str, Any]:
    """A command. Bonus and reset by a member without Manage Server come with `override` (a server
    re-granted the commands to everyone): the bot's own check must refuse them."""
    member, amount = rng.choice(REGULARS), rng.randint(1, 3)
    return rng.choices((
        {"do": "command", "user": ADMIN, "name": "invites show", "options": {"member": member}},
        {"do": "command", "user": rng.choice(REGULARS), "name": "ud"},
        {"do": "command", "user": ADMIN, "name": "invites-admin bonus",
         "options": {"member": member, "amount": amount}},
        {"do": "command", "user": rng.choice(REGULARS), "name": "invites-admin bonus", "override": True,
         "options": {"member": member, "amount": amount}},
        {"do": "command", "user": ADMIN, "name": "invites-admin reset", "options": {"member": member}},
        {"do": "command", "user": rng.choice(REGULARS), "name": "invites-admin reset", "override": True,
         "options": {"member": member}},
        {"do": "command", "user": ADMIN, "name": "data erase", "options": {"member": member}},
        {"do": "command", "user": rng.choice(REGULARS), "name": "data erase", "override": True,
         "options": {"member": member}},
    ), weights=(4, 4, 4, 2, 1, 1, 1, 1))[0]


# ---- the commands of the newer features: one table, one stream ---------------------------------------
Draw = Callable[[random.Random], dict[str, Any]]  # a command step (without "at")


def _by(user: int, name: str, override: bool = False, /, **options: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"do": "command", "user": user, "name": name}
    if override:  # a member without Manage Server to whom a server override shows the command
        step["override"] = True
    if options:
        step["options"] = options
    return step


def _goal_set(rng: random.Random) -> dict[str, Any]:
    options = rng.choice(({"messages": rng.randint(1, 50)}, {"voice_hours": rng.randint(1, 10)},
                          {"messages": rng.randint(1, 50), "voice_hours": rng.randint(1, 10)}))
    return _by(rng.choice((ADMIN, *REGULARS)), "goal set", **options)


def _rule(rng: random.Random) -> dict[str, Any]:
    """A `/rewards add`'s options: reach N messages (within a run's reach) or hours (never reached in
    a run: nobody qualifies), or the top N of a board."""
    metric = rng.choice(("messages", "messages", "voice", "camera"))
    options: dict[str, Any] = {"role": rng.choice(REWARD_ROLES), "metric": metric,
                               "period": rng.choice(("all", "7d", "30d"))}
    if metric == "messages" and rng.random() < 0.5:
        options["reach"] = rng.randint(2, 10)
    elif rng.random() < 0.2:
        options["reach"] = 1
    else:
        options["top"] = rng.randint(1, 4)
    return options


def _export(rng: random.Random, override: bool) -> dict[str, Any]:
    user = rng.choice(REGULARS) if override else ADMIN
    kind = rng.choice(("leaderboard", "invites", "joins"))
    period = {"period": rng.choice(PERIODS)} if rng.random() < 0.7 else {}
    return _by(user, f"export {kind}", override, **period)


# Each entry: weight and draw. Manage Server commands are also drawn by a member without it, with
# `override` (the bot's own check must refuse). Add a feature's commands here.
DRAWABLE: tuple[tuple[int, Draw], ...] = (
    (3, _goal_set),
    (1, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "goal clear")),
    (2, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "server stats",
                        **({"period": rng.choice(("7d", "30d"))} if rng.random() < 0.7 else {}))),
    (2, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "invites retention", **rng.choice(
        ({}, {"member": rng.choice((ADMIN, *REGULARS[:2]))}, {"code": rng.choice(CODES)})))),
    (1, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "invites leaderboard", sort="retained_30d",
                        period=rng.choice(PERIODS))),
    (3, lambda rng: _export(rng, override=False)),
    (1, lambda rng: _export(rng, override=True)),
    (4, lambda rng: _by(ADMIN, "rewards add", **_rule(rng))),
    (1, lambda rng: _by(rng.choice(REGULARS), "rewards add", True, **_rule(rng))),
    (1, lambda rng: _by(ADMIN, "rewards remove", rule=LAST_RULE)),
    (1, lambda rng: _by(rng.choice(REGULARS), "rewards remove", True, rule=LAST_RULE)),
    (1, lambda rng: _by(ADMIN, "rewards list")),
    (3, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "top", period=rng.choice(PERIODS),
                        board=rng.choice(("messages", "voice", "camera", "streaming")))),
    (2, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "ud", chart=True,
                        **({"period": rng.choice(PERIODS)} if rng.random() < 0.5 else {}))),
)


def _season_start(rng: random.Random, user: int = ADMIN, override: bool = False) -> dict[str, Any]:
    """`/season start`: a name of SEASON_NAMES (a second one, or "spring" after "Spring", is refused
    as taken) or none (`Season N`); today (default, or said) or tomorrow (a second today is refused)."""
    options: dict[str, Any] = {}
    if rng.random() < 0.75:
        options["name"] = rng.choice(SEASON_NAMES)
    starts = rng.choices((None, "today", "tomorrow"), weights=(3, 2, 2))[0]
    if starts is not None:
        options["starts"] = starts
    return _by(user, "season start", override, **options)


# The seasons (docs/seasons.md) and `/export channels`: a table of their own, drawn from its own
# stream, so DRAWABLE's draws of every seed stayed as they were.
SEASON_DRAWABLE: tuple[tuple[int, Draw], ...] = (
    (3, _season_start),
    (1, lambda rng: _season_start(rng, rng.choice(REGULARS), override=True)),
    (1, lambda rng: _by(ADMIN, "season list")),
    (3, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "top", period="season",
                        board=rng.choice(("messages", "voice", "camera", "streaming")))),
    (2, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "top", season=LAST_SEASON,
                        board=rng.choice(("messages", "voice")))),
    (2, lambda rng: _by(rng.choice((ADMIN, *REGULARS)), "ud", period="season",
                        **({"chart": True} if rng.random() < 0.5 else {}))),
    (2, lambda rng: _by(ADMIN, "export channels",
                        **({"period": rng.choice(PERIODS)} if rng.random() < 0.7 else {}))),
    (1, lambda rng: _by(rng.choice(REGULARS), "export channels", True)),
)


def drawn_commands(seed: int, seconds: float) -> list[dict[str, Any]]:
    """The commands of DRAWABLE for `seed`, at `COMMAND_RATE` a second, from their own stream (the
    traffic, faults and admin commands of every seed stay as they were before these existed), then
    those of SEASON_DRAWABLE (`season_commands`)."""
    rng = random.Random(f"campaign commands:{seed}")
    weights = [weight for weight, _ in DRAWABLE]
    steps = []
    at = rng.expovariate(COMMAND_RATE)
    while at < seconds:
        draw = rng.choices([d for _, d in DRAWABLE], weights=weights)[0]
        steps.append({"at": round(at, 2), **draw(rng)})
        at += rng.expovariate(COMMAND_RATE)
    return steps + season_commands(seed, seconds)


def season_commands(seed: int, seconds: float) -> list[dict[str, Any]]:
    """The commands of SEASON_DRAWABLE for `seed`, at `SEASON_RATE` a second, from their own stream;
    most runs open it with `/season start` by the admin early on (the season commands then have a
    season to show; the others answer that there is none yet)."""
    rng = random.Random(f"campaign seasons:{seed}")
    weights = [weight for weight, _ in SEASON_DRAWABLE]
    steps = []
    if rng.random() < SEASON_FIRST:
        steps.append({"at": round(rng.uniform(1.0, 8.0), 2), **_by(ADMIN, "season start", **(
            {"name": rng.choice(SEASON_NAMES)} if rng.random() < 0.75 else {}))})
    at = rng.expovariate(SEASON_RATE)
    while at < seconds:
        draw = rng.choices([d for _, d in SEASON_DRAWABLE], weights=weights)[0]
        steps.append({"at": round(at, 2), **draw(rng)})
        at += rng.expovariate(SEASON_RATE)
    return steps


def _admin_steps(rng: random.Random, traffic: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """Staff code and restore commands at `ADMIN_RATE` a second, over the traffic already drawn
    (whose codes exist by then). A restore names `@last_reset`: the last reset the bot confirmed
    (one drawn here a few seconds before it, or one of the traffic's), or, before any, an id the bot
    does not know."""
    staff: dict[int, str] = {}  # member -> the code the admin gave them
    steps: list[dict[str, Any]] = []
    at = rng.expovariate(ADMIN_RATE)
    while at < seconds:
        codes = [*CODES, *(s["code"] for s in traffic if s["do"] == "invite_create" and s["at"] < at)]
        for later, step in _admin(rng, staff, codes):
            steps.append({"at": round(min(at + later, seconds), 2), **step})
        at += rng.expovariate(ADMIN_RATE)
    return steps


Delayed = tuple[float, dict[str, Any]]  # a step and how long after the draw it comes


def _admin(rng: random.Random, staff: dict[int, str], codes: list[str]) -> list[Delayed]:
    """One draw: a reset then its restore, a restore alone, a staff code given (sometimes one that
    another member holds: the bot refuses) or removed; or one of those by a member without Manage
    Server (`override`: the bot must refuse)."""
    kind = rng.choices(("reset_restore", "restore", "staff_add", "staff_remove", "override"),
                       weights=(3, 1, 4, 1, 2))[0]
    member, user = rng.choice(REGULARS), rng.choice(REGULARS)
    restore = {"do": "command", "name": "invites-admin restore", "options": {"backup_id": LAST_RESET}}
    remove = {"do": "command", "name": "invites-admin staff remove", "options": {"member": member}}
    if kind == "reset_restore":
        reset = {"do": "command", "user": ADMIN, "name": "invites-admin reset", "options": {"member": member}}
        return [(0.0, reset), (rng.uniform(1.0, 6.0), {**restore, "user": ADMIN})]
    if kind == "restore":
        return [(0.0, {**restore, "user": ADMIN})]
    if kind == "staff_remove":
        staff.pop(member, None)
        return [(0.0, {**remove, "user": ADMIN})]
    code = rng.choice(codes)
    others = [held for holder, held in staff.items() if holder != member]
    if others and rng.random() < 0.3:
        code = rng.choice(others)  # another member's code: the bot refuses
    add = {"do": "command", "name": "invites-admin staff add", "options": {"member": member, "code": code}}
    if kind == "staff_add":
        if code not in others:
            staff[member] = code
        return [(0.0, {**add, "user": ADMIN})]
    return [(0.0, {**rng.choice((add, restore, remove)), "user": user, "override": True})]


def _talkers(world: World) -> list[int]:
    return [ADMIN, *REGULARS, *world.present_joiners]


def _voice(world: World) -> dict[str, Any]:
    rng = world.rng
    member = rng.choice([*REGULARS, *world.present_joiners])
    current = world.in_voice.get(member)
    roll = rng.random()
    if current is not None and roll < 0.3:
        del world.in_voice[member]
        return {"do": "voice", "user": member, "channel": None}
    channel = rng.choice((*VOICE_CHANNELS, *VOICE_CHANNELS, AFK_CHANNEL))
    state = {"channel": channel, "camera": rng.random() < 0.3, "stream": rng.random() < 0.15,
             "self_deaf": rng.random() < 0.1}
    world.in_voice[member] = state
    return {"do": "voice", "user": member, **state}


def _join(world: World, member: int) -> dict[str, Any]:
    rng = world.rng
    if member == world.next_joiner:
        world.next_joiner += 1
    world.present_joiners.append(member)
    via = rng.choices([*world.codes(), "vanity", None], weights=[*([6] * len(world.codes())), 2, 1])[0]
    age = "-2d" if rng.random() < 0.1 else "2022-06-01T00:00:00Z"
    return {"do": "join", "user": {"id": member, "name": f"new{member}", "created": age}, "via": via}


def _kinds_of(seed: int, count: int, kinds: tuple[str, ...]) -> list[str]:
    """The kinds a seed tries, in order. The seeds' wanted kinds, one after the other, walk through
    rounds of all kinds, each round in its own random order: a campaign of N runs wants each kind
    about N * count / len(kinds) times, and a kind meets different neighbours in each round. After
    its `count` kinds, the seed tries the next ones of the walk in case those do not fit."""
    def kind_at(position: int) -> str:
        order = sorted(kinds)
        random.Random(f"campaign kinds:{position // len(order)}").shuffle(order)
        return order[position % len(order)]

    walk = [kind_at(seed * count + i) for i in range(count + len(kinds))]
    # The seed's own kinds longest first: a long one placed last would not fit before the end.
    return sorted(walk[:count], key=lambda kind: -LONG_FAULTS.get(kind, 0)) + walk[count:]


def _faults(rng: random.Random, seconds: float, count: int, kinds: list[str]) -> list[dict[str, Any]]:
    """At most `count` faults of `kinds` (tried in order, each only if it fits), at least
    FAULT_GAP_SECONDS apart, each over a quiet while before the end (the bot back by then)."""
    steps: list[dict[str, Any]] = []
    last_end = 1.5
    for kind in kinds:
        if count == 0:
            break
        start = last_end + rng.uniform(FAULT_GAP_SECONDS, FAULT_GAP_SECONDS + 1.5)
        made, length = _fault(rng, kind, round(start, 2))
        if start + length > seconds - QUIET_TAIL_SECONDS:
            continue
        steps += made
        last_end = start + length
        count -= 1
    return steps


def _fault(rng: random.Random, kind: str, at: float) -> tuple[list[dict[str, Any]], float]:
    """The steps of one fault at `at`, and how long it lasts."""
    if kind in ("sigterm", "sigkill"):
        down = round(rng.uniform(1.0, 4.0), 1)
        return [{"at": at, "do": "restart", "signal": kind.upper(), "down_for": down}], down + 3.0
    if kind == "db_outage":
        length = round(rng.uniform(2.0, 6.0), 1)
        return [{"at": at, "do": "db_outage", "for": length}], length
    if kind == "sigkill_in_outage":
        length = round(rng.uniform(5.0, 8.0), 1)
        kill = round(at + rng.uniform(1.0, length - 3.0), 2)
        return [{"at": at, "do": "db_outage", "for": length},
                {"at": kill, "do": "restart", "signal": "SIGKILL", "down_for": 1.0}], length + 3.0
    if kind == "guild_outage":
        length = round(rng.uniform(1.0, 4.0), 1)
        back = {"at": round(at + length, 2), "do": "guild_available"}
        return [{"at": at, "do": "guild_unavailable"}, back], length
    if kind == "second_process":
        length = round(rng.uniform(3.0, 6.0), 1)
        return [{"at": at, "do": "second_process", "for": length}], length + 2.0
    if kind == "member_list_held":
        length = round(rng.uniform(6.0, 8.0), 1)
        return [{"at": at, "do": "member_list_held", "for": length},
                {"at": round(at + 0.5, 2), "do": "restart", "signal": "SIGKILL", "down_for": 1.0}], length
    if kind == "db_proxy":  # between the bot and MongoDB: one of the fault proxy's three faults
        kind = rng.choice(("db_faults", "db_late_request", "db_write_concern_error"))
    if kind == "db_faults":
        length = round(rng.uniform(3.0, 6.0), 1)
        return [{"at": at, "do": "db_faults", "for": length, "reply_lost": round(rng.uniform(0.2, 0.4), 2),
                 "cut": round(rng.uniform(0.0, 0.1), 2), "delay": round(rng.uniform(0.0, 0.05), 3)}], length
    if kind == "db_late_request":
        hold = round(rng.uniform(1.0, 4.0), 1)
        return [{"at": at, "do": "db_late_request", "hold": hold}], hold + 1.0
    if kind == "db_write_concern_error":
        return [{"at": at, "do": "db_write_concern_error", "times": rng.randint(1, 3)}], 2.0
    if kind == "rest_fault":
        return [_rest_fault(rng, at)], 3.0
    return [{"at": at, "do": kind}], 3.0


def _rest_fault(rng: random.Random, at: float) -> dict[str, Any]:
    """A 429 (with its retry-after) or a 5xx on the invite reads or the channel history reads."""
    status = rng.choice((429, 500, 502, 503))
    step: dict[str, Any] = {"at": at, "do": "rest_fault", "route": rng.choice(("invites", "history")),
                            "status": status, "times": rng.randint(1, 3)}
    if status == 429:
        step["retry_after"] = round(rng.uniform(0.2, 1.5), 2)
    return step
