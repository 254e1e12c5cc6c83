"""The gateway: websocket sessions, sequence numbers, the resume buffer and intent filtering.

Frames are uncompressed JSON text (discord.py accepts them although it asks for zlib-stream).
Every dispatch gets the next ``s`` of each session it goes to and is kept in that session's
buffer, connected or not, so a RESUME replays exactly what the client has not seen. Each session
gets every dispatch it may see: two processes with the same token both receive everything, as on
Discord. Dispatches may be delayed (see ``latency.py``), never reordered within a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import WSMsgType, web

from . import payloads
from .constants import CloseCode, Intent, Op
from .util import dumps

if TYPE_CHECKING:
    from .state import Guild, World

log = logging.getLogger(__name__)

# Which intent an event needs (events not listed go to every session).
EVENT_INTENTS: dict[str, int] = {
    "GUILD_CREATE": Intent.GUILDS,
    "GUILD_UPDATE": Intent.GUILDS,
    "GUILD_DELETE": Intent.GUILDS,
    "GUILD_ROLE_CREATE": Intent.GUILDS,
    "GUILD_ROLE_UPDATE": Intent.GUILDS,
    "GUILD_ROLE_DELETE": Intent.GUILDS,
    "CHANNEL_CREATE": Intent.GUILDS,
    "CHANNEL_UPDATE": Intent.GUILDS,
    "CHANNEL_DELETE": Intent.GUILDS,
    "GUILD_MEMBER_ADD": Intent.GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": Intent.GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": Intent.GUILD_MEMBERS,
    "INVITE_CREATE": Intent.GUILD_INVITES,
    "INVITE_DELETE": Intent.GUILD_INVITES,
    "VOICE_STATE_UPDATE": Intent.GUILD_VOICE_STATES,
    "MESSAGE_CREATE": Intent.GUILD_MESSAGES,
    "MESSAGE_UPDATE": Intent.GUILD_MESSAGES,
    "MESSAGE_DELETE": Intent.GUILD_MESSAGES,
}
_CONTENT_FIELDS = {"content": "", "embeds": [], "attachments": [], "components": []}


class _Close:
    def __init__(self, code: int) -> None:
        self.code = code


class _Frame(NamedTuple):
    text: str
    due: float  # loop time before which it must not be written (0: at once)


def _no_delay() -> float:
    return 0.0


class Connection:
    """One websocket. Outgoing frames go through a queue so they are written in order."""

    def __init__(self, ws: web.WebSocketResponse, path: str) -> None:
        self.ws = ws
        self.path = path
        self.session: Session | None = None
        self.closing = False
        self._closing_now = False
        self._queue: asyncio.Queue[_Frame | _Close | Callable[[], None]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name=f"emulator-gateway-writer-{id(self):x}")

    def send(self, frame: str, delay: float = 0.0) -> None:
        """Queue ``frame``; with ``delay`` it is written that many seconds from now, or later if an
        earlier frame is still waiting (the queue keeps the order)."""
        if not self.closing:
            due = asyncio.get_running_loop().time() + delay if delay > 0 else 0.0
            self._queue.put_nowait(_Frame(frame, due))

    def after_sent(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once every frame queued so far has been written."""
        self._queue.put_nowait(callback)

    def close(self, code: int) -> asyncio.Task[None]:
        if not self.closing:
            self.closing = True
            self._queue.put_nowait(_Close(code))
        return self._writer

    async def flushed(self) -> None:
        """Return once every frame queued so far was written (or the connection ended)."""
        if self.closing or self._writer.done():
            return
        done = asyncio.Event()
        self.after_sent(done.set)
        waiter = asyncio.ensure_future(done.wait())
        try:
            await asyncio.wait({waiter, self._writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Close):
                    self._closing_now = True
                    await self.ws.close(code=item.code)
                    return
                if callable(item):
                    item()
                    continue
                if item.due:
                    wait = item.due - asyncio.get_running_loop().time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await self.ws.send_str(item.text)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway write failed (%s); dropping the connection", exc)
                self.closing = True
                return

    async def shutdown(self) -> None:
        """Stop the writer: let a server-side close handshake finish, drop unsent frames."""
        self.closing = True
        if self._closing_now:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=1)
        if not self._writer.done():
            self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


DEFAULT_LARGE_THRESHOLD = 50


def large_threshold(value: Any) -> int:
    """IDENTIFY's large_threshold, held to Discord's range (50 to 250)."""
    return min(max(value, 50), 250) if isinstance(value, int) else DEFAULT_LARGE_THRESHOLD


