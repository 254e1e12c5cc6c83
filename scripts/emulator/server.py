"""The :class:`Emulator`: one aiohttp server on 127.0.0.1 with the REST API and the gateway,
plus the Python API tests use to act as Discord users."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from . import payloads
from .constants import Intent, InteractionType, MessageFlag, Op, Perm
from .gateway import Gateway
from .interactions import (
    InteractionRecord,
    build_command_data,
    find_command,
    interaction_payload,
    iter_components,
    new_token,
)
from .latency import NO_LATENCY, Jitter, Latency
from .messages import MessageStore
from .ratelimits import RouteLimits
from .rest import API_PREFIX, Fault, RecordedRequest, RestApi, error_body
from .snowflake import SnowflakeGenerator, snowflake_from_time, utcnow
from .state import Channel, Guild, Invite, Member, User, World
from .util import Waiters

log = logging.getLogger(__name__)

DEFAULT_BOT_ID = snowflake_from_time(datetime(2023, 1, 1, tzinfo=UTC), 1)
DEFAULT_OWNER_ID = snowflake_from_time(datetime(2019, 6, 1, tzinfo=UTC), 2)
UserRef = int | str | dict[str, Any]


@dataclass
class DispatchedEvent:
    """A gateway event the emulator produced; ``delivered``: sessions it was queued for (0 when
    no bot session existed: the change then only shows in the next GUILD_CREATE)."""

    name: str
    data: dict[str, Any]
    delivered: int
    at: datetime = field(default_factory=utcnow)


class Emulator:
    """A local Discord: REST API v10 + gateway on one port, and methods that play the users.

    State-changing methods (``message``, ``voice``, ``join``...) change the state at once and
    dispatch the event to every bot session; while a session is disconnected its events are
    buffered and replayed on RESUME, and a fresh IDENTIFY sees the state in GUILD_CREATE.
    ``latency`` delays REST answers and gateway dispatches (default: none).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_id: int = DEFAULT_BOT_ID,
        bot_name: str = "Tracker",
        owner_id: int = DEFAULT_OWNER_ID,
        heartbeat_interval: float = 41.25,
        privileged_intents: int = Intent.PRIVILEGED,
        session_ttl: float = 600.0,
        buffer_size: int = 100_000,
        echo_bot_messages: bool = True,
        ack_deadline: float | None = None,
        latency: Latency = NO_LATENCY,
    ) -> None:
        self.ids = SnowflakeGenerator()
        self.world = World(User(id=bot_id, username=bot_name, bot=True), self.ids)
        self.owner = User(id=owner_id, username="owner")
        self.token = token
        self.echo_bot_messages = echo_bot_messages
        self.ack_deadline = ack_deadline
        self.store = MessageStore(self.ids, lambda: self.base_url)
        self.jitter = Jitter(latency)
        self.gateway = Gateway(
            self.world,
            token=token,
            heartbeat_interval_ms=int(heartbeat_interval * 1000),
            privileged_intents=privileged_intents,
            session_ttl=session_ttl,
            buffer_size=buffer_size,
            resume_url=lambda: self.gateway_url,
            on_change=self.poke,
            dispatch_delay=self._dispatch_delay,
        )
        self.rest = RestApi(self)
        # Logs tests read.
        self.requests: list[RecordedRequest] = []
        self.responses: list[InteractionRecord] = []
        self.events: list[DispatchedEvent] = []
        self.bot_messages: list[dict[str, Any]] = []
        self.joins: list[dict[str, Any]] = []
        # Internal indexes.
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self._faults: list[Fault] = []
        self.route_limits = RouteLimits()  # per-route buckets (channel history: 5 per second)
        self.history_denied: set[int] = set()  # channels whose history the bot may not read
        self._waiters = Waiters()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        self.rest.install(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        log.info("Discord emulator listening: api %s, gateway %s", self.api_base, self.gateway_url)
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self.gateway.close_all()
        await self._runner.cleanup()
        self._runner = None
        log.info("Discord emulator stopped")

    async def __aenter__(self) -> Emulator:
        return await self.start() if self._runner is None else self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("emulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE`` (setting ``DISCORD_API_BASE``)."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (setting ``DISCORD_GATEWAY_URL``)."""
        return f"ws://{self._host}:{self.port}/gateway"

    # ---- introspection -----------------------------------------------------------------------
    @property
    def bot_id(self) -> int:
        return self.world.bot_user.id

    @property
    def connected(self) -> bool:
        """A bot websocket is open and identified (or resumed)."""
        return self.gateway.connected

    @property
    def open_sessions(self) -> int:
        """How many bot websockets are open and identified (two bot processes: two)."""
        return self.gateway.open_sessions

    @property
    def latency(self) -> Latency:
        return self.jitter.latency

    def set_latency(self, latency: Latency) -> None:
        """Delay REST answers and gateway dispatches from now on (a fresh RNG from its seed)."""
        self.jitter = Jitter(latency)

    def _dispatch_delay(self) -> float:
        return self.jitter.dispatch_s()

    @property
    def identifies(self) -> list[dict[str, Any]]:
        return self.gateway.identifies

    @property
    def resumes(self) -> list[dict[str, Any]]:
        return self.gateway.resumes

    @property
    def replayed(self) -> list[int]:
        """How many buffered dispatches each successful RESUME replayed."""
        return self.gateway.replayed

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.unknown]

    def user_id(self, ref: UserRef) -> int:
        """The real id of a fixture user (aliases resolve to their snowflake)."""
        return self.world.user_id(ref)

    def guild(self, ref: int | None = None) -> Guild:
        """The guild's live state (read it, change it only through the methods)."""
        return self.world.guild(ref)

    def invite(self, code: str) -> Invite:
        return self.world.find_invite(code)[1]

    def attachment_bytes(self, attachment: dict[str, Any] | int | str) -> bytes:
        attachment_id = int(attachment["id"] if isinstance(attachment, dict) else attachment)
        return self.store.attachments[attachment_id].data

    def channel_messages(self, channel: int) -> list[dict[str, Any]]:
        """The channel's history, oldest first (ephemeral messages are not in it)."""
        return list(self.store.history.get(int(channel), []))

    # ---- waiting -----------------------------------------------------------------------------
    def poke(self) -> None:
        self._waiters.poke()

    async def wait_for_identify(self, timeout: float = 10.0, *, count: int = 1) -> dict[str, Any]:
        """Until ``count`` IDENTIFYs were received in total; returns the last one's payload.
        For a restarted bot pass ``count=len(emu.identifies) + 1`` taken before the restart."""
        await self._waiters.wait_for(lambda: len(self.identifies) >= count, timeout, f"IDENTIFY #{count}")
        return self.identifies[-1]

    async def wait_ready(self, timeout: float = 10.0, *, count: int = 1) -> None:
        """Until READY and every GUILD_CREATE of the ``count``-th session were written to the bot
        and it is still connected. discord.py fires ``on_ready`` ~2 s later (guild_ready_timeout);
        use :meth:`wait_commands_synced` or :meth:`wait_for_request` for "startup finished"."""
        await self._waiters.wait_for(
            lambda: self.gateway.ready_count >= count and self.connected, timeout, f"READY #{count}"
        )

    async def wait_resumed(self, timeout: float = 10.0, *, count: int = 1) -> None:
        """Until ``count`` RESUMEs completed (replay and RESUMED written)."""
        await self._waiters.wait_for(
            lambda: self.gateway.resumed_count >= count and self.connected, timeout, f"RESUMED #{count}"
        )

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self._waiters.wait_for(lambda: self.connected, timeout, "a bot connection")

    async def wait_disconnected(self, timeout: float = 10.0, *, remaining: int = 0) -> None:
        """Until at most ``remaining`` bot websockets are open (with two bot processes connected,
        ``remaining=1`` waits for one of them to go)."""
        await self._waiters.wait_for(
            lambda: self.open_sessions <= remaining, timeout, f"bot connections down to {remaining}"
        )

    async def wait_for_request(
        self, method: str, path: str, timeout: float = 10.0, *, since: int = 0
    ) -> RecordedRequest:
        """The first answered request at index >= ``since`` whose method matches and whose path
        (relative to the API base, e.g. ``/guilds/1/invites``) fully matches the regex ``path``."""
        pattern = re.compile(path)

        def find() -> RecordedRequest | None:
            for record in self.requests[since:]:
                if (
                    record.method == method.upper()
                    and record.status is not None
                    and pattern.fullmatch(record.path)
                ):
                    return record
            return None

        return await self._waiters.wait_for(find, timeout, f"{method} {path}")

    async def wait_commands_synced(self, timeout: float = 10.0, *, since: int = 0) -> RecordedRequest:
        """Until the bot synced application commands (global or guild PUT) - the usual last step
        of a bot's startup."""
        return await self.wait_for_request(
            "PUT", r"/applications/\d+(/guilds/\d+)?/commands", timeout, since=since
        )

    async def wait_for_message(
        self,
        channel: int | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
        predicate: Any = None,
    ) -> dict[str, Any]:
        """The first message the bot created (``self.bot_messages[since:]``) in ``channel``."""

        def find() -> dict[str, Any] | None:
            for message in self.bot_messages[since:]:
                if channel is not None and int(message["channel_id"]) != int(channel):
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self._waiters.wait_for(find, timeout, f"a bot message in {channel or 'any channel'}")

    async def drain(self, timeout: float = 5.0) -> None:
        """Until every queued gateway frame has been written to the bot's socket."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(c.flushed() for c in list(self.gateway.connections)))

    # ---- gateway control ------------------------------------------------------------------------
    def disconnect(self, code: int = 4000) -> asyncio.Future[Any]:
        """Close the bot's websocket(s) with ``code``; sessions stay resumable (discord.py resumes
        after 4000). Effective at once; await the result to wait for the close handshake."""
        log.info("gateway: closing bot connections with %s", code)
        return asyncio.gather(*self.gateway.disconnect(code), return_exceptions=True)

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the bot closes and resumes."""
        self.gateway.send_op(Op.RECONNECT)

    def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9; with ``resumable=False`` the sessions are forgotten (the bot re-IDENTIFYs)."""
        self.gateway.invalidate(resumable=resumable)

    # ---- REST fault injection -----------------------------------------------------------------
    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and the path regex with an error
        (e.g. 500, 503, or 429 with ``retry_after`` seconds); ``status=0`` drops the connection
        without an answer (the client sees the server disconnect)."""
        body = error_body(code, message or f"{status}: injected error")
        if status == 429:
            body = {
                "message": "You are being rate limited.",
                "retry_after": retry_after or 0.1,
                "global": False,
            }
            retry_after = retry_after or 0.1
        self._faults.append(Fault(method.upper(), re.compile(path), status, body, times, retry_after))

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.pattern.fullmatch(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ---- dispatch helpers ------------------------------------------------------------------------
    def _dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        delivered = self.gateway.dispatch(event, data, guild_id=guild_id)
        self.events.append(DispatchedEvent(event, copy.deepcopy(data), delivered))
        log.debug("dispatch %s (guild %s) to %d session(s)", event, guild_id, delivered)
        self.poke()
        return data

    def visible(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as the bot may read it over REST (no MESSAGE_CONTENT: blanked)."""
        intents = self.gateway.last_intents
        if intents is None or intents & Intent.MESSAGE_CONTENT:
            return message
        if message.get("author", {}).get("id") == str(self.bot_id):
            return message
        if any(m.get("id") == str(self.bot_id) for m in message.get("mentions", [])):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    def bot_message_created(self, message: dict[str, Any]) -> None:
        self.bot_messages.append(message)
        _, channel = self.world.find_channel(int(message["channel_id"]))
        ephemeral = int(message.get("flags", 0)) & MessageFlag.EPHEMERAL
        if not ephemeral:
            channel.last_message_id = int(message["id"])
            if self.echo_bot_messages:
                self._dispatch("MESSAGE_CREATE", message, channel.guild_id)
        self.poke()

    def message_updated(self, message: dict[str, Any]) -> None:
        if not int(message.get("flags", 0)) & MessageFlag.EPHEMERAL and self.echo_bot_messages:
            self._dispatch("MESSAGE_UPDATE", message, int(message["guild_id"]))
        self.poke()

    def message_deleted(self, message: dict[str, Any]) -> None:
        if not int(message.get("flags", 0)) & MessageFlag.EPHEMERAL:
            data = {"id": message["id"], "channel_id": message["channel_id"], "guild_id": message["guild_id"]}
            self._dispatch("MESSAGE_DELETE", data, int(message["guild_id"]))
        self.poke()

    # ---- guilds ----------------------------------------------------------------------------------
    def add_guild(self, spec: dict[str, Any]) -> int:
        """Load a guild from the fixture format (docs/emulator.md). With a bot connected this is
        the bot being added to the guild: GUILD_CREATE is dispatched. Returns the guild id."""
        guild = self.world.load_guild(spec)
        self._guild_create(guild)
        return guild.id

    def _guild_create(self, guild: Guild) -> None:
        delivered = self.gateway.guild_create(guild)
        self.events.append(DispatchedEvent("GUILD_CREATE", {"id": str(guild.id)}, delivered))
        self.poke()

    def guild_unavailable(self, guild: int | None = None) -> None:
        """A guild outage: GUILD_DELETE with ``unavailable: true`` (discord.py: ``guild_unavailable``).
        Until :meth:`guild_available`, nothing of the guild is dispatched (state changes still
        happen and show in the GUILD_CREATE that ends the outage) and a new session's READY lists
        it as unavailable without a GUILD_CREATE."""
        g = self.world.guild(guild)
        if g.unavailable:
            raise ValueError(f"guild {g.id} is already unavailable")
        self._dispatch("GUILD_DELETE", {"id": str(g.id), "unavailable": True}, g.id)
        g.unavailable = True

    def guild_available(self, guild: int | None = None) -> None:
        """The outage ends: GUILD_CREATE with the guild's current state (``unavailable: false``;
        discord.py: ``guild_available``)."""
        g = self.world.guild(guild)
        if not g.unavailable:
            raise ValueError(f"guild {g.id} is not unavailable")
        g.unavailable = False
        self._guild_create(g)

    def remove_guild(self, guild: int) -> None:
        """The bot is removed from the guild: GUILD_DELETE."""
        g = self.world.guild(guild)
        del self.world.guilds[g.id]
        self._dispatch("GUILD_DELETE", {"id": str(g.id)}, g.id)

    def set_features(self, guild: int | None, features: list[str], *, widget: bool | None = None) -> None:
        """Set the guild's features besides the vanity ones (e.g. ``["DISCOVERABLE"]``: listed in
        Server Discovery) and, when given, whether the widget is enabled: GUILD_UPDATE."""
        g = self.world.guild(guild)
        g.extra_features = list(features)
        if widget is not None:
            g.widget_enabled = widget
        self._dispatch("GUILD_UPDATE", payloads.guild_base(g), g.id)

    def set_invites_forbidden(self, guild: int | None, forbidden: bool = True) -> None:
        """Take Manage Guild away from the bot (or give it back): ``GET /guilds/{id}/invites`` and
        ``/vanity-url`` answer 403 code 50013, and the bot's role loses the permission
        (GUILD_ROLE_UPDATE), so ``guild.me.guild_permissions.manage_guild`` agrees."""
        g = self.world.guild(guild)
        g.invites_forbidden = forbidden
        role = g.roles[g.bot_role_id]
        role.permissions = (
            role.permissions & ~Perm.MANAGE_GUILD if forbidden else role.permissions | Perm.MANAGE_GUILD
        )
        self._dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(g.id), "role": payloads.role(role)}, g.id)

    def update_role(self, guild: int | None, role: int, **changes: Any) -> None:
        """An admin edits a role (``position``, ``permissions``, ``managed``, ``name``...):
        GUILD_ROLE_UPDATE. The REST role routes follow the new hierarchy at once."""
        g = self.world.guild(guild)
        target = g.roles[role]
        for name, value in changes.items():
            if not hasattr(target, name):
                raise ValueError(f"roles have no {name!r}")
            setattr(target, name, value)
        self._dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(g.id), "role": payloads.role(target)}, g.id)

    def hold_member_list(self, guild: int | None, held: bool = True) -> None:
        """A member list still loading (a large guild): while held, GUILD_CREATE carries only the
        bot and the members in voice (``member_count`` stays the full count, so discord.py asks
        for the rest with op 8) and op 8 requests for the guild get no answer. ``held=False``
        answers the requests held so far with their GUILD_MEMBERS_CHUNKs."""
        g = self.world.guild(guild)
        g.member_list_held = held
        if not held:
            self.gateway.release_member_requests(g.id)
            self.poke()

    def set_vanity(self, guild: int | None, code: str | None, uses: int = 0) -> None:
        g = self.world.guild(guild)
        g.vanity_code, g.vanity_uses = code, uses if code else 0
        self._dispatch("GUILD_UPDATE", payloads.guild_base(g), g.id)

    # ---- users acting --------------------------------------------------------------------------------
    def _member_guild(self, user_id: int, guild: int | None) -> Guild:
        if guild is not None:
            return self.world.guild(guild)
        guilds = [g for g in self.world.guilds.values() if user_id in g.members]
        if len(guilds) == 1:
            return guilds[0]
        if not guilds:
            raise ValueError(f"user {user_id} is not a member of any guild")
        raise ValueError(f"user {user_id} is in {len(guilds)} guilds: say which one (guild=...)")

    def _member(self, guild: Guild, user: UserRef) -> Member:
        user_id = self.world.user_id(user)
        member = guild.members.get(user_id)
        if member is None:
            raise ValueError(f"user {user} is not a member of guild {guild.id}")
        return member

    def message(
        self, user: UserRef, channel: int, content: str = "", *, mentions: list[UserRef] | None = None
    ) -> dict[str, Any]:
        """``user`` posts in ``channel``: MESSAGE_CREATE. The bot lacks MESSAGE_CONTENT, so the
        dispatched content is empty unless the bot is mentioned (as on Discord)."""
        guild, ch = self.world.find_channel(channel)
        if not ch.accepts_messages:
            raise ValueError(f"channel {channel} ({ch.type.name}) has no messages")
        member = self._member(guild, user)
        mentioned = []
        for ref in mentions or []:
            target = self.world.user(ref)
            entry = payloads.user(target)
            if target.id in guild.members:
                entry["member"] = payloads.member(guild.members[target.id], with_user=False)
            mentioned.append(entry)
        message = self.store.create(
            channel=ch,
            author=member.user,
            author_member=member,
            body={"content": content},
            files=[],
            mentions=mentioned,
        )
        ch.last_message_id = int(message["id"])
        return self._dispatch("MESSAGE_CREATE", message, guild.id)

    def voice(
        self,
        user: UserRef,
        channel: int | None,
        camera: bool = False,
        stream: bool = False,
        self_deaf: bool = False,
        *,
        self_mute: bool = False,
        guild: int | None = None,
    ) -> dict[str, Any]:
        """Join/move to a voice channel, change camera/stream/deaf flags, or leave (``channel``
        None): VOICE_STATE_UPDATE with the full state, as Discord sends it."""
        user_id = self.world.user_id(user)
        if channel is not None:
            g, _ = self.world.find_channel(channel)
        elif guild is not None:
            g = self.world.guild(guild)
        else:
            in_voice = [g for g in self.world.guilds.values() if user_id in g.voice_states]
            if not in_voice:
                raise ValueError(f"user {user} is not in a voice channel")
            g = in_voice[0]
        self._member(g, user_id)
        state = self.world.set_voice(
            g,
            user_id,
            int(channel) if channel is not None else None,
            camera=camera,
            stream=stream,
            self_deaf=self_deaf,
            self_mute=self_mute,
        )
        return self._dispatch("VOICE_STATE_UPDATE", payloads.voice_state(g, state, user_id), g.id)

    def join(self, user: UserRef, via: str | None = None, *, guild: int | None = None) -> dict[str, Any]:
        """``user`` (a fixture member dict, or the id of a known user to rejoin) joins through
        invite ``via`` (a code), ``"vanity"``, or nothing. The invite's uses go up by one; an
        invite reaching ``max_uses`` is deleted after the member add (INVITE_DELETE follows
        GUILD_MEMBER_ADD, as on Discord)."""
        g = self.world.guild(guild)
        spec = dict(user) if isinstance(user, dict) else {"id": user}
        invite: Invite | None = None
        if via == "vanity":
            if not g.vanity_code:
                raise ValueError(f"guild {g.id} has no vanity URL")
        elif via is not None:
            invite = g.invites.get(via)
            if invite is None or invite.expired():
                raise ValueError(f"guild {g.id} has no usable invite {via!r}")
        admin_role = g.admin_role_id
        member = self.world.add_member(g, spec)
        if g.admin_role_id is not None and g.admin_role_id != admin_role:
            role = payloads.role(g.roles[g.admin_role_id])
            self._dispatch("GUILD_ROLE_CREATE", {"guild_id": str(g.id), "role": role}, g.id)
        if invite is not None:
            invite.uses += 1
        elif via == "vanity":
            g.vanity_uses += 1
        self.joins.append({"guild_id": g.id, "user_id": member.id, "via": via})
        data = self._dispatch("GUILD_MEMBER_ADD", {**payloads.member(member), "guild_id": str(g.id)}, g.id)
        if invite is not None and invite.max_uses and invite.uses >= invite.max_uses:
            del g.invites[invite.code]
            self._dispatch("INVITE_DELETE", payloads.invite_delete(g, invite), g.id)
        return data

    def leave(self, user: UserRef, *, guild: int | None = None) -> dict[str, Any]:
        """The member leaves (or is kicked): a VOICE_STATE_UPDATE to no channel first if they were
        in voice, then GUILD_MEMBER_REMOVE."""
        user_id = self.world.user_id(user)
        g = self._member_guild(user_id, guild)
        member = self._member(g, user_id)
        if user_id in g.voice_states:
            self.voice(user_id, None, guild=g.id)
        del g.members[user_id]
        return self._dispatch(
            "GUILD_MEMBER_REMOVE", {"guild_id": str(g.id), "user": payloads.user(member.user)}, g.id
        )

    def role_add(self, user: UserRef, role: int, *, guild: int | None = None) -> dict[str, Any] | None:
        """Give a role: GUILD_MEMBER_UPDATE (None, and no event, if the member already had it)."""
        user_id = self.world.user_id(user)
        return self.change_roles(self._member_guild(user_id, guild), user_id, int(role), add=True)

    def role_remove(self, user: UserRef, role: int, *, guild: int | None = None) -> dict[str, Any] | None:
        user_id = self.world.user_id(user)
        return self.change_roles(self._member_guild(user_id, guild), user_id, int(role), add=False)

    def change_roles(self, guild: Guild, user_id: int, role_id: int, *, add: bool) -> dict[str, Any] | None:
        if role_id not in guild.roles or role_id == guild.id:
            raise ValueError(f"guild {guild.id} has no assignable role {role_id}")
        member = self._member(guild, user_id)
        if (role_id in member.roles) == add:
            return None
        if add:
            member.roles.append(role_id)
        else:
            member.roles.remove(role_id)
        return self._dispatch(
            "GUILD_MEMBER_UPDATE", {**payloads.member(member), "guild_id": str(guild.id)}, guild.id
        )

    def invite_create(
        self,
        code: str | None,
        inviter: UserRef | None,
        max_uses: int = 0,
        *,
        max_age: int = 0,
        temporary: bool = False,
        channel: int | None = None,
        guild: int | None = None,
    ) -> dict[str, Any]:
        """A user creates an invite (uses 0): INVITE_CREATE. ``code`` None: a random code."""
        g = self.world.find_channel(channel)[0] if channel is not None else self.world.guild(guild)
        _, data = self.create_invite(
            g,
            code=code,
            inviter=inviter,
            channel=channel,
            max_uses=max_uses,
            max_age=max_age,
            temporary=temporary,
        )
        return data

    def create_invite(
        self,
        guild: Guild,
        *,
        code: str | None,
        inviter: UserRef | None,
        channel: int | None,
        max_uses: int = 0,
        max_age: int = 0,
        temporary: bool = False,
    ) -> tuple[Invite, dict[str, Any]]:
        if code is None:
            alphabet = string.ascii_letters + string.digits
            code = "".join(secrets.choice(alphabet) for _ in range(8))
        invite = self.world.add_invite(
            guild,
            code=code,
            inviter=inviter,
            channel=channel,
            max_uses=max_uses,
            max_age=max_age,
            temporary=temporary,
        )
        guild.audit_log.append(payloads.invite_audit_entry(
            self.ids.next(), invite.inviter_id, invite, payloads.INVITE_CREATE_ACTION))
        data = self._dispatch(
            "INVITE_CREATE", payloads.invite_create(guild, invite, self.world.users), guild.id
        )
        return invite, data

    def invite_delete(self, code: str) -> dict[str, Any]:
        """The invite is revoked: INVITE_DELETE."""
        g, invite = self.world.find_invite(code)
        del g.invites[code]
        g.audit_log.append(payloads.invite_audit_entry(
            self.ids.next(), invite.inviter_id, invite, payloads.INVITE_DELETE_ACTION))
        return self._dispatch("INVITE_DELETE", payloads.invite_delete(g, invite), g.id)

    # ---- interactions -----------------------------------------------------------------------------------
    def _place(self, channel: int | None, guild: int | None) -> tuple[Guild, Channel]:
        if channel is not None:
            return self.world.find_channel(channel)
        g = self.world.guild(guild)
        return g, g.default_text_channel()

    def _new_interaction(
        self,
        *,
        interaction_type: InteractionType,
        name: str,
        member: Member,
        guild: Guild,
        channel: Channel,
        data: dict[str, Any],
        locale: str,
        message: dict[str, Any] | None = None,
    ) -> InteractionRecord:
        if not self.gateway.live_sessions():
            raise RuntimeError("no bot session: the bot has not identified with the emulator yet")
        interaction_id = self.ids.next()
        token = new_token()
        payload = interaction_payload(
            world=self.world,
            interaction_id=interaction_id,
            interaction_type=interaction_type,
            token=token,
            guild=guild,
            channel=channel,
            member=member,
            data=data,
            locale=locale,
            message=message,
        )
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=interaction_type,
            name=name,
            user_id=member.id,
            guild_id=guild.id,
            channel_id=channel.id,
            payload=payload,
        )
        self.interactions_by_token[token] = record
        self.responses.append(record)
        self._dispatch("INTERACTION_CREATE", payload, guild.id)
        return record

    async def _await_response(
        self, record: InteractionRecord, timeout: float, wait_final: bool
    ) -> InteractionRecord:
        since = len(self.requests)
        try:
            await self._waiters.wait_for(
                lambda: record.complete(wait_final), timeout, f"the bot's answer to {record.name!r}"
            )
        except TimeoutError as exc:
            seen = ", ".join(repr(r) for r in self.requests[since:]) or "none"
            state = (
                "no callback"
                if record.callback_type is None
                else f"callback {record.callback_type!r}, no edit"
            )
            raise TimeoutError(f"{exc} ({state}; REST calls meanwhile: {seen})") from None
        return record

    async def command(
        self,
        user: UserRef,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        channel: int | None = None,
        guild: int | None = None,
        timeout: float = 10.0,
        wait_final: bool = True,
        check_permissions: bool = True,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """``user`` runs slash command ``name`` ("stats", "invites staff add") with leaf
        ``options`` ({"member": 101, "days": 7}); user/role/channel values are ids or aliases.

        Waits for the bot's callback; after a defer (``wait_final``) also for the follow-up or
        the edit of the original response. With the command synced, options are typed and
        checked from the synced definition, and ``default_member_permissions`` is enforced
        like the Discord client does (``check_permissions``)."""
        g, ch = self._place(channel, guild)
        member = self._member(g, user)
        parts = name.split()
        definition, scope = find_command(self.commands, g.id, parts[0] if parts else "")
        if definition is None:
            log.warning("/%s is not synced: option types are guessed from the values", name)
        elif check_permissions:
            required = definition.get("default_member_permissions")
            perms = g.permissions(member)
            if (
                required is not None
                and not perms & Perm.ADMINISTRATOR
                and (int(required) == 0 or perms & int(required) != int(required))
            ):
                raise PermissionError(
                    f"member {member.id} lacks permissions {required} required by /{parts[0]}"
                )
        command_id = int(definition["id"]) if definition else self.ids.next()
        data = build_command_data(
            world=self.world,
            guild=g,
            full_name=name,
            options=dict(options or {}),
            definition=definition,
            scope=scope,
            command_id=command_id,
        )
        record = self._new_interaction(
            interaction_type=InteractionType.APPLICATION_COMMAND,
            name=" ".join(parts),
            member=member,
            guild=g,
            channel=ch,
            data=data,
            locale=locale,
        )
        return await self._await_response(record, timeout, wait_final)

    async def autocomplete(
        self,
        user: UserRef,
        name: str,
        focused: str,
        options: dict[str, Any] | None = None,
        *,
        channel: int | None = None,
        guild: int | None = None,
        timeout: float = 10.0,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """``user`` types into option ``focused`` of slash command ``name`` (its partial text in
        ``options[focused]``, other options as already chosen): an APPLICATION_COMMAND_AUTOCOMPLETE
        interaction (type 4). The bot answers with type 8; its suggestions are ``record.choices``
        (Discord refuses more than 25, or a name or value over 100 characters)."""
        g, ch = self._place(channel, guild)
        member = self._member(g, user)
        parts = name.split()
        definition, scope = find_command(self.commands, g.id, parts[0] if parts else "")
        if definition is None:
            raise ValueError(f"/{name} is not synced: nothing to autocomplete")
        data = build_command_data(
            world=self.world,
            guild=g,
            full_name=name,
            options=dict(options or {}),
            definition=definition,
            scope=scope,
            command_id=int(definition["id"]),
            focused=focused,
        )
        record = self._new_interaction(
            interaction_type=InteractionType.AUTOCOMPLETE,
            name=" ".join(parts),
            member=member,
            guild=g,
            channel=ch,
            data=data,
            locale=locale,
        )
        return await self._await_response(record, timeout, wait_final=True)

    async def click(
        self,
        target: InteractionRecord | dict[str, Any] | int,
        custom_id: str,
        user: UserRef,
        *,
        values: list[str] | None = None,
        timeout: float = 10.0,
        wait_final: bool = True,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """``user`` clicks the button (or picks ``values`` in the select menu) ``custom_id`` on a
        message: an InteractionRecord (its messages are searched, newest first), a message dict
        or a message id. Returns the record of the component interaction."""
        message = self._message_with(target, custom_id)
        component = next(c for c in iter_components(message) if c.get("custom_id") == custom_id)
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": int(component["type"])}
        if int(component["type"]) in (3, 5, 6, 7, 8):
            data["values"] = [str(v) for v in values or []]
        g, ch = self.world.find_channel(int(message["channel_id"]))
        member = self._member(g, user)
        record = self._new_interaction(
            interaction_type=InteractionType.MESSAGE_COMPONENT,
            name=custom_id,
            member=member,
            guild=g,
            channel=ch,
            data=data,
            locale=locale,
            message=message,
        )
        return await self._await_response(record, timeout, wait_final)

    def _message_with(
        self, target: InteractionRecord | dict[str, Any] | int, custom_id: str
    ) -> dict[str, Any]:
        if isinstance(target, InteractionRecord):
            candidates = list(reversed(target.messages))
        else:
            message_id = int(target["id"] if isinstance(target, dict) else target)
            stored = self.store.by_id.get(message_id)
            if stored is None:
                raise ValueError(f"unknown message {message_id}")
            candidates = [stored]
        for message in candidates:
            if any(c.get("custom_id") == custom_id for c in iter_components(message)):
                return message
        available = [c["custom_id"] for m in candidates for c in iter_components(m) if "custom_id" in c]
        raise ValueError(f"no component {custom_id!r} on the message (custom ids: {available})")


__all__ = ["DEFAULT_BOT_ID", "DispatchedEvent", "Emulator"]
