"""Ground truth: what really happened in the emulator, computed from the executed timeline.

Two things cannot be observed by any bot, and are kept apart instead of counted as truth:
- voice time after the bot stopped, for a member who left while it was down (Discord does not say
  when someone left while the bot was offline): `unobservable_voice_s`;
- messages sent while the bot was down, or that no bot session received (`delivered == 0`), in a
  channel whose history the bot may not read (`unreadable`; the guild's `history_denied`):
  `unobservable_messages`. Anywhere else Discord keeps them in the channel's history, and the bot
  counts them from there after the restart or gap (issue 19): they are truth.
Downtime of a member who stayed in voice is truth, capped at the downtime cap, as the bot credits it.

Messages per channel (`channels`, a thread's under its parent channel) follow the same rules as a
member's, except that `/data erase` changes nothing there (the channels' counts hold no member).

For messages, a restarted bot is down until its new session is READY (`bot_connected`): a message
dispatched while it starts goes at most to the old session's replay buffer, which nobody resumes.

"Down" is any time the bot cannot see the guild: the process stopped (`bot_down`, when its gateway
connection closed: a SIGTERM flushes first and still sees events; `bot_up`), the
guild in an outage (`guild_down`/`guild_up`), or the session invalidated until the bot identified
again (`session_lost`/`session_back`). Overlapping ones count as one, from the first to the last.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

COUNTERS = ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")
AWAY = {"bot_down": 1, "guild_down": 1, "session_lost": 1, "bot_up": -1, "guild_up": -1, "session_back": -1}
# Messages: the bot is back when its session is READY, not when its process starts.
MESSAGES_AWAY = {**AWAY, "bot_up": 0, "bot_connected": -1}

WRITE_AHEAD_BOUND_S = 0.3  # a SIGKILL loses at most the messages of its last ~0.3 s (docs/outbox.md)
# Gateway events still in flight when a SIGTERM's shutdown closes the connection never reach the bot:
# Discord's dispatch latency (the emulator's 30-100 ms) with a margin (campaign long run, seed 171).
DELIVERY_BOUND_S = 0.15
WHOLE_SECOND_S = 1.0  # the most one credited interval's whole seconds can differ from its exact time
# A message sent this long before an erase may reach the bot after the erase settled its counts:
# counted after the erase, or erased with the rest.
ERASE_IN_FLIGHT_S = 0.5

@dataclass
class Happened:
    """One executed step, with the wall-clock time it was dispatched."""

    t: float
    kind: str  # voice, message, join, leave, bonus, reset, restore, erase, end, and the keys of AWAY
    member: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class VoiceState:
    channel: int | None = None
    camera: bool = False
    stream: bool = False


@dataclass
class MemberTruth:
    messages: float = 0
    voice_s: float = 0.0
    cam_on_s: float = 0.0
    cam_off_s: float = 0.0
    stream_s: float = 0.0
    unobservable_voice_s: float = 0.0
    unobservable_messages: int = 0
    # Of the unobservable: sent while the bot was stopping or restarting, yet delivered to a session
    # (a process still shutting down, or a session that resumes), so the bot may have counted them.
    maybe_messages: int = 0
    # Of the counted: sent within the write-ahead bound before a SIGKILL (docs/outbox.md), which
    # the bot may have lost.
    losable_messages: int = 0
    unobservable_joins: int = 0  # joined and left again while the bot could not see the guild
    # Joined just before a SIGKILL (its event may not have reached the bot) and left before the bot
    # was back: no trace is left but that event, so the join may be recorded or not.
    losable_join: bool = False
    # Then the bot may take the member's next join for their first: credited to its inviter
    # (None: unknown, -1: vanity), when the member joined again.
    losable_next_inviter: int | None = None
    losable_rejoined: bool = False
    # `/data erase` of the member: voice seconds around it that the bot may have credited or not
    # (the erase's own duration; the bot forgets the open session and tracks again from the
    # member's next voice change).
    erase_voice_s: float = 0.0
    # A voice change within the write-ahead bound before a SIGKILL may be lost (docs/outbox.md):
    # the restart then credits the downtime with the state before it. Up to this many voice
    # seconds may go either way.
    losable_voice_s: float = 0.0
    # The bot credits whole seconds, floor(end) - floor(start) per interval (docs/activity.md):
    # each credited interval may be up to 1 s off the exact time. The run's tolerance covers one.
    credited_intervals: int = 0
    inviter: int | None = None  # None: unknown; -1: vanity
    via: str | None = None
    joined_at: datetime | None = None
    fake: bool = False
    in_guild: bool = True

    @property
    def rounding_voice_s(self) -> float:
        """Voice seconds the whole-second rule may add or drop beyond the run's tolerance."""
        return WHOLE_SECOND_S * max(0, self.credited_intervals - 1)

    def counters(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in COUNTERS}