@dataclass
class Session:
    id: str
    intents: int
    token: str
    shard: tuple[int, int] | None
    buffer_size: int
    seq: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=deque)
    connection: Connection | None = None
    disconnected_at: float | None = None
    invalid: bool = False
    delay: Callable[[], float] = _no_delay  # seconds before a dispatch is written
    # IDENTIFY's large_threshold (50 to 250, Discord's default 50; discord.py sends 250): a guild
    # with at least this many members is large, and its GUILD_CREATE leaves the offline members out
    large_threshold: int = DEFAULT_LARGE_THRESHOLD

    def handles(self, guild_id: int | None) -> bool:
        if guild_id is None or self.shard is None:
            return True
        shard_id, shard_count = self.shard
        return (guild_id >> 22) % shard_count == shard_id

    def push(self, event: str, data: dict[str, Any], *, buffer: bool = True) -> None:
        self.seq += 1
        frame = dumps({"op": Op.DISPATCH, "t": event, "s": self.seq, "d": data})
        if buffer:
            self.buffer.append((self.seq, frame))
            while len(self.buffer) > self.buffer_size:
                self.buffer.popleft()
        if self.connection is not None:
            self.connection.send(frame, self.delay())

    def can_replay_from(self, seq: int) -> bool:
        if seq > self.seq:
            return False
        if seq == self.seq:
            return True
        return bool(self.buffer) and self.buffer[0][0] <= seq + 1


