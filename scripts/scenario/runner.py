"""Run a scenario: the emulator in this process, the real bot (`python main.py`) as a subprocess,
a MongoDB (the embedded server, started here so a `db_outage` can stop it, or MONGODB_URI).

Steps run at their `at` second; a restart runs in the background, so steps during its `down_for`
still change the emulator's world, and the bot sees them in GUILD_CREATE when it comes back. The
gateway faults (op 7, op 9, a guild outage) and a second bot process run the same way.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import logging
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.storage.database import EmbeddedServer
from scripts.emulator import Emulator
from scripts.emulator.constants import Perm
from scripts.faultproxy import FaultPlan, FaultProxy
from scripts.scenario.model import DB_PROXY_STEPS, REST_ROUTES, Scenario, ScenarioError, Step
from scripts.scenario.truth import Happened

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scenario-token"
READY_TIMEOUT = 60.0
# `"backup_id": "@last_reset"` in a command's options: the backup id of the last reset the bot
# confirmed in this run, or, before any, an id no reset made (the bot answers that it has none).
LAST_RESET = "@last_reset"
NO_BACKUP = "ib-000000000000"
RESET_BACKUP = re.compile(r"Backup id: `(ib-[0-9a-f]+)`")
RESTORED_BACKUP = re.compile(r"Backup `(ib-[0-9a-f]+)` restored: ")
MEMBER_ROLE = re.compile(r"^/guilds/\d+/members/(\d+)/roles/(\d+)$")
STAFF_CHANGED = re.compile(r"Staff code (`[^`]+` saved for|of .+ removed)")
# `"rule": "@last_rule"`: the id of the last rule `/rewards add` confirmed, or, before any, an id no
# rule has (the bot answers that there is no such rule).
LAST_RULE = "@last_rule"
NO_RULE = "1"
RULE_CHANGED = re.compile(r"\bRule `(\d+)` (added|removed)")
# `"season": "@last_season"`: the name of the last season `/season start` confirmed, or, before any, a
# name no season has (the bot answers that there is no such season).
LAST_SEASON = "@last_season"
NO_SEASON = "No such season"
SEASON_STARTED = re.compile(r"^Season \*\*(.+?)\*\* counts from 00:00 ")
ATTACHMENT_HEAD = 512  # the first bytes of each attachment, kept in the report (base64)


@dataclass
class CommandResult:
    step: int
    at: float
    user: int
    name: str
    options: dict[str, Any]
    content: str | None
    embeds: list[dict[str, Any]]
    ephemeral: bool
    error: str | None = None
    # Every message the command produced (the response, then follow-ups), as they are at the end:
    # content, embeds, components, attachments and flags; `edits`: how often the response changed.
    messages: list[dict[str, Any]] = field(default_factory=list)
    edits: int = 0
    manage_server: bool = False  # the member had Manage Server when the command ran
    # What the bot's answer confirmed: "bonus", "reset", "restore", "erase", "staff", "rule" (an
    # activity-role rule added or removed), "season" (a season started), "export" (a CSV file sent) or None.
    effect: str | None = None
    backup: str | None = None  # a confirmed reset's or restore's backup id


@dataclass
class SecondProcessResult:
    """A `second_process` step: another bot process on the same token, database and emulator."""

    step: int
    at: float
    seconds: float
    exit_code: int | None = None
    log: Path | None = None


@dataclass
class RunResult:
    scenario: Scenario
    mongodb_uri: str
    db_name: str
    happened: list[Happened]
    commands: list[CommandResult]
    aliases: dict[int, int]  # scenario id -> real Discord id
    bot_exit_codes: list[int | None] = field(default_factory=list)
    second_processes: list[SecondProcessResult] = field(default_factory=list)
    bot_log: Path | None = None
    workdir: Path | None = None
    # The emulator at the end: each member's roles (real ids; members who left and the bot absent),
    # and every member-role change the bot's REST calls made (Discord answered 204), in order:
    # (member, role, "granted"/"removed").
    member_roles: dict[int, list[int]] = field(default_factory=dict)
    role_changes: list[tuple[int, int, str]] = field(default_factory=list)


class BotProcess:
    """`python main.py` against the emulator; restarted by the runner."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.exit_codes: list[int | None] = []

    async def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "main.py"), cwd=str(ROOT), env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
            )

    async def stop(self, sig: str, timeout: float = 60.0) -> int | None:
        process = self.process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGKILL if sig == "SIGKILL" else signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            code = await process.wait()
        self.exit_codes.append(code)
        self.process = None
        return code


