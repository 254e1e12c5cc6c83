"""The bot: startup order, scheduler, and a shutdown that flushes before the connection closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import warnings
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from discord.ext import commands
from pymongo.errors import PyMongoError

from app import __version__
from app.storage.database import ping_ms
from app.storage.journal import Journal, Record
from app.storage.lease import Lease, data_dir_id
from app.storage.outbox import Outbox
from app.storage.probe import ProbeResult, run_probe
from app.storage.retry import OpSequence, RetryPolicy
from app.storage.writes import Writer
from app.tracking.channel_stats import ChannelStats
from app.tracking.invite_boards import InviteBoards
from app.tracking.ranks import Ranks
from app.tracking.seasons import Seasons
from app.tracking.streaks import ActiveRule, active_rule
from app.tracking.voice import period_start_day, zone
from app.wiring.clock import Clock, SystemClock
from app.wiring.commands import TrackerTree
from app.wiring.container import Repositories
from app.wiring.discord_endpoints import bot_intents
from app.wiring.health import CheckResult, HealthServer, any_of, start_health_server
from app.wiring.limits import Cooldowns, Gate, GateLimits, SingleFlight
from app.wiring.logs import Redactor, secrets_of
from app.wiring.metrics import Metrics
from app.wiring.scheduler import add_interval_job, make_scheduler
from app.wiring.settings import Settings

log = logging.getLogger(__name__)

ShutdownHook = Callable[[], Awaitable[object]]
CogFactory = Callable[["TrackerBot"], commands.Cog]
SHUTDOWN_HOOK_TIMEOUT = 20.0
# SIGTERM to exit, in every case (MongoDB up or down): under Docker's default 10 s stop timeout.
# What MongoDB has not acknowledged by then is in the outbox (each write spills within 0.15 s).
SHUTDOWN_BUDGET_SECONDS = 6.0
SHUTDOWN_IDLE_SECONDS = 3.0
CURRENT_PERIODS = ("today", "7d", "30d")  # their boards are made with the ranks
OUTBOX_WATCH_SECONDS = 60.0
DATABASE_WATCH_SECONDS = 2.0
DATABASE_PING_DEADLINE_SECONDS = 1.5
OUTBOX_START_DRAIN_SECONDS = 120
LEASE_RELEASE_SECONDS = 1.0
# What only the lease holder handles: everything that counts, attributes or reconciles. Commands
# and the rest still run on a standby.
COUNTED_EVENTS = frozenset({
    "message", "voice_state_update", "member_join", "member_remove", "raw_member_remove",
    "member_update", "invite_create", "invite_delete", "guild_available", "guild_join",
    "guild_unavailable", "guild_remove",
})


def forget_live_state(guild: discord.Guild) -> None:
    """A guild in an outage: forget who is in it and who is in voice. When it comes back,
    discord.py updates the cached guild from GUILD_CREATE without clearing either (it only adds
    what the payload carries, then chunks), so a member who left the guild or voice during the
    outage would still look present: credited voice time they never had, a leave never recorded.
    Emptied now, both are rebuilt from the GUILD_CREATE and the member chunks, as Discord has them."""
    me = guild.me
    guild._voice_states.clear()  # discord.py has no public way to drop its cache
    guild._members.clear()
    if me is not None:
        guild._add_member(me)  # the bot itself: its permissions and nick


def proxy_options(settings: Settings) -> dict[str, Any]:
    """discord.py's `proxy=` and `proxy_auth=` from DISCORD_PROXY (REST and gateway both use them).
    Credentials in the URL (`http://user:password@host:3128`) become a BasicAuth: aiohttp takes
    them only that way."""
    if settings.discord_proxy is None:
        return {}
    parts = urlsplit(settings.discord_proxy.get_secret_value())
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    options: dict[str, Any] = {"proxy": urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))}
    if parts.username is not None:
        with warnings.catch_warnings():  # aiohttp 3.14 deprecates BasicAuth; discord.py takes only it
            warnings.simplefilter("ignore", DeprecationWarning)
            options["proxy_auth"] = aiohttp.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
    return options


class TrackerBot(commands.Bot):
    """Start: probe, indexes, cogs, scheduler, command sync. Stop: flush hooks, scheduler, gateway."""

    def __init__(
        self,
        settings: Settings,
        db: Any,
        db_host: str,
        *,
        clock: Clock | None = None,
        probe_result: ProbeResult | None = None,
        server_kind: str = "external",
        cog_factories: list[CogFactory] | None = None,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=bot_intents(), help_command=None,
            tree_cls=TrackerTree,
            # Bot-wide default: no message ever pings (@everyone, roles, users), whatever it holds.
            allowed_mentions=discord.AllowedMentions.none(),
            **proxy_options(settings),
        )
        self.settings = settings
        self.db = db
        self.db_host = db_host
        self.clock: Clock = clock or SystemClock()
        self.cooldowns = Cooldowns(self.clock.now)
        self.gate = Gate(self.cooldowns, GateLimits.of(settings))  # every interaction passes it
        self.guild_jobs = SingleFlight()  # one reset / restore / erase per guild at a time
        self.redactor = Redactor(secrets_of(settings))  # for any error text shown to a member
        self.metrics = Metrics()
        self.retry_policy = RetryPolicy(
            attempts=settings.write_retry_attempts, max_seconds=settings.write_retry_max_seconds,
            on_retry=self.metrics.retries.inc,
        )
        self.outbox = Outbox(settings.data_dir / "outbox.db")
        self.writer = Writer(
            db, self.retry_policy, self.outbox, self.clock, on_submit=self.metrics.writes.inc
        )
        self.repos = Repositories.create(db, self.retry_policy, self.writer)
        self.journal = Journal(settings.data_dir / "invite-journal.db")
        self.journal_left: list[Record] = []  # what the previous run kept; taken up by the invites cog
        self.sequence = OpSequence()
        self.lease = Lease(self.repos.lease, self.sequence, self.clock, data_dir_id(settings.data_dir),
                           settings.lease_ttl_seconds, on_acquired=self._took_over)
        # /ud and /top ranks in memory; valid only while this process counts (holds the lease)
        self.ranks = Ranks(self.repos.activity, self.clock, active=self.lease.active.is_set,
                           rule_of=self._active_rule, spans_of=self._current_spans)
        # /server stats' top channels in memory; likewise
        self.channel_stats = ChannelStats(self.repos.activity, self.clock, active=self.lease.active.is_set)
        self.invite_boards = InviteBoards(self.repos.joins, self.repos.invite_bonus,
                                          active=self.lease.active.is_set)
        self.seasons = Seasons(self.repos.seasons, self.repos.guild_settings, self.clock)  # one for every cog
        self.repos.invite_boards = self.invite_boards
        self.cog_factories = cog_factories if cog_factories is not None else default_cog_factories()
        self.probe_result = probe_result
        self.server_kind = server_kind
        self.previous_run: dict[str, Any] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self._shutdown_hooks: list[tuple[str, ShutdownHook]] = []
        self.health: HealthServer | None = None
        self._closing = False
        self._held_back: set[int] = set()  # guilds reported ready during an outage (`_hold_back`)

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """A standby (another process holds the lease) drops the events that count. A guild reported
        ready while it is unavailable is held back until it is available (`_hold_back`)."""
        if event_name == "guild_unavailable":
            forget_live_state(args[0])
        if event_name in ("guild_available", "guild_join") and self._hold_back(args[0]):
            return
        if event_name in COUNTED_EVENTS and not self.lease.active.is_set():
            return
        super().dispatch(event_name, *args, **kwargs)
        if event_name == "ready":
            self._release_held_back()

    def _hold_back(self, guild: discord.Guild) -> bool:
        """discord.py's start waits for every guild's member list, then reports each guild ready,
        also one whose outage began meanwhile (it is unavailable, its live state forgotten): a
        reconciliation then would close every voice session as if everyone had left. Such a guild
        waits; the GUILD_CREATE that ends its outage reports it again, or, when that one arrived
        while discord.py's start was still waiting (discord.py then queues it and never reports
        it), the end of the start (`ready`) does."""
        if not guild.unavailable:
            self._held_back.discard(guild.id)
            return False
        self._held_back.add(guild.id)
        log.info("guild %s is unavailable (an outage began during the start): reconciled when it is back",
                 guild.id)
        return True

    def _release_held_back(self) -> None:
        for guild_id in list(self._held_back):
            guild = self.get_guild(guild_id)
            if guild is not None and not guild.unavailable:
                self.dispatch("guild_available", guild)

    async def _active_rule(self, guild_id: int) -> ActiveRule:
        """The guild's rule for an active day (its streak settings), for the ranks' active days."""
        return active_rule(await self.repos.guild_settings.get(guild_id))

    async def _current_spans(self, guild_id: int) -> list[tuple[str, None]]:
        """The spans of today, the last 7 and the last 30 days in the guild's time zone."""
        config = await self.repos.guild_settings.get(guild_id)
        now, tz = self.clock.now(), zone(config.time_zone)
        return [(since, None) for period in CURRENT_PERIODS
                if (since := period_start_day(period, now, tz)) is not None]

    def _took_over(self) -> None:
        """The lease changed hands to this running process: reconcile every guild as on a start.
        The ranks are read again from MongoDB: the previous holder counted meanwhile."""
        self.ranks.forget()
        self.channel_stats.forget()
        self.invite_boards.forget()
        if not self.is_ready():
            return  # at start: the guilds' own GUILD_CREATE events follow
        self.dispatch("lease_acquired")
        for guild in self.guilds:
            self.dispatch("guild_available", guild)

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands here (messages are only counted, in cogs/activity.py): the default
        would parse every message for commands, and raise on a message without an author."""

    async def setup_hook(self) -> None:
        await self.outbox.open()
        self.journal_left = await self.journal.open()
        if self.probe_result is None:
            self.probe_result = await run_probe(
                self.repos.probe, self.db_host, self.clock, self.settings.probe_timeout_seconds
            )
        await self._replay_outbox()
        self.previous_run = await self.repos.lifecycle.load()
        await self.repos.ensure_indexes()
        await self.repos.lifecycle.mark_started(self.clock.now(), __version__)
        try:
            await self.lease.step()  # free, released, or ours (same DATA_DIR): active from the start
        except PyMongoError as exc:
            log.warning("the lease could not be read yet (%s); trying again every second", type(exc).__name__)
        self.lease.start()
        self.add_shutdown_hook(
            "lifecycle", lambda: self.repos.lifecycle.mark_clean_shutdown(self.clock.now())
        )
        self.scheduler = make_scheduler()
        self.add_interval_job("outbox-watch", self.watch_outbox, OUTBOX_WATCH_SECONDS)
        self.add_interval_job("database-watch", self.watch_database, DATABASE_WATCH_SECONDS)
        await self._load_cogs()
        self.scheduler.start()
        await self._sync_commands()
        self.health = await start_health_server(self)
        if self.health is not None:
            self.health.checks["database"] = any_of(self.health.checks["database"], self.outbox_check)
        self._register_gauges()
        log.info("startup complete (version %s)", __version__)

    async def _replay_outbox(self) -> None:
        """Writes a previous run left unacknowledged go to MongoDB before anything reads or writes."""
        await self.writer.start()
        if not self.writer.draining:
            return
        try:
            await self.writer.wait_drained(OUTBOX_START_DRAIN_SECONDS)
        except TimeoutError:
            log.error("the outbox could not be replayed within %ds (%d writes left); new writes queue "
                      "behind it", OUTBOX_START_DRAIN_SECONDS, self.outbox.depth)

    async def watch_outbox(self) -> None:
        """Every minute: alarm while the outbox is over its cap (events are still accepted), and
        report the outbox to MongoDB when it answers."""
        depth, cap = self.outbox.depth, self.settings.outbox_alarm_entries
        if depth > cap:
            log.error("ALARM: the outbox holds %d writes, over OUTBOX_ALARM_ENTRIES=%d: MongoDB at %s has "
                      "not taken writes for a while; events are still kept", depth, cap, self.db_host)
        oldest = await self.outbox.oldest_created_ms()
        # MongoDB away: the outbox holds the events and the log has the alarm.
        with contextlib.suppress(TimeoutError, PyMongoError):
            await asyncio.wait_for(self.repos.lifecycle.report_status(self.clock.now(), depth, oldest), 5)

    async def watch_database(self) -> None:
        """Every few seconds a ping with a short deadline: when MongoDB stops answering, writes go to
        the outbox at once rather than waiting in memory through their retries."""
        if self.writer.draining:
            return  # the outbox's replay loop is probing already
        if await ping_ms(self.db, DATABASE_PING_DEADLINE_SECONDS) is None:
            self.writer.mark_down(f"no answer to a ping within {DATABASE_PING_DEADLINE_SECONDS:g}s")

    async def outbox_check(self) -> CheckResult:
        if self.writer.draining:
            kept = self.outbox.depth
            return CheckResult(True, f"{kept} writes are kept in the outbox until MongoDB answers")
        return CheckResult(False, "the outbox is idle")

    def _register_gauges(self) -> None:
        self.metrics.outbox_depth.set_function(lambda: self.outbox.depth)
        self.metrics.outbox_replayed.set_function(lambda: self.writer.replayed)

    async def _load_cogs(self) -> None:
        for factory in self.cog_factories:
            try:
                await self.add_cog(factory(self))
            except Exception:
                log.exception("cog %s failed to load", getattr(factory, "__name__", factory))
                raise

    async def _sync_commands(self) -> None:
        try:
            synced = await self.tree.sync()
            log.info("synced %d application commands", len(synced))
        except discord.HTTPException as exc:
            log.error("could not sync application commands: %s", exc)

    def add_interval_job(self, job_id: str, func: Callable[[], Awaitable[object]], seconds: float) -> None:
        if self.scheduler is None:
            raise RuntimeError("the scheduler exists only once setup_hook runs")
        add_interval_job(self.scheduler, job_id, func, seconds)

    @property
    def closing(self) -> bool:
        """`close()` has begun: background work stops starting new steps."""
        return self._closing

    async def wait_idle(self, timeout: float = 10.0, cogs: list[commands.Cog] | None = None) -> None:
        """Until every running listener task and every cog's pending writes are done.

        Cogs with background writers (group commit, queues) expose `async def wait_idle()`.
        Used at shutdown before the final flush, and by tests to wait for an event's effect.
        `cogs`: the cogs to wait for (default: those loaded now).
        """
        async with asyncio.timeout(timeout):
            while True:
                current = asyncio.current_task()
                listeners = [
                    t for t in asyncio.all_tasks()
                    if t is not current and not t.done() and t.get_name().startswith("discord.py: on_")
                ]
                if listeners:
                    await asyncio.wait(listeners)
                for cog in list(self.cogs.values()) if cogs is None else cogs:
                    waiter = getattr(cog, "wait_idle", None)
                    if waiter is not None:
                        await waiter()
                if not any(
                    not t.done() and t.get_name().startswith("discord.py: on_")
                    for t in asyncio.all_tasks() if t is not current
                ):
                    return

    def add_shutdown_hook(self, name: str, hook: ShutdownHook) -> None:
        """Run `hook` at shutdown, before the gateway and the database close; later hooks run first."""
        self._shutdown_hooks.append((name, hook))

    async def run_shutdown_hooks(self, deadline: float | None = None) -> None:
        """Run the hooks, later ones first, each within what is left until `deadline` (loop time)."""
        loop = asyncio.get_running_loop()
        for name, hook in reversed(self._shutdown_hooks):
            left = SHUTDOWN_HOOK_TIMEOUT if deadline is None else max(deadline - loop.time(), 0.1)
            try:
                await asyncio.wait_for(hook(), min(left, SHUTDOWN_HOOK_TIMEOUT))
                log.info("shutdown: %s done", name)
            except Exception as exc:
                log.error("shutdown: %s failed: %s", name, exc or type(exc).__name__)

    async def close(self) -> None:
        """Within SHUTDOWN_BUDGET_SECONDS: let the listeners finish, run the final flush, close the
        gateway, then keep whatever MongoDB has not acknowledged in the outbox for the next start."""
        if self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_BUDGET_SECONDS
        log.info("shutting down")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self._wait_idle_at_shutdown(SHUTDOWN_IDLE_SECONDS)
        await self.run_shutdown_hooks(deadline)
        if self.health is not None:
            await self.health.stop()
        cogs = list(self.cogs.values())  # commands.Bot.close() removes them
        await super().close()  # the gateway: no event arrives after this
        # Counting stops only now: the next holder takes over after this process releases the
        # lease, so an event that reached this one before its gateway closed is no one else's.
        self.lease.stand_down()
        await self._wait_idle_at_shutdown(max(deadline - loop.time(), 0.5), cogs)
        await self._release_lease()
        await self.ranks.stop()
        await self.channel_stats.stop()
        await self.invite_boards.stop()
        await self.writer.stop()
        if self.outbox.depth:
            log.warning("stopping with %d writes in the outbox; they are replayed at the next start",
                        self.outbox.depth)
        await self.outbox.close()
        if self.journal.depth:
            log.warning("stopping with %d invite events in the invite journal; they are taken up at the "
                        "next start", self.journal.depth)
        await self.journal.close()

    async def _release_lease(self) -> None:
        """Hand over at once, unless writes wait in the outbox: a new holder would not see them
        (and would fence them out), so the lease then expires instead, and the outbox is replayed
        by the next start on this DATA_DIR."""
        await self.lease.stop()
        if self.outbox.depth or self.writer.draining:
            log.warning("shutdown: the lease is not released while %d writes wait in the outbox",
                        self.outbox.depth)
            return
        try:
            await asyncio.wait_for(self.lease.release(), LEASE_RELEASE_SECONDS)
        except Exception as exc:
            log.error("shutdown: the lease could not be released (%s); it expires instead",
                      type(exc).__name__)

    async def _wait_idle_at_shutdown(self, seconds: float, cogs: list[commands.Cog] | None = None) -> None:
        try:
            await self.wait_idle(seconds, cogs)
        except TimeoutError:
            log.error("shutdown: event handlers still busy after %.1fs; stopping anyway", seconds)


def install_signal_handlers(bot: TrackerBot) -> None:
    """SIGTERM (docker stop) and SIGINT close the bot gracefully instead of killing it mid-write."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, bot, sig)


def _on_signal(bot: TrackerBot, sig: signal.Signals) -> None:
    log.info("received %s, flushing and closing", sig.name)
    asyncio.get_running_loop().create_task(bot.close())


def default_cog_factories() -> list[CogFactory]:
    from cogs import all_cog_factories

    return all_cog_factories()