class Gateway:
    """Websocket endpoint plus session bookkeeping; the Emulator calls :meth:`dispatch`."""

    def __init__(
        self,
        world: World,
        *,
        token: str | None,
        heartbeat_interval_ms: int,
        privileged_intents: int,
        session_ttl: float,
        buffer_size: int,
        resume_url: Callable[[], str],
        on_change: Callable[[], None],
        dispatch_delay: Callable[[], float] = _no_delay,
    ) -> None:
        self.world = world
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.privileged_intents = privileged_intents
        self.session_ttl = session_ttl
        self.buffer_size = buffer_size
        self._resume_url = resume_url
        self._on_change = on_change
        self._dispatch_delay = dispatch_delay
        self.sessions: dict[str, Session] = {}
        self.held_member_requests: list[tuple[Session, dict[str, Any]]] = []
        self.member_chunks_sent = 0
        self.connections: set[Connection] = set()
        # Logs for tests.
        self.identifies: list[dict[str, Any]] = []
        self.identified_at: list[float] = []  # wall-clock time of each IDENTIFY (time.time())
        self.detached_at: list[float] = []  # wall-clock time a session lost its connection
        self.resumes: list[dict[str, Any]] = []
        self.replayed: list[int] = []  # frames replayed by each successful RESUME
        self.ready_count = 0
        self.resumed_count = 0
        self.heartbeats = 0
        self.last_intents: int | None = None

    # ---- state --------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.open_sessions > 0

    @property
    def open_sessions(self) -> int:
        """Sessions with an open websocket (one per bot process connected)."""
        return sum(1 for s in self.sessions.values() if s.connection is not None and not s.connection.closing)

    def live_sessions(self) -> list[Session]:
        now = time.monotonic()
        for session in list(self.sessions.values()):
            expired = session.disconnected_at is not None and now - session.disconnected_at > self.session_ttl
            if session.invalid or expired:
                del self.sessions[session.id]
        return list(self.sessions.values())

    # ---- dispatch -----------------------------------------------------------------------
    def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None = None) -> int:
        """Send ``event`` to every live session that may see it. Returns how many got it (none
        while its guild is unavailable: Discord sends nothing for a guild in an outage)."""
        guild = self.world.guilds.get(guild_id) if guild_id is not None else None
        if guild is not None and guild.unavailable:
            return 0
        needed = EVENT_INTENTS.get(event, 0)
        delivered = 0
        for session in self.live_sessions():
            if needed and not session.intents & needed:
                continue
            if not session.handles(guild_id):
                continue
            session.push(event, self._for_session(session, event, data))
            delivered += 1
        return delivered

    def guild_create(self, guild: Guild) -> int:
        """Push GUILD_CREATE with the guild's current state to every live session that handles it
        (the guild was added, or is available again). Returns how many sessions got it."""
        delivered = 0
        for session in self.live_sessions():
            if session.intents & Intent.GUILDS and session.handles(guild.id):
                session.push("GUILD_CREATE", self._guild_create(session, guild))
                delivered += 1
        return delivered

    def _guild_create(self, session: Session, guild: Guild) -> dict[str, Any]:
        return payloads.guild_create(
            guild,
            # no presences here: in a large guild every member but the bot and those in voice
            # counts as offline, as for a bot without the GUILD_PRESENCES intent
            members=bool(session.intents & Intent.GUILD_MEMBERS) and not guild.member_list_held
            and len(guild.members) < session.large_threshold,
            large_threshold=session.large_threshold,
            voice_states=bool(session.intents & Intent.GUILD_VOICE_STATES),
            bot_id=self.world.bot_user.id,
        )

    def _for_session(self, session: Session, event: str, data: dict[str, Any]) -> dict[str, Any]:
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not session.intents & Intent.MESSAGE_CONTENT:
            bot_id = str(self.world.bot_user.id)
            mentioned = any(m.get("id") == bot_id for m in data.get("mentions", []))
            if data.get("author", {}).get("id") != bot_id and not mentioned:
                return {**data, **_CONTENT_FIELDS}
        return data

    # ---- control ------------------------------------------------------------------------
    def disconnect(self, code: int) -> list[asyncio.Task[None]]:
        """Close every connection from the server side; sessions stay resumable."""
        tasks = []
        for session in self.sessions.values():
            if session.connection is not None:
                tasks.append(session.connection.close(code))
                self._detach(session)
        for connection in list(self.connections):
            if not connection.closing:
                tasks.append(connection.close(code))
        self._on_change()
        return tasks

    def send_op(self, op: int, data: Any = None) -> None:
        for connection in self.connections:
            connection.send(dumps({"op": op, "d": data}))

    def invalidate(self, *, resumable: bool) -> None:
        """Send op 9 to every connection; a non-resumable invalidation forgets the sessions."""
        self.send_op(Op.INVALID_SESSION, resumable)
        if not resumable:
            for session in self.sessions.values():
                session.invalid = True
                self._detach(session)
            self.sessions.clear()
        self._on_change()

    async def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close(CloseCode.UNKNOWN_ERROR)
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(connection.close(1001)), timeout=2)
            await connection.shutdown()
        self.connections.clear()

    def _detach(self, session: Session) -> None:
        if session.connection is not None:
            session.connection.session = None
        session.connection = None
        session.disconnected_at = time.monotonic()
        self.detached_at.append(time.time())

    # ---- websocket handler ----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        connection = Connection(ws, request.path_qs)
        self.connections.add(connection)
        log.info("gateway: connection opened (%s)", request.path_qs)
        connection.send(dumps({"op": Op.HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._receive(connection, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    log.warning("gateway: binary frame ignored (only JSON text is supported)")
                    connection.close(CloseCode.DECODE_ERROR)
                elif msg.type is WSMsgType.ERROR:
                    log.debug("gateway: websocket error %s", ws.exception())
        finally:
            self.connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                self._detach(session)
                if not connection._closing_now and ws.close_code in (1000, 1001):
                    # A client closing with 1000/1001 ends its session on Discord.
                    session.invalid = True
            await connection.shutdown()
            log.info("gateway: connection closed (code %s)", ws.close_code)
            self._on_change()
        return ws

    def _receive(self, connection: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            op = frame["op"]
            data = frame.get("d")
        except (ValueError, KeyError, TypeError):
            log.warning("gateway: undecodable frame %.200s", text)
            connection.close(CloseCode.DECODE_ERROR)
            return
        if op == Op.HEARTBEAT:
            self.heartbeats += 1
            connection.send(dumps({"op": Op.HEARTBEAT_ACK}))
        elif op == Op.IDENTIFY:
            self._identify(connection, data)
        elif op == Op.RESUME:
            self._resume(connection, data)
        elif connection.session is None:
            log.warning("gateway: op %s before IDENTIFY", op)
            connection.close(CloseCode.NOT_AUTHENTICATED)
        elif op == Op.REQUEST_GUILD_MEMBERS:
            self._request_members(connection.session, data)
        elif op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE):
            log.debug("gateway: op %s from the bot ignored", op)
        else:
            log.warning("gateway: unknown op %s", op)
            connection.close(CloseCode.UNKNOWN_OPCODE)
        self._on_change()

    def _token_ok(self, connection: Connection, token: Any) -> bool:
        if self.token is not None and token != self.token:
            log.warning("gateway: wrong token, closing with 4004")
            connection.close(CloseCode.AUTHENTICATION_FAILED)
            return False
        return True

    def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            connection.close(CloseCode.ALREADY_AUTHENTICATED)
            return
        if not self._token_ok(connection, data.get("token")):
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            connection.close(CloseCode.INVALID_INTENTS)
            return
        if intents & Intent.PRIVILEGED & ~self.privileged_intents:
            log.warning("gateway: privileged intents %s not enabled, closing with 4014", intents)
            connection.close(CloseCode.DISALLOWED_INTENTS)
            return
        shard = data.get("shard")
        session = Session(
            id=secrets.token_hex(16),
            intents=intents,
            token=str(data.get("token")),
            shard=(int(shard[0]), int(shard[1])) if shard else None,
            buffer_size=self.buffer_size,
            delay=self._dispatch_delay,
            large_threshold=large_threshold(data.get("large_threshold")),
        )
        self.identifies.append(data)
        self.identified_at.append(time.time())
        self.last_intents = intents
        self.sessions[session.id] = session
        self._attach(session, connection)
        guilds = [g for g in self.world.guilds.values() if session.handles(g.id)]
        bot = self.world.bot_user
        ready: dict[str, Any] = {
            "v": 10,
            "user": payloads.bot_user(bot),
            "user_settings": {},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self._resume_url(),
            "application": {"id": str(bot.id), "flags": payloads.APPLICATION_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "_trace": ['["discord-emulator",{"micros":0}]'],
        }
        if session.shard is not None:
            ready["shard"] = list(session.shard)
        session.push("READY", ready)
        # A guild in an outage stays unavailable in READY; its GUILD_CREATE comes when it is back.
        available = [g for g in guilds if not g.unavailable]
        for guild in available:
            session.push("GUILD_CREATE", self._guild_create(session, guild))
        log.info("gateway: IDENTIFY -> session %s, READY + %d GUILD_CREATE", session.id, len(available))

        def sent() -> None:
            self.ready_count += 1
            self._on_change()

        connection.after_sent(sent)

    def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            connection.close(CloseCode.ALREADY_AUTHENTICATED)
            return
        if not self._token_ok(connection, data.get("token")):
            return
        self.resumes.append(data)
        session = {s.id: s for s in self.live_sessions()}.get(str(data.get("session_id")))
        seq = data.get("seq") or 0
        if session is None or not session.can_replay_from(int(seq)):
            log.info("gateway: RESUME of unknown or expired session %s -> op 9", data.get("session_id"))
            connection.send(dumps({"op": Op.INVALID_SESSION, "d": False}))
            return
        if session.connection is not None and session.connection is not connection:
            session.connection.close(CloseCode.UNKNOWN_ERROR)
        self._attach(session, connection)
        replay = [frame for s, frame in session.buffer if s > seq]
        self.replayed.append(len(replay))
        for frame in replay:
            connection.send(frame, session.delay())
        session.push("RESUMED", {"_trace": ['["discord-emulator",{"micros":0}]']}, buffer=False)
        log.info("gateway: RESUME session %s from seq %s, replayed %d", session.id, seq, len(replay))

        def sent() -> None:
            self.resumed_count += 1
            self._on_change()

        connection.after_sent(sent)

    def _attach(self, session: Session, connection: Connection) -> None:
        session.connection = connection
        session.disconnected_at = None
        connection.session = session

    def release_member_requests(self, guild_id: int) -> None:
        """Answer the op 8 requests for ``guild_id`` held while its member list was held."""
        held, self.held_member_requests = self.held_member_requests, []
        live = set(map(id, self.live_sessions()))
        for session, data in held:
            if int(data.get("guild_id", 0)) != guild_id:
                self.held_member_requests.append((session, data))
            elif id(session) in live:
                self._request_members(session, data)

    def _request_members(self, session: Session, data: dict[str, Any]) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        if guild.member_list_held:
            self.held_member_requests.append((session, data))
            return
        query = str(data.get("query") or "")
        limit = int(data.get("limit") or 0)
        user_ids = data.get("user_ids")
        if user_ids is not None:
            wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in guild.members.values() if m.id in wanted]
            not_found = [str(u) for u in wanted if u not in guild.members]
        else:
            members = [m for m in guild.members.values() if m.user.username.lower().startswith(query.lower())]
            not_found = []
            if limit:
                members = members[:limit]
        chunks = [members[i : i + 1000] for i in range(0, len(members), 1000)] or [[]]
        for index, chunk in enumerate(chunks):
            body: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [payloads.member(m) for m in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
            }
            if not_found and index == 0:
                body["not_found"] = not_found
            if data.get("nonce") is not None:
                body["nonce"] = data["nonce"]
            if data.get("presences"):
                body["presences"] = []
            session.push("GUILD_MEMBERS_CHUNK", body)
            self.member_chunks_sent += 1