class ScenarioRunner:
    def __init__(self, scenario: Scenario, *, workdir: Path | None = None, mongodb_uri: str | None = None,
                 bot_log_level: str | None = None) -> None:
        self.scenario = scenario
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="scenario-"))
        self.external_uri = mongodb_uri
        # SCENARIO_BOT_LOG_LEVEL=DEBUG replays a seed with the bot's whole story in its log.
        self.bot_log_level = bot_log_level or os.environ.get("SCENARIO_BOT_LOG_LEVEL", "INFO")
        self.happened: list[Happened] = []
        self.commands: list[CommandResult] = []
        self.emu = Emulator(token=TOKEN, latency=scenario.latency)
        self.server: EmbeddedServer | None = None
        self.uri = ""  # the database's own address (the report reads through it)
        self.bot_uri = ""  # what the bot is given: through the fault proxy when the scenario has one
        self.proxy: FaultProxy | None = None
        self.bot: BotProcess | None = None
        self.others: list[BotProcess] = []
        self.second_processes: list[SecondProcessResult] = []
        self.bot_up = asyncio.Event()
        self.db_up = asyncio.Event()
        self.guild_up = asyncio.Event()
        self.guild_up.set()
        self.background: list[asyncio.Task[None]] = []
        self.t0 = 0.0
        self.last_backup = NO_BACKUP  # what `@last_reset` stands for now
        self.last_rule = NO_RULE  # what `@last_rule` stands for now
        self.last_season = NO_SEASON  # what `@last_season` stands for now
        self.db_name = f"scenario_{int(time.time())}"

    # ---- setup ------------------------------------------------------------------------------------
    def _check_supported(self) -> None:
        if self.external_uri and any(step.do == "db_outage" for step in self.scenario.steps):
            raise ScenarioError("db_outage needs the embedded database (unset MONGODB_URI): "
                                "the runner cannot stop an external MongoDB")

    async def _start_proxy(self, uri: str) -> str:
        """The fault proxy between the bot and MongoDB, when a step needs it (else `uri`)."""
        if not any(step.do in DB_PROXY_STEPS for step in self.scenario.steps):
            return uri
        host, port = uri.removeprefix("mongodb://").split("/")[0].rsplit(":", 1)
        self.proxy = await FaultProxy(host, int(port)).start()
        return self.proxy.uri

    def _start_database(self) -> str:
        if self.external_uri:
            return self.external_uri
        self.server = EmbeddedServer(self.workdir / "dbserver")
        uri = self.server.start()
        self.db_up.set()
        return uri

    def _bot_env(self, uri: str, data_dir: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "MONGODB_"))}
        env.update({
            "DISCORD_TOKEN": TOKEN,
            "DISCORD_API_BASE": self.emu.api_base,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "MONGODB_URI": uri,
            "MONGODB_DB": self.db_name,
            "DATA_DIR": str(data_dir or self.workdir / "botdata"),
            "LOG_LEVEL": self.bot_log_level,
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.scenario.settings)
        return env

    async def _start_bot(self) -> None:
        assert self.bot is not None
        since, readies = len(self.emu.requests), self.emu.gateway.ready_count
        await self.bot.start()
        await self.emu.wait_ready(timeout=READY_TIMEOUT, count=readies + 1)
        await self.emu.wait_commands_synced(timeout=READY_TIMEOUT, since=since)
        self.bot_up.set()

    # ---- run ----------------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._check_supported()
        self.workdir.mkdir(parents=True, exist_ok=True)
        uri = self.uri = self._start_database()
        self.bot_uri = await self._start_proxy(uri)
        self.db_up.set()
        await self.emu.start()
        try:
            self.emu.add_guild(self.scenario.guild)
            self.emu.history_denied |= {int(c) for c in self.scenario.guild.get("history_denied", [])}
            self.bot = BotProcess(self._bot_env(self.bot_uri), self.workdir / "bot.log")
            await self._start_bot()
            await asyncio.sleep(0.5)  # the bot's start-up reconciliation of the guild
            self.t0 = time.time()
            self.happened.append(Happened(self.t0, "start"))
            for step in self.scenario.steps:
                await self._sleep_until(step.at)
                await self._run_step(step)
            await asyncio.gather(*self.background)
            await self.bot_up.wait()
            await self.db_up.wait()
            await self.guild_up.wait()
            await asyncio.sleep(1.0)  # let the last events be written
            self.happened.append(Happened(time.time(), "end"))
            await self.bot.stop("SIGTERM")
            return RunResult(
                scenario=self.scenario, mongodb_uri=uri, db_name=self.db_name, happened=self.happened,
                commands=self.commands, aliases=dict(self.emu.world.aliases),
                bot_exit_codes=self.bot.exit_codes, second_processes=self.second_processes,
                bot_log=self.bot.log_path, workdir=self.workdir,
                member_roles=self._member_roles(), role_changes=self._role_changes(),
            )
        finally:
            for task in self.background:
                task.cancel()
            for process in [self.bot, *self.others]:
                if process is not None:
                    await process.stop("SIGKILL")
            await self.emu.stop()
            if self.proxy is not None:
                await self.proxy.stop()

    def _member_roles(self) -> dict[int, list[int]]:
        guild = self.emu.world.guild(self.scenario.guild_id)
        return {member_id: sorted(int(role) for role in member.roles)
                for member_id, member in guild.members.items() if member_id != self.emu.world.bot_user.id}

    def _role_changes(self) -> list[tuple[int, int, str]]:
        changes = []
        for request in self.emu.requests:
            found = MEMBER_ROLE.match(request.path)
            if found and request.status == 204 and request.method in ("PUT", "DELETE"):
                action = "granted" if request.method == "PUT" else "removed"
                changes.append((int(found.group(1)), int(found.group(2)), action))
        return changes

    def close(self) -> None:
        """Stop the embedded database (kept running after `run` so the report can read it)."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    async def _sleep_until(self, at: float) -> None:
        delay = self.t0 + at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _record(self, kind: str, member: int | None = None, *, at: float | None = None, **data: Any) -> None:
        """Record what happened now, or at the earlier wall-clock time `at` (kept in time order)."""
        event = Happened(time.time() if at is None else at, kind, member, data)
        bisect.insort(self.happened, event, key=lambda e: e.t)

    def _uid(self, ref: Any) -> int:
        return self.emu.user_id(ref)

    async def _run_step(self, step: Step) -> None:
        handler = getattr(self, f"_do_{step.do}")
        try:
            await handler(step, step.args)
        except ScenarioError:
            raise
        except (ValueError, KeyError, PermissionError) as exc:
            raise ScenarioError(f"{step.label}: {exc}") from None

    async def _do_message(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.message(args["user"], int(args["channel"]))
        delivered = self.emu.events[-1].delivered  # 0: no bot session could see it
        self._record("message", self._uid(args["user"]), channel=int(args["channel"]), delivered=delivered)

    async def _do_voice(self, step: Step, args: dict[str, Any]) -> None:
        channel = args["channel"]
        camera, stream = bool(args.get("camera", False)), bool(args.get("stream", False))
        self.emu.voice(args["user"], channel, camera=camera, stream=stream,
                       self_deaf=bool(args.get("self_deaf", False)), guild=self.scenario.guild_id)
        self._record("voice", self._uid(args["user"]), channel=channel, camera=camera, stream=stream)

    async def _do_join(self, step: Step, args: dict[str, Any]) -> None:
        user, via = args["user"], args.get("via")
        inviter: int | None = None
        if via == "vanity":
            inviter = -1
        elif via is not None:
            invite = self.emu.invite(via)
            inviter = int(invite.inviter_id) if invite.inviter_id is not None else None
        self.emu.join(user, via, guild=self.scenario.guild_id)
        member_id = self._uid(user["id"] if isinstance(user, dict) else user)
        created = self.emu.world.users[member_id].created_at
        self._record("join", member_id, via=via, inviter=inviter, created=created,
                     joined_at=datetime.now(UTC))

    async def _do_leave(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.leave(args["user"], guild=self.scenario.guild_id)
        self._record("leave", self._uid(args["user"]))

    async def _do_role_add(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.role_add(args["user"], int(args["role"]), guild=self.scenario.guild_id)
        self._record("role_add", self._uid(args["user"]), role=int(args["role"]))

    async def _do_role_remove(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.role_remove(args["user"], int(args["role"]), guild=self.scenario.guild_id)
        self._record("role_remove", self._uid(args["user"]), role=int(args["role"]))

    async def _do_invite_create(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.invite_create(str(args["code"]), args["inviter"], int(args.get("max_uses", 0)),
                               guild=self.scenario.guild_id)
        self._record("invite_create", None, code=str(args["code"]))

    async def _do_invite_delete(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.invite_delete(str(args["code"]))
        self._record("invite_delete", None, code=str(args["code"]))

    async def _do_restart(self, step: Step, args: dict[str, Any]) -> None:
        await self.bot_up.wait()
        self.bot_up.clear()
        restart = self._restart(args["signal"], float(args.get("down_for", 0)))
        self.background.append(asyncio.create_task(restart))
        await asyncio.sleep(0)

    async def _restart(self, sig: str, down_for: float) -> None:
        assert self.bot is not None
        connected = self.emu.open_sessions
        detaches = len(self.emu.gateway.detached_at)
        signalled = time.time()
        await self.bot.stop(sig)
        await self.emu.wait_disconnected(timeout=30, remaining=max(connected - 1, 0))
        # The bot sees the guild until its gateway connection closes (a SIGTERM flushes first, with
        # the connection open): that is when it went down, not when the signal was sent. A SIGKILL
        # ends the process at once: what was sent and not yet read is lost then, though the
        # emulator may notice the closed connection later (campaign long run, seed 163: 0.4 s).
        detached = self.emu.gateway.detached_at[detaches:]
        down_at = signalled if sig == "SIGKILL" else (detached[0] if detached else None)
        self._record("bot_down", at=down_at, signal=sig)
        await asyncio.sleep(down_for)
        # Started while the database is down, the bot waits at its startup probe (PROBE_TIMEOUT_SECONDS).
        identifies = len(self.emu.gateway.identified_at)
        await self._start_bot()
        # The new process sees gateway events from its IDENTIFY on, not from its start: until then
        # Discord queues them for the killed session, which nobody resumes.
        connected = self.emu.gateway.identified_at[identifies]
        self._record("bot_up", at=connected)
        self._record("bot_connected", at=connected)

    async def _do_db_outage(self, step: Step, args: dict[str, Any]) -> None:
        self.background.append(asyncio.create_task(self._outage(float(args["for"]))))
        await asyncio.sleep(0)

    async def _outage(self, seconds: float) -> None:
        assert self.server is not None
        port = self.server.port
        self.db_up.clear()
        self._record("db_down")
        await asyncio.to_thread(self.server.stop)
        await asyncio.sleep(seconds)
        self.server = EmbeddedServer(self.workdir / "dbserver", port=port)
        await asyncio.to_thread(self.server.start)
        self._record("db_up")
        self.db_up.set()

    async def _do_db_faults(self, step: Step, args: dict[str, Any]) -> None:
        assert self.proxy is not None
        self.proxy.plan = FaultPlan(
            delay=float(args.get("delay", 0.0)), cut_probability=float(args.get("cut", 0.0)),
            cut_after_forward_probability=float(args.get("reply_lost", 0.0)), seed=step.index)
        self._record("db_faults", **{k: v for k, v in args.items() if k != "for"})
        self.background.append(asyncio.create_task(self._heal_proxy(float(args["for"]))))
        await asyncio.sleep(0)

    async def _heal_proxy(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.proxy is not None
        self.proxy.heal()
        self._record("db_faults_end")

    async def _do_db_late_request(self, step: Step, args: dict[str, Any]) -> None:
        assert self.proxy is not None
        self.proxy.plan.hold_next = float(args["hold"])
        self._record("db_late_request", hold=args["hold"])

    async def _do_db_write_concern_error(self, step: Step, args: dict[str, Any]) -> None:
        assert self.proxy is not None
        self.proxy.plan.write_concern_error_next += int(args.get("times", 1))
        self.proxy.plan.write_concern_error_applies = bool(args.get("applies", True))
        self._record("db_write_concern_error", times=int(args.get("times", 1)))

    async def _do_rest_fault(self, step: Step, args: dict[str, Any]) -> None:
        method, path = REST_ROUTES[args["route"]]
        self.emu.fail(method, path, status=int(args["status"]), times=int(args.get("times", 1)),
                      retry_after=args.get("retry_after"))
        self._record("rest_fault", route=args["route"], status=int(args["status"]))

    async def _do_gateway_reconnect(self, step: Step, args: dict[str, Any]) -> None:
        """Op 7 to every connection: each bot closes and RESUMEs; buffered dispatches are replayed."""
        await self.bot_up.wait()
        self.bot_up.clear()
        resumed = self.emu.gateway.resumed_count + self.emu.open_sessions
        self.emu.request_reconnect()
        self.background.append(asyncio.create_task(self._resumed(resumed)))
        await asyncio.sleep(0)

    async def _resumed(self, count: int) -> None:
        await self.emu.wait_resumed(timeout=READY_TIMEOUT, count=count)
        self.bot_up.set()

    async def _do_invalid_session(self, step: Step, args: dict[str, Any]) -> None:
        """Op 9 (not resumable): the sessions are gone, events until the bot identifies again are
        lost; READY and GUILD_CREATE follow (discord.py: guild_available)."""
        await self.bot_up.wait()
        self.bot_up.clear()
        sessions = self.emu.open_sessions
        identifies = len(self.emu.identifies) + sessions
        readies = self.emu.gateway.ready_count + sessions
        self._record("session_lost")
        self.emu.invalidate_session(resumable=False)
        self.background.append(asyncio.create_task(self._reidentified(identifies, readies)))
        await asyncio.sleep(0)

    async def _reidentified(self, identifies: int, readies: int) -> None:
        await self.emu.wait_for_identify(timeout=READY_TIMEOUT, count=identifies)
        # From that IDENTIFY on, dispatches reach the new session.
        self._record("session_back", at=self.emu.gateway.identified_at[identifies - 1])
        await self.emu.wait_ready(timeout=READY_TIMEOUT, count=readies)
        self.bot_up.set()

    async def _do_guild_unavailable(self, step: Step, args: dict[str, Any]) -> None:
        self.guild_up.clear()
        self.emu.guild_unavailable(int(args.get("guild", self.scenario.guild_id)))
        self._record("guild_down")

    async def _do_guild_available(self, step: Step, args: dict[str, Any]) -> None:
        self.emu.guild_available(int(args.get("guild", self.scenario.guild_id)))
        self._record("guild_up")
        self.guild_up.set()

    async def _do_member_list_held(self, step: Step, args: dict[str, Any]) -> None:
        """The guild's member list loads slowly (a large guild): from now on a GUILD_CREATE carries
        only the bot and the members in voice, and member requests are answered `for` seconds later."""
        guild = int(args.get("guild", self.scenario.guild_id))
        self.emu.hold_member_list(guild)
        self._record("members_held")
        self.background.append(asyncio.create_task(self._release_member_list(guild, float(args["for"]))))
        await asyncio.sleep(0)

    async def _release_member_list(self, guild: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.emu.hold_member_list(guild, held=False)
        self._record("members_released")

    async def _do_second_process(self, step: Step, args: dict[str, Any]) -> None:
        self.background.append(asyncio.create_task(self._second_process(step, float(args["for"]))))
        await asyncio.sleep(0)

    async def _second_process(self, step: Step, seconds: float) -> None:
        """Same token, database and emulator; its own data folder (outbox) and log. The world does
        not change, so neither does the ground truth."""
        workdir = self.workdir / f"second-{step.index}"
        env = self._bot_env(self.bot_uri, data_dir=workdir / "botdata")
        env.pop("HEALTH_PORT", None)  # two processes cannot listen on one port
        workdir.mkdir(parents=True, exist_ok=True)
        process = BotProcess(env, workdir / "bot.log")
        result = SecondProcessResult(step.index, step.at, seconds, log=process.log_path)
        self.others.append(process)
        self.second_processes.append(result)
        await process.start()
        await asyncio.sleep(seconds)
        result.exit_code = await process.stop("SIGTERM")

    async def _do_command(self, step: Step, args: dict[str, Any]) -> None:
        if not self.guild_up.is_set():
            # Discord answers no interaction of a guild in an outage: the command waits for the
            # guild, in the background (a later step ends the outage; waiting here would block it).
            self.background.append(asyncio.create_task(self._command(step, args)))
            await asyncio.sleep(0)
            return
        await self._command(step, args)

    async def _command(self, step: Step, args: dict[str, Any]) -> None:
        await self.bot_up.wait()
        await self.guild_up.wait()
        placeholders = {LAST_RESET: self.last_backup, LAST_RULE: self.last_rule,
                        LAST_SEASON: self.last_season}
        options = {name: placeholders.get(value, value) if isinstance(value, str) else value
                   for name, value in dict(args.get("options", {})).items()}
        started = time.time()
        manage_server = self._manage_server(args["user"])
        try:
            # `override`: the server re-granted the command to everyone (Server Settings >
            # Integrations), so the client shows it; the bot's own check still applies.
            record = await self.emu.command(args["user"], str(args["name"]), options,
                                            guild=self.scenario.guild_id, timeout=15,
                                            check_permissions=not args.get("override", False))
        except (TimeoutError, PermissionError) as exc:
            self.commands.append(CommandResult(step.index, step.at, self._uid(args["user"]), args["name"],
                                               options, None, [], False, error=str(exc),
                                               manage_server=manage_server))
            return
        final = record.messages[-1] if record.messages else {}
        flags = int(final.get("flags") or 0)
        result = CommandResult(
            step.index, step.at, self._uid(args["user"]), str(args["name"]), options,
            final.get("content") or None, list(final.get("embeds") or []), bool(flags & 64),
            messages=[_message_view(m, self._attachment_head) for m in record.messages], edits=record.edits,
            manage_server=manage_server,
        )
        result.effect = confirmed_effect(result)
        result.backup = confirmed_backup(result)
        if result.effect == "reset" and result.backup:
            self.last_backup = result.backup
        rule = RULE_CHANGED.search(_text(result)) if result.effect == "rule" else None
        if rule and rule.group(2) == "added":
            self.last_rule = rule.group(1)
        season = SEASON_STARTED.search(_text(result)) if result.effect == "season" else None
        if season:
            self.last_season = season.group(1)
        self.commands.append(result)
        self._record_effect(result, started)

    def _attachment_head(self, attachment: dict[str, Any]) -> str:
        return base64.b64encode(self.emu.attachment_bytes(attachment)[:ATTACHMENT_HEAD]).decode()

    def _manage_server(self, user: Any) -> bool:
        """Whether the member has Manage Server (or Administrator) in the guild, as Discord computes it."""
        guild = self.emu.world.guild(self.scenario.guild_id)
        member = guild.members.get(self._uid(user))
        allowed = Perm.MANAGE_GUILD | Perm.ADMINISTRATOR
        return member is not None and bool(guild.permissions(member) & allowed)

    def _record_effect(self, result: CommandResult, at: float) -> None:
        """What a command changed. Discord's permission model first: only a member with Manage
        Server may change counts (the bot's documented rule, whatever a server override shows).
        Then the bot's answer: a bonus, a reset or a restore happened only when the bot confirmed it
        (failed while MongoDB was away, it changed nothing). A confirmation to a member without
        Manage Server changes nothing in the truth: the checker reports it. A staff code changes no
        count."""
        member = result.options.get("member")
        if not result.manage_server:
            return
        if result.effect == "bonus" and member is not None:
            self._record("bonus", self._uid(member), at=at, amount=int(result.options.get("amount", 0)))
        elif result.effect == "erase" and member is not None:
            self._record("erase", self._uid(member), at=at, done=time.time())
        elif result.effect == "reset":
            self._record("reset", self._uid(member) if member is not None else None, at=at,
                         backup=result.backup)
        elif result.effect == "restore":
            self._record("restore", None, at=at, backup=result.backup)


def confirmed_effect(result: CommandResult) -> str | None:
    """"bonus", "reset", "restore", "erase", "staff", "rule", "season" or "export" when the command's
    messages confirm one."""
    words = result.name.split()[0:2]
    text = _text(result)
    # The bot's confirmations: "+3 bonus invites for @x: now ...", "Invites of @x reset: ...",
    # "Backup `ib-...` restored: ...", "Staff code `abc` saved for @x." and "Staff code of @x removed."
    if words == ["invites-admin", "bonus"] and "bonus invite" in text and ": now " in text:
        return "bonus"
    if words == ["invites-admin", "reset"] and "Invites of " in text and " reset" in text:
        return "reset"
    if words == ["invites-admin", "restore"] and RESTORED_BACKUP.search(text):
        return "restore"
    if words == ["data", "erase"] and "Erased the data of " in text:
        return "erase"
    if words == ["invites-admin", "staff"] and STAFF_CHANGED.search(text):
        return "staff"
    if words[0] == "rewards" and RULE_CHANGED.search(text):
        return "rule"
    if words == ["season", "start"] and SEASON_STARTED.search(text):
        return "season"
    if words[0] == "export" and any(str(a.get("filename") or "").endswith(".csv")
                                    for m in result.messages for a in m.get("attachments") or []):
        return "export"
    return None


def confirmed_backup(result: CommandResult) -> str | None:
    """The backup id a confirmed reset answered with, or the one a confirmed restore gave back."""
    pattern = {"reset": RESET_BACKUP, "restore": RESTORED_BACKUP}.get(result.effect or "")
    found = pattern.search(_text(result)) if pattern else None
    return found.group(1) if found else None


def _text(result: CommandResult) -> str:
    """Everything the command's messages say: contents and embed descriptions."""
    return " ".join([*(m.get("content") or "" for m in result.messages),
                     *(str(e.get("description") or "") for m in result.messages for e in m["embeds"])])


def _message_view(message: dict[str, Any],
                  head: Callable[[dict[str, Any]], str] | None = None) -> dict[str, Any]:
    """What a member sees of one message a command produced (attachments by name and size, and
    with `head` their first bytes, base64)."""
    def attachment(a: dict[str, Any]) -> dict[str, Any]:
        view = {"filename": a.get("filename"), "size": a.get("size")}
        return {**view, "head": head(a)} if head is not None else view

    return {
        "content": message.get("content") or None,
        "embeds": list(message.get("embeds") or []),
        "components": list(message.get("components") or []),
        "attachments": [attachment(a) for a in message.get("attachments") or []],
        "flags": int(message.get("flags") or 0),
    }


async def run_scenario(scenario: Scenario, **kwargs: Any) -> tuple[RunResult, ScenarioRunner]:
    runner = ScenarioRunner(scenario, **kwargs)
    result = await runner.run()
    return result, runner

