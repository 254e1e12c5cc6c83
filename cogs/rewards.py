"""`/rewards add|remove|list` and the activity roles they give (Manage Server; docs/rewards.md).

The rules live in `reward_rules`; who qualifies is computed by `app.tracking.rewards` from the ranks
in memory. This cog only talks to Discord: it reads the guild's roles and members, and applies the
changes one at a time in a background task per guild (discord.py waits out 429s), recording each in
`reward_log`: as an intent before the request, confirmed once Discord accepted it (up to 50 changes
in one write each); an intent a killed process left is resolved at the guild's next evaluation from
the roles the member holds.
Evaluated for the members whose counts changed `REWARDS_CHANGE_SECONDS` after the change (the
ranks tell, `Ranks.watch`), and in full when a guild becomes available (start, reconnect: what
changed while the bot was down is corrected), every `REWARDS_SECONDS`, right after
`/rewards add|remove`, and when
`/season start` starts a season today (the `season_started` event, `cogs/seasons.py`). A `season`
rule reads the season current at evaluation time, so a season starting tomorrow takes over at the
first check on that day.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

import discord
from discord import app_commands
from discord.ext import commands
from pymongo.errors import PyMongoError

from app.tracking.rewards import (
    ACTIVE,
    MAX_OF_LAST,
    REWARD_METRICS,
    REWARD_PERIODS,
    SEASON,
    RewardRule,
    RoleChange,
    Values,
    plan,
)
from app.tracking.seasons import current_of
from app.tracking.streaks import active_rule
from app.tracking.voice import PERIOD_LABELS, period_start_day, zone
from app.wiring.commands import answer
from app.wiring.reply_limits import fit_embed
from app.wiring.validation import valid_id
from cogs import style
from cogs.settings import require_manage_guild
from cogs.text import safe_name
from repositories.reward_log import GRANTED, REMOVED, RewardLogEntry, log_key

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
JOB_ID = "rewards"
MAX_RULES = 25  # per guild: one embed field each in /rewards list, and a bounded evaluation
MAX_REACH = 1_000_000
MAX_TOP = 1000
DEFAULT_OF_LAST = 7
RANKS_WAIT_SECONDS = 120.0
UNLOAD_WAIT_SECONDS = 2.0
BATCH = 50  # changes intended in one reward_log write, and confirmed in one
LOOK_AHEAD = 4 * BATCH  # queued changes looked at to fill a batch
METRIC_CHOICES = [app_commands.Choice(name=m, value=m) for m in REWARD_METRICS]
PERIOD_CHOICES = [app_commands.Choice(name=PERIOD_LABELS[p], value=p) for p in REWARD_PERIODS]


# ---- texts -------------------------------------------------------------------------------------
def rule_text(rule: RewardRule) -> str:
    """`reach 100 messages (last 7 days)`, `top 3 of voice (all time)`, `active on 5 of the last 7 days`."""
    if rule.active_days is not None:
        if rule.of_last == 1:
            return "active today"
        days, of_last = style.number(rule.active_days), style.number(rule.of_last or 0)
        return f"active on {days} of the last {of_last} days"
    period = PERIOD_LABELS[rule.period or "all"]
    if rule.top is not None:
        return f"top {style.number(rule.top)} of {rule.metric} ({period})"
    if rule.metric == "messages":
        return f"reach {style.count(rule.reach or 0, 'message')} ({period})"
    return f"reach {style.count(rule.reach or 0, 'hour')} of {rule.metric} ({period})"


def unmanageable(role: discord.Role) -> str | None:
    """Why the bot cannot give or take `role` (None: it can)."""
    if role.is_default():
        return "@everyone is every member's role; pick another role."
    if role.managed:
        return f"{style.role(role.id)} is managed by Discord or an integration (a bot's or the booster role)."
    if not role.guild.me.guild_permissions.manage_roles:
        return "The bot lacks the Manage Roles permission; give it to the bot's role first."
    if not role.is_assignable():
        return (f"{style.role(role.id)} is at or above the bot's highest role; move the bot's role above "
                "it in Server Settings > Roles first.")
    return None


class Span(NamedTuple):
    """The days `[since, until)` a reach or top rule reads (since None: all time)."""

    since: str | None
    until: str | None


class Window(NamedTuple):
    """The days `since` to `until` (inclusive) an active rule reads, and what makes a day active."""

    since: str
    until: str
    active: Callable[[int, int], bool]


Reading = Span | Window | None


# ---- applying ----------------------------------------------------------------------------------
@dataclass
class Progress:
    """One guild's changes being applied."""

    pending: deque[RoleChange] = field(default_factory=deque)
    applying: RoleChange | None = None
    done: int = 0
    task: asyncio.Task[None] | None = None

    @property
    def total(self) -> int:
        return self.done + (self.applying is not None) + len(self.pending)

    def line(self) -> str:
        if not self.pending and self.applying is None:
            return f"{style.count(self.done, 'change')} done, none waiting" if self.done else "up to date"
        return f"{style.number(self.done)} of {style.number(self.total)} changes done"