@dataclass
class InviterTruth:
    regular: int = 0
    left: int = 0
    fake: int = 0
    bonus: int = 0
    # Rejoins the bot may count as first joins for this inviter: the member's first join may have
    # died with a SIGKILL (`MemberTruth.losable_join`).
    losable_regular: int = 0

    @property
    def total(self) -> int:
        return self.regular - self.left - self.fake + self.bonus


class _Away:
    """Nesting of the intervals in which the bot cannot see the guild."""

    def __init__(self, steps: dict[str, int] = AWAY) -> None:
        self.depth = 0
        self.steps = steps

    def change(self, kind: str) -> str | None:
        """Returns "down" when the first interval starts, "up" when the last one ends, else None."""
        step = self.steps.get(kind, 0)
        if step > 0:
            self.depth += 1
            return "down" if self.depth == 1 else None
        if step < 0 and self.depth > 0:
            self.depth -= 1
            return "up" if self.depth == 0 else None
        return None


@dataclass
class ChannelTruth:
    """One channel's messages (a thread's counted under its parent), with the member rules' bounds."""

    messages: int = 0
    unobservable_messages: int = 0
    maybe_messages: int = 0  # of the unobservable: delivered to a session, so maybe counted
    losable_messages: int = 0  # of the counted: within the write-ahead bound before a SIGKILL


class Truth:
    def __init__(self, afk_channel: int | None, downtime_cap_s: float, fake_days: float = 3.0,
                 unreadable: set[int] | None = None, parents: dict[int, int] | None = None) -> None:
        self.afk_channel = afk_channel
        self.unreadable = unreadable or set()
        self.parents = parents or {}  # thread -> the channel its messages count under
        self.channels: dict[int, ChannelTruth] = defaultdict(ChannelTruth)
        self.downtime_cap_s = downtime_cap_s
        self.fake_days = fake_days
        self.members: dict[int, MemberTruth] = defaultdict(MemberTruth)
        self.inviters: dict[int, InviterTruth] = defaultdict(InviterTruth)

    def compute(self, happened: list[Happened]) -> Truth:
        self._voice(happened)
        self._messages(happened)
        self._invites(happened)
        self._losable_joins(happened)
        return self

    # ---- voice ------------------------------------------------------------------------------------
    def _credit(self, member: int, state: VoiceState, seconds: float) -> None:
        if seconds <= 0 or state.channel is None or state.channel == self.afk_channel:
            return
        truth = self.members[member]
        truth.credited_intervals += 1
        truth.voice_s += seconds
        if state.camera:
            truth.cam_on_s += seconds
        else:
            truth.cam_off_s += seconds
        if state.stream:
            truth.stream_s += seconds

    def _voice(self, happened: list[Happened]) -> None:
        states: dict[int, VoiceState] = defaultdict(VoiceState)
        since: dict[int, float] = {}
        at_down: dict[int, VoiceState] = {}
        real_down_s: dict[int, float] = defaultdict(float)
        down_at: float | None = None
        away = _Away()
        changed_at: dict[int, float] = {}  # each member's last voice change
        erased: dict[int, VoiceState] = {}  # erased, untracked until a change or a reconciliation
        lost: dict[int, float] = {}  # changes a stop may have lost: member -> seconds before it
        for event in happened:
            change = away.change(event.kind)
            if event.kind == "bot_down":
                bound = WRITE_AHEAD_BOUND_S if event.data.get("signal") == "SIGKILL" else DELIVERY_BOUND_S
                lost.update({m: event.t - t for m, t in changed_at.items() if 0 <= event.t - t <= bound})
            if change == "down":
                down_at = event.t
                for member, state in states.items():
                    if state.channel is not None:
                        self._credit(member, state, event.t - since[member])
                        since[member] = event.t
                at_down = {m: s for m, s in states.items() if s.channel is not None}
                real_down_s.clear()
            elif change == "up" and down_at is not None:
                for member, state in states.items():
                    if state.channel is not None:
                        real_down_s[member] += event.t - since[member]
                        since[member] = event.t
                self._settle_downtime(states, at_down, real_down_s, event.t - down_at)
                self._track_erased_again(erased, states, since, event.t)
                downtime = min(event.t - down_at, self.downtime_cap_s)
                for member, before in lost.items():
                    self.members[member].losable_voice_s += before + downtime
                lost.clear()
                down_at = None
            elif event.kind in ("voice", "leave") and event.member is not None:
                member = event.member
                changed_at[member] = event.t
                erased.pop(member, None)
                old = states[member]
                if old.channel is not None:
                    if down_at is None:
                        self._credit(member, old, event.t - since[member])
                    else:
                        real_down_s[member] += event.t - since[member]
                new = VoiceState()
                if event.kind == "voice":
                    new = VoiceState(event.data.get("channel"), bool(event.data.get("camera")),
                                     bool(event.data.get("stream")))
                states[member] = new
                since[member] = event.t
            elif event.kind == "erase" and event.member is not None:
                erased[event.member] = states[event.member]
                self._erase_voice(event, states, since)
            elif event.kind == "end":
                for member, state in states.items():
                    if state.channel is not None:
                        self._credit(member, state, event.t - since[member])

    def _erase_voice(self, event: Happened, states: dict[int, VoiceState], since: dict[int, float]) -> None:
        """`/data erase`: the member's voice time so far is gone, and an open session is forgotten:
        the bot tracks them again from their next voice change, or from its next reconciliation of
        the guild (a restart, a re-IDENTIFY, the guild back from an outage)."""
        member = event.member
        assert member is not None
        truth = self.members[member]
        for counter in ("voice_s", "cam_on_s", "cam_off_s", "stream_s", "unobservable_voice_s"):
            setattr(truth, counter, 0.0)
        truth.erase_voice_s += float(event.data.get("done", event.t)) - event.t
        states[member] = VoiceState()
        since[member] = event.t

    @staticmethod
    def _track_erased_again(erased: dict[int, VoiceState], states: dict[int, VoiceState],
                            since: dict[int, float], at: float) -> None:
        """The bot is back and reconciles the guild: a member erased while in voice (and in voice
        since) is tracked again from now, as anyone it finds in voice with no stored session."""
        for member, state in erased.items():
            if state.channel is not None:
                states[member], since[member] = state, at
        erased.clear()

    def _settle_downtime(self, states: dict[int, VoiceState], at_down: dict[int, VoiceState],
                         real_down_s: dict[int, float], downtime_s: float) -> None:
        """A member in voice at the stop and at the start is credited the downtime (capped) with the
        state of the stop, as the bot does; any other voice time during the downtime is unobservable."""
        for member in set(at_down) | set(real_down_s):
            still_in_voice = member in at_down and states[member].channel is not None
            if still_in_voice:
                self._credit(member, at_down[member], min(downtime_s, self.downtime_cap_s))
            elif self._counts(states[member]) or self._counts(at_down.get(member, VoiceState())):
                self.members[member].unobservable_voice_s += real_down_s.get(member, 0.0)

    def _counts(self, state: VoiceState) -> bool:
        return state.channel is not None and state.channel != self.afk_channel

    # ---- messages and invites ----------------------------------------------------------------------
    def _messages(self, happened: list[Happened]) -> None:
        away = _Away(MESSAGES_AWAY)
        kills = [e.t for e in happened if e.kind == "bot_down" and e.data.get("signal") == "SIGKILL"]
        recent: dict[int, list[float]] = defaultdict(list)  # message times, for an erase
        erasing: dict[int, float] = {}  # member -> when their erase finished
        for event in happened:
            away.change(event.kind)
            if event.kind == "erase" and event.member is not None:
                self._erase_messages(event, recent[event.member])
                erasing[event.member] = float(event.data.get("done", event.t))
                continue
            if event.kind != "message" or event.member is None:
                continue
            recent[event.member].append(event.t)
            self._channel_message(event, away.depth == 0, kills)
            truth = self.members[event.member]
            if event.t <= erasing.get(event.member, -1.0):
                truth.losable_messages += 1  # during the erase: erased or counted
            self._count_message(truth, event, away.depth == 0, kills)

    def _channel_message(self, event: Happened, up: bool, kills: list[float]) -> None:
        """The member rules (`_count_message`), per channel; an erase changes nothing here."""
        channel = event.data.get("channel")
        if channel is None:
            return
        self._count_message(self.channels[self.parents.get(int(channel), int(channel))], event, up, kills)

    def _count_message(self, truth: Any, event: Happened, up: bool, kills: list[float]) -> None:
        """One message into `truth` (a member's or a channel's): counted live, or from the channel's
        history after a gap; where the history is unreadable, only if the bot was up to receive it
        (and losable within the write-ahead bound before a SIGKILL), else unobservable."""
        delivered = event.data.get("delivered", 1) > 0
        if event.data.get("channel") not in self.unreadable:
            truth.messages += 1
        elif up and delivered:
            truth.messages += 1
            if any(0 <= kill - event.t <= WRITE_AHEAD_BOUND_S for kill in kills):
                truth.losable_messages += 1
        else:
            truth.unobservable_messages += 1
            truth.maybe_messages += int(delivered)

    def _erase_messages(self, event: Happened, times: list[float]) -> None:
        truth = self.members[event.member or 0]
        truth.messages = truth.unobservable_messages = truth.losable_messages = 0
        truth.maybe_messages = sum(1 for t in times if event.t - ERASE_IN_FLIGHT_S <= t < event.t)
        times.clear()

    def _invites(self, happened: list[Happened]) -> None:
        # Members whose credited join an `/invites-admin reset` cleared -> that reset's backup id, and
        # per backup the bonuses it took: a restore of that backup gives back exactly those.
        cleared: dict[int, str | None] = {}
        taken: dict[str | None, dict[int, int]] = {}
        away = _Away()
        # Joins while the bot could not see the guild: the member's join facts from before. A member
        # who also leaves before the bot is back leaves no trace the bot could find (not in the
        # member list, no event): that join is unobservable.
        unseen: dict[int, tuple[Any, ...]] = {}
        held = False  # the member list loads slowly: a downtime join is found only once it is whole
        for event in happened:
            member = event.member
            held = {"members_held": True, "members_released": False}.get(event.kind, held)
            back = away.change(event.kind) == "up"
            if (back or (event.kind == "members_released" and away.depth == 0)) and not held:
                unseen.clear()
            if event.kind == "join" and member is not None:
                if self.members[member].joined_at is None:
                    cleared.pop(member, None)  # a first join (again, after an erase) counts
                if away.depth > 0 and member not in unseen:
                    unseen[member] = self._join_facts(member)
                self._join(member, event.data)
            elif event.kind == "leave" and member is not None:
                if member in unseen:
                    self._restore_join_facts(member, unseen.pop(member))
                    self.members[member].unobservable_joins += 1
                self.members[member].in_guild = False
            elif event.kind == "bonus" and member is not None:
                self.inviters[member].bonus += int(event.data["amount"])
            elif event.kind == "erase" and member is not None:
                self._restore_join_facts(member, (None, None, None, False))  # their join record is gone
                unseen.pop(member, None)
                cleared.pop(member, None)
            elif event.kind == "reset":
                self._reset(member, event.data.get("backup"), cleared, taken)
            elif event.kind == "restore":
                self._restore(event.data.get("backup"), cleared, taken)
        self._count_joins(cleared)

    def _reset(self, inviter: int | None, backup: str | None, cleared: dict[int, str | None],
               taken: dict[str | None, dict[int, int]]) -> None:
        """`/invites-admin reset` of `inviter` (None: everyone): the credited joins not cleared yet
        stop counting, and the bonuses go to zero; the backup keeps both."""
        for joined, truth in self.members.items():
            in_scope = inviter is None or truth.inviter == inviter
            if truth.joined_at is not None and truth.inviter is not None and in_scope:
                cleared.setdefault(joined, backup)
        took = taken.setdefault(backup, {})
        for who, counts in self.inviters.items():
            if (inviter is None or who == inviter) and counts.bonus:
                took[who] = took.get(who, 0) + counts.bonus
                counts.bonus = 0

    def _restore(self, backup: str | None, cleared: dict[int, str | None],
                 taken: dict[str | None, dict[int, int]]) -> None:
        """`/invites-admin restore` of a reset's backup, once: the joins that reset cleared count
        again (a member erased since has no join left to give back) and the bonuses it took are
        added back; joins and bonuses recorded after the reset stay. An unknown backup: nothing."""
        if backup is None:
            return
        for joined in [m for m, by in cleared.items() if by == backup]:
            del cleared[joined]
        for who, amount in taken.pop(backup, {}).items():
            self.inviters[who].bonus += amount

    def _count_joins(self, cleared: dict[int, str | None]) -> None:
        for joined, truth in self.members.items():
            if truth.joined_at is None or truth.inviter is None or truth.inviter < 0 or joined in cleared:
                continue
            counts = self.inviters[truth.inviter]
            counts.regular += 1
            if truth.fake:
                counts.fake += 1
            elif not truth.in_guild:
                counts.left += 1

    def _losable_joins(self, happened: list[Happened]) -> None:
        """A join within WRITE_AHEAD_BOUND_S before a SIGKILL whose member leaves before the bot is
        back (found in the campaign's long run, seed 82: a join 20 ms before the kill). With no trace
        of it, the bot takes the member's next join for their first (long run, seed 163): it may
        credit that join's inviter."""
        kills = [e.t for e in happened if e.kind == "bot_down" and e.data.get("signal") == "SIGKILL"]
        ups = [e.t for e in happened if e.kind == "bot_up"]
        for join in (e for e in happened if e.kind == "join" and e.member is not None):
            kill = next((k for k in kills if 0 <= k - join.t <= WRITE_AHEAD_BOUND_S), None)
            if kill is None:
                continue
            back = next((u for u in ups if u > kill), math.inf)
            if any(e.kind == "leave" and e.member == join.member and join.t < e.t < back for e in happened):
                self._losable(join, happened)

    def _losable(self, join: Happened, happened: list[Happened]) -> None:
        truth = self.members[join.member]
        truth.losable_join = True
        again = next((e for e in happened
                      if e.kind == "join" and e.member == join.member and e.t > join.t), None)
        if again is None or truth.joined_at != join.data["joined_at"]:
            return  # never back, or this was not the join the truth counts (a reset cleared it...)
        truth.losable_rejoined = True
        truth.losable_next_inviter = again.data.get("inviter")
        if truth.losable_next_inviter is not None and truth.losable_next_inviter >= 0:
            self.inviters[truth.losable_next_inviter].losable_regular += 1

    def _join_facts(self, member: int) -> tuple[Any, ...]:
        truth = self.members[member]
        return truth.via, truth.inviter, truth.joined_at, truth.fake

    def _restore_join_facts(self, member: int, facts: tuple[Any, ...]) -> None:
        truth = self.members[member]
        truth.via, truth.inviter, truth.joined_at, truth.fake = facts

    def _join(self, member: int, data: dict[str, Any]) -> None:
        truth = self.members[member]
        truth.in_guild = True
        if truth.joined_at is not None:
            return  # a rejoin counts once, for the original inviter
        truth.via = data.get("via")
        truth.inviter = data.get("inviter")
        truth.joined_at = data["joined_at"]
        age_days = (truth.joined_at - data["created"]).total_seconds() / 86400
        truth.fake = (self.fake_days > 0 and age_days < self.fake_days) or truth.inviter == member