@dataclass
class Batch:
    """Up to `BATCH` changes intended in one `reward_log` write and resolved in one: the made ones
    confirmed, the ones not made dropped, the uncertain ones (a 5xx, a lost request) left pending
    for the next evaluation to judge from what the member holds."""

    entries: dict[tuple[int, int, bool], RewardLogEntry] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)

    def entry_of(self, change: RoleChange) -> RewardLogEntry | None:
        return self.entries.get((change.member_id, change.role_id, change.grant))

    def keys(self) -> list[str]:
        return [log_key(entry) for entry in self.entries.values()]


class RewardsCog(commands.Cog, name="Rewards"):
    rewards_group = app_commands.Group(
        name="rewards", description="Roles given for activity (Manage Server)", guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.rules = bot.repos.reward_rules
        self.changes_log = bot.repos.reward_log
        self.seasons = bot.seasons
        self.progress: dict[int, Progress] = {}
        self._evaluations: set[asyncio.Task[None]] = set()
        self._warned: set[tuple[int, int]] = set()  # (guild, role) told once it cannot be managed
        self._refused: set[tuple[int, int]] = set()  # (guild, role) Discord refused, told once
        self._in_flight: set[str] = set()  # the reward_log keys of the changes being made now
        self._ruled: set[int] = set()  # guilds whose last evaluation found rules
        self._changed: dict[int, set[int]] = {}  # guild -> members whose counts changed since
        self._follow_timers: dict[int, asyncio.TimerHandle] = {}

    async def cog_load(self) -> None:
        self.bot.add_interval_job(JOB_ID, self.evaluate_all, self.bot.settings.rewards_seconds)
        self.bot.ranks.watch(self._counts_changed)

    async def cog_unload(self) -> None:
        """Shutdown: nothing new is started, the change under way is finished (and logged)."""
        self._stop_starting()
        drains = [p.task for p in self.progress.values() if p.task is not None and not p.task.done()]
        if drains:
            _, unfinished = await asyncio.wait(drains, timeout=UNLOAD_WAIT_SECONDS)
            for task in unfinished:
                task.cancel()

    def _stop_starting(self) -> None:
        """No evaluation goes on and no queued change starts any more (the next start evaluates;
        an evaluation only reads until it queues)."""
        for task in self._evaluations:
            task.cancel()
        for timer in self._follow_timers.values():
            timer.cancel()
        self._follow_timers.clear()
        for progress in self.progress.values():
            progress.pending.clear()

    async def wait_idle(self) -> None:
        """Until every evaluation started and every change queued is done (tests); at shutdown,
        until the change under way is done (the queue is dropped: the next start evaluates)."""
        while True:
            if self.bot.closing:
                self._stop_starting()
            tasks = [t for t in self._evaluations if not t.done()]
            tasks += [p.task for p in self.progress.values() if p.task is not None and not p.task.done()]
            if not tasks:
                return
            await asyncio.wait(tasks)

    def progress_line(self, guild_id: int) -> str:
        """`/data-status`: `120 of 5,000 changes done`."""
        progress = self.progress.get(guild_id)
        return progress.line() if progress else "up to date"

    # ---- evaluation ------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.evaluate_soon(guild, wait_for_ranks=True)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.evaluate_soon(guild, wait_for_ranks=True)

    @commands.Cog.listener()
    async def on_season_started(self, guild: discord.Guild) -> None:
        """`/season start` began a season today: the `season` rules now read it."""
        self.evaluate_soon(guild)

    def evaluate_soon(self, guild: discord.Guild, *, wait_for_ranks: bool = False) -> None:
        task = asyncio.create_task(self._evaluate_guarded(guild, wait_for_ranks), name=f"rewards-{guild.id}")
        self._evaluations.add(task)
        task.add_done_callback(self._evaluations.discard)

    async def evaluate_all(self) -> None:
        """The interval job: every guild, one after the other."""
        for guild in list(self.bot.guilds):
            await self._evaluate_guarded(guild, False)

    async def _evaluate_guarded(self, guild: discord.Guild, wait_for_ranks: bool) -> None:
        if wait_for_ranks:
            await self._wait_for_ranks(guild.id)
        await self._guarded(guild, self.evaluate(guild))

    async def _guarded(self, guild: discord.Guild, evaluation: Awaitable[None]) -> None:
        try:
            await evaluation
        except PyMongoError as exc:
            log.warning("activity roles of guild %s not evaluated: the database did not answer (%s)",
                        guild.id, type(exc).__name__)
        except Exception:
            log.exception("activity roles of guild %s: evaluation failed", guild.id)

    async def _wait_for_ranks(self, guild_id: int) -> None:
        ranks = self.bot.ranks
        if not ranks.active():
            return  # a standby: the active process manages the roles
        ranks.ensure(guild_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ranks.wait_ready(guild_id), RANKS_WAIT_SECONDS)

    async def evaluate(self, guild: discord.Guild) -> None:
        """Compute the guild's role changes and queue them (replacing the changes still queued)."""
        usable = await self._usable_rules(guild)
        if usable is None:
            return
        await self._resolve_interrupted(guild)
        values = await self._values(guild.id, await self._readings(guild.id, usable))
        holders = {r.role_id: {m.id for m in role.members}
                   for r in usable if (role := guild.get_role(r.role_id)) is not None}
        changes = plan(usable, values, holders, {m.id for m in guild.members})
        self._queue(guild, changes)
        if changes:
            log.info("activity roles of guild %s: %d changes queued", guild.id, len(changes))

    async def _usable_rules(self, guild: discord.Guild) -> list[RewardRule] | None:
        """The rules whose role the bot can manage; None when there is nothing to evaluate."""
        rules = await self.rules.active(guild.id)
        if not rules:
            self._ruled.discard(guild.id)
            return None
        self._ruled.add(guild.id)
        if not self.bot.ranks.ready(guild.id):
            log.info("activity roles of guild %s: ranks not ready; evaluated at the next run", guild.id)
            return None
        return [r for r in rules if self._manageable(guild, r.role_id)]

    # ---- following counts -------------------------------------------------------------------
    def _counts_changed(self, guild_id: int, members: set[int]) -> None:
        """From the write path (`Ranks.watch`): the members are checked `REWARDS_CHANGE_SECONDS`
        later, with every other member whose counts change meanwhile."""
        if guild_id not in self._ruled:
            return
        self._changed.setdefault(guild_id, set()).update(members)
        if guild_id not in self._follow_timers:
            delay = self.bot.settings.rewards_change_seconds
            self._follow_timers[guild_id] = asyncio.get_running_loop().call_later(
                delay, self._follow, guild_id)

    def _follow(self, guild_id: int) -> None:
        del self._follow_timers[guild_id]
        changed = self._changed.pop(guild_id, set())
        guild = self.bot.get_guild(guild_id)
        if guild is None or not changed:
            return
        task = asyncio.create_task(self._guarded(guild, self.evaluate_members(guild, changed)),
                                   name=f"rewards-changed-{guild_id}")
        self._evaluations.add(task)
        task.add_done_callback(self._evaluations.discard)

    async def evaluate_members(self, guild: discord.Guild, changed: set[int]) -> None:
        """Queue the role changes of the members whose counts changed, and, for a top N rule, of
        the members who may have entered or left its top (the top N + len(changed): the changed
        members can push at most that many out). Only those members' values are read."""
        usable = await self._usable_rules(guild)
        if not usable:
            return
        readings = await self._readings(guild.id, usable)
        subjects = set(changed)
        for rule in usable:
            reading = readings[rule.values_key]
            if rule.top is not None and isinstance(reading, Span):
                page = await self.bot.ranks.page(guild.id, rule.metric, reading.since, 0,
                                                 rule.top + len(changed), reading.until)
                subjects.update(member for member, _ in page)
        values = await self._values(guild.id, readings, subjects)
        members = {m: guild.get_member(m) for m in subjects}
        holders = {r.role_id: {m for m, member in members.items() if member and member.get_role(r.role_id)}
                   for r in usable}
        changes = plan(usable, values, holders, {m for m, member in members.items() if member})
        self._queue(guild, changes, subjects)

    async def _resolve_interrupted(self, guild: discord.Guild) -> None:
        """The intents a stopped process left: made if the member holds the role as the change would
        have it. A member who left is taken as not changed (nothing to tell it by)."""
        made: list[str] = []
        not_made: list[str] = []
        for entry in await self.changes_log.pending(guild.id):
            key = log_key(entry)
            if key in self._in_flight:
                continue
            member = guild.get_member(entry.member_id)
            holds = member is not None and member.get_role(entry.role_id) is not None
            changed = member is not None and holds == (entry.action == GRANTED)
            (made if changed else not_made).append(key)
        if made or not_made:
            log.info("activity roles of guild %s: %d changes of a stopped process found made, %d not made",
                     guild.id, len(made), len(not_made))
            await self.changes_log.resolve(made=made, not_made=not_made)

    def _manageable(self, guild: discord.Guild, role_id: int) -> bool:
        role = guild.get_role(role_id)
        reason = "it no longer exists" if role is None else unmanageable(role)
        if reason is None:
            self._warned.discard((guild.id, role_id))
            return True
        if (guild.id, role_id) not in self._warned:
            self._warned.add((guild.id, role_id))
            log.warning("activity roles of guild %s: role %s skipped: %s", guild.id, role_id, reason)
        return False

    async def _readings(self, guild_id: int, rules: list[RewardRule]) -> dict[tuple[str, str], Reading]:
        """What each rule's values are read from (`RewardRule.values_key`): a span of days, the
        window of an active rule, or None (a `season` rule with no season yet: nobody qualifies).
        The `season` period is the season current now (read here, at each evaluation)."""
        config = await self.bot.repos.guild_settings.get(guild_id)
        now, tz = self.bot.clock.now(), zone(config.time_zone)
        today = now.astimezone(tz).date()
        season = None
        if any(r.period == SEASON and r.active_days is None for r in rules):
            season = current_of(await self.seasons.all(guild_id), today.isoformat())
        readings: dict[tuple[str, str], Reading] = {}
        for rule in rules:
            key = rule.values_key
            if rule.active_days is not None:
                since = (today - timedelta(days=(rule.of_last or 1) - 1)).isoformat()
                # the streaks' rule: `/ud`'s streak and the role agree on which days were active
                readings[key] = Window(since, today.isoformat(), active_rule(config).active_counts)
            elif rule.period != SEASON:
                readings[key] = Span(period_start_day(rule.period or "all", now, tz), None)
            else:
                readings[key] = Span(*season.span) if season is not None else None
        return readings

    async def _values(self, guild_id: int, readings: dict[tuple[str, str], Reading],
                      members: set[int] | None = None) -> dict[tuple[str, str], Values]:
        """Each rule's values, from the ranks in memory: of `members`, or of every member (one pass
        over the mirror per span of days, and one per active window)."""
        ranks = self.bot.ranks
        by_span: dict[Span, dict[int, Any]] = {}
        values: dict[tuple[str, str], Values] = {}
        for key, reading in readings.items():
            if reading is None:
                values[key] = {}
            elif isinstance(reading, Window):
                if members is None:
                    values[key] = await ranks.active_days(guild_id, *reading)
                else:
                    values[key] = {m: ranks.member_active_days(guild_id, m, *reading) for m in members}
            else:
                if reading not in by_span:
                    by_span[reading] = (
                        dict(await ranks.every_member(guild_id, *reading)) if members is None else
                        {m: await ranks.member_counters(guild_id, m, *reading) for m in members})
                counter = REWARD_METRICS[key[0]]
                values[key] = {m: getattr(c, counter) for m, c in by_span[reading].items()}
        return values

    def _queue(self, guild: discord.Guild, changes: list[RoleChange],
               members: set[int] | None = None) -> None:
        """Queue `changes`: in place of every change still queued, or of those of `members`."""
        progress = self.progress.setdefault(guild.id, Progress())
        if not progress.pending and progress.applying is None:
            progress.done = 0
        kept = [] if members is None else [c for c in progress.pending if c.member_id not in members]
        progress.pending = deque([*kept, *changes])
        if changes and (progress.task is None or progress.task.done()):
            name = f"rewards-apply-{guild.id}"
            progress.task = asyncio.create_task(self._drain(guild, progress), name=name)

    async def _drain(self, guild: discord.Guild, progress: Progress) -> None:
        """Apply the queued changes one at a time, intended and resolved in batches of `BATCH`."""
        batch = Batch()
        try:
            while True:
                while progress.pending:
                    change = progress.applying = progress.pending.popleft()
                    batch = await self._apply(guild, progress, change, batch)
                    progress.applying = None
                    progress.done += 1
                await self._settle(batch)
                batch = Batch()
                if not progress.pending:
                    return
        except asyncio.CancelledError:
            self._forget(batch, progress)
            raise
        except Exception:  # the log could not be written: stop here, the next check queues again
            self._forget(batch, progress)
            log.exception("activity roles of guild %s: applying changes stopped", guild.id)

    def _forget(self, batch: Batch, progress: Progress) -> None:
        """The drain ends midway: the batch's intents stay pending, for the next evaluation to judge
        from what the members hold."""
        self._in_flight.difference_update(batch.keys())
        progress.applying = None

    async def _apply(self, guild: discord.Guild, progress: Progress, change: RoleChange,
                     batch: Batch) -> Batch:
        """Make `change` unless it is made already; the batch it was intended in (a new one when the
        current one does not hold it)."""
        target = self._target(guild, change)
        if target is None:
            return batch
        entry = batch.entry_of(change)
        if entry is None:
            await self._settle(batch)
            batch = await self._intend(guild, change, progress.pending)
            entry = batch.entry_of(change)
            assert entry is not None
        try:
            await self._ask_discord(*target, change)
        except discord.HTTPException as exc:
            if exc.status >= 500:  # may have been made
                batch.uncertain.append(log_key(entry))
            self._give_up_on_role(guild, progress, change.role_id, exc)
        except Exception:
            batch.uncertain.append(log_key(entry))
            log.exception("activity roles of guild %s: change %s failed", guild.id, change)
        else:
            batch.made.append(log_key(entry))
            self._refused.discard((guild.id, change.role_id))
        return batch

    def _target(self, guild: discord.Guild, change: RoleChange) -> tuple[discord.Member, discord.Role] | None:
        """The member and role `change` is to be made on; None when it cannot or need not be made
        (gone, no longer manageable, or already as it should be)."""
        member, role = guild.get_member(change.member_id), guild.get_role(change.role_id)
        if member is None or role is None or not self._manageable(guild, change.role_id):
            return None
        if (member.get_role(role.id) is not None) == change.grant:
            return None
        return member, role

    async def _intend(self, guild: discord.Guild, first: RoleChange, pending: deque[RoleChange]) -> Batch:
        """Record `first` and the next queued changes to make, up to `BATCH`, as intents."""
        batch, now = Batch(), self.bot.clock.now()
        for change in itertools.chain([first], itertools.islice(pending, LOOK_AHEAD)):
            if len(batch.entries) >= BATCH:
                break
            if batch.entry_of(change) is None and self._target(guild, change) is not None:
                batch.entries[(change.member_id, change.role_id, change.grant)] = RewardLogEntry(
                    guild.id, change.member_id, change.role_id, change.rule_id,
                    GRANTED if change.grant else REMOVED, now)
        self._in_flight.update(batch.keys())
        await self.changes_log.intend(list(batch.entries.values()))
        return batch

    async def _settle(self, batch: Batch) -> None:
        """Confirm the batch's changes Discord made and drop those it did not (never asked, refused,
        or not needed any more); the uncertain ones stay pending."""
        if not batch.entries:
            return
        keys = batch.keys()
        kept = set(batch.made) | set(batch.uncertain)
        await self.changes_log.resolve(made=batch.made, not_made=[k for k in keys if k not in kept])
        self._in_flight.difference_update(keys)

    def _give_up_on_role(self, guild: discord.Guild, progress: Progress, role_id: int,
                         exc: discord.HTTPException) -> None:
        """Discord refused: skip the role's queued changes (the next evaluation looks again)."""
        progress.pending = deque(c for c in progress.pending if c.role_id != role_id)
        if (guild.id, role_id) not in self._refused:
            self._refused.add((guild.id, role_id))
            log.warning("activity roles of guild %s: Discord refused to change role %s (%s %s); skipped "
                        "until the next check",
                        guild.id, role_id, exc.status, exc.text or "")

    async def _ask_discord(self, member: discord.Member, role: discord.Role, change: RoleChange) -> None:
        reason = f"activity role rule {change.rule_id}"
        if change.grant:
            await member.add_roles(role, reason=reason)
        else:
            await member.remove_roles(role, reason=reason)

    # ---- the commands ----------------------------------------------------------------------
    @rewards_group.command(
        name="add", description="Give a role for activity: reach N, top N, or active on N of the last M days")
    @app_commands.describe(
        role="The role to give (the bot then manages it: it also takes it away)",
        metric="For reach and top: messages, hours of voice or hours of camera on",
        period="For reach and top: over which period (default: all time)",
        reach=f"Reach this many messages or hours (1 to {MAX_REACH:,})",
        top=f"Or: be in the top N of the board (1 to {MAX_TOP:,})",
        active_days=f"Or: be active (as for streaks) on at least this many days (1 to {MAX_OF_LAST})...",
        of_last=f"...of the last this many days, today included (1 to {MAX_OF_LAST}, "
                f"default {DEFAULT_OF_LAST})",
    )
    @app_commands.choices(metric=METRIC_CHOICES, period=PERIOD_CHOICES)
    async def add(
        self, interaction: discord.Interaction, role: discord.Role, metric: str | None = None,
        period: str | None = None,
        reach: app_commands.Range[int, 1, MAX_REACH] | None = None,
        top: app_commands.Range[int, 1, MAX_TOP] | None = None,
        active_days: app_commands.Range[int, 1, MAX_OF_LAST] | None = None,
        of_last: app_commands.Range[int, 1, MAX_OF_LAST] | None = None,
    ) -> None:
        if not await require_manage_guild(interaction):
            return
        guild = interaction.guild
        assert guild is not None
        rule = RewardRule(guild.id, interaction.id, role.id, metric or "", period or "all", reach, top)
        if active_days is not None:
            rule = RewardRule(guild.id, interaction.id, role.id, ACTIVE, None, active_days=active_days,
                              of_last=of_last or DEFAULT_OF_LAST)
        refusal = self._refusal(role, metric, period, reach, top, active_days, of_last)
        if refusal is None and len(await self.rules.active(guild.id)) >= MAX_RULES:
            refusal = f"This server has {MAX_RULES} rules already, the most it can have; remove one first."
        if refusal is not None:
            await answer(interaction, refusal)
            return
        await self.rules.add(rule, interaction.user.id, self.bot.clock.now())
        log.info("guild %s: activity-role rule %s added for role %s", guild.id, rule.rule_id, role.id)
        text = (f"Rule `{rule.rule_id}` added: {style.role(role.id)}, {rule_text(rule)}. The bot now "
                f"manages {style.role(role.id)}: it gives it to members who qualify and takes it from those "
                "who do not.")
        if rule.period == SEASON and rule.active_days is None:
            text += await self._season_note(guild.id)
        await answer(interaction, text)
        self.evaluate_soon(guild)

    async def _season_note(self, guild_id: int) -> str:
        """A `season` rule added with no current season: accepted (set up before the first season),
        and told that it gives the role to nobody until a season has begun."""
        seasons = await self.seasons.all(guild_id)
        if current_of(seasons, await self.seasons.today(guild_id)) is not None:
            return ""
        if seasons:  # one starting tomorrow
            return (f" No season is current yet: until **{safe_name(seasons[-1].name)}** starts "
                    f"({seasons[-1].start_day}), this rule gives the role to nobody.")
        return " No season has started yet: until `/season start`, this rule gives the role to nobody."

    @staticmethod
    def _refusal(role: discord.Role, metric: str | None, period: str | None, reach: int | None,
                 top: int | None, active_days: int | None, of_last: int | None) -> str | None:
        if sum(kind is not None for kind in (reach, top, active_days)) != 1:
            return ("Give exactly one of `reach` (messages or hours), `top` (the top N of the board) or "
                    "`active_days` (active on N of the last `of_last` days).")
        if active_days is None:
            if of_last is not None:
                return "`of_last` goes with `active_days`; `reach` and `top` use `period`."
            if metric not in REWARD_METRICS or (period or "all") not in REWARD_PERIODS:
                return "Pick the metric (and the period, if not all time) from the lists."
        else:
            if metric is not None or period is not None:
                return ("`metric` and `period` do not apply to `active_days`: a day is active as for streaks "
                        "(`/settings`, `streak_min_messages` and `streak_min_voice_minutes`), and `of_last` "
                        "is the period.")
            if active_days > (of_last or DEFAULT_OF_LAST):
                return (f"`active_days` ({active_days}) cannot be more than `of_last` "
                        f"({of_last or DEFAULT_OF_LAST}).")
        return unmanageable(role)

    @rewards_group.command(
        name="remove", description="Remove an activity-role rule (its role is left as it is)")
    @app_commands.describe(rule="The rule's id, from /rewards list")
    async def remove(self, interaction: discord.Interaction, rule: app_commands.Range[str, 1, 20]) -> None:
        if not await require_manage_guild(interaction):
            return
        guild = interaction.guild
        assert guild is not None
        text = rule.strip()
        rule_id = int(text) if text.isascii() and text.isdigit() else 0
        found = await self.rules.get(guild.id, rule_id) if valid_id(rule_id) else None
        if found is None:
            await answer(interaction, f"No rule `{rule.replace('`', '')}` in this server; "
                                      "`/rewards list` shows the rules and their ids.")
            return
        await self.rules.remove(guild.id, found.rule_id, interaction.user.id, self.bot.clock.now())
        log.info("guild %s: activity-role rule %s removed", guild.id, found.rule_id)
        await answer(interaction, f"Rule `{found.rule_id}` removed ({style.role(found.role_id)}, "
                                  f"{rule_text(found)}).")
        self.evaluate_soon(guild)

    @rewards_group.command(name="list", description="The activity-role rules of this server")
    async def list_(self, interaction: discord.Interaction) -> None:
        if not await require_manage_guild(interaction):
            return
        guild = interaction.guild
        assert guild is not None
        rules = await self.rules.active(guild.id)
        embed = discord.Embed(title="Activity roles", color=0x5865F2)
        if not rules:
            embed.description = "No rules yet; `/rewards add` adds one."
        else:
            embed.description = "\n".join(
                f"`{r.rule_id}` {style.role(r.role_id)}: {rule_text(r)}" for r in rules)
            embed.set_footer(text=f"Changes: {self.progress_line(guild.id)}")
        await interaction.response.send_message(embed=fit_embed(embed), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
