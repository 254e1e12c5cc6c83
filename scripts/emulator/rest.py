"""REST API v10 routes.

Responses carry ``Content-Type: application/json`` exactly: discord.py parses a body as JSON only
for that exact header value (with ``; charset=utf-8`` it hands the bot a string).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import payloads
from .constants import CallbackType, ErrorCode, InteractionType, MessageFlag, MessageType, Perm
from .interactions import InteractionRecord, interaction_metadata
from .limits import message_problems
from .messages import UploadedFile
from .ratelimits import HISTORY_ROUTE, MEMBER_ROLE_ROUTE
from .util import dumps

if TYPE_CHECKING:
    from .server import Emulator
    from .state import Guild, Role

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
DISCORD_ACK_DEADLINE = 3.0  # seconds Discord gives a bot to acknowledge an interaction
_NO_AUTH = re.compile(r"^/(webhooks|interactions)/")


@dataclass
class RecordedRequest:
    """One REST call the bot made. ``path`` is relative to the API base (``/guilds/1/invites``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None
    files: list[dict[str, Any]] = field(default_factory=list)
    status: int | None = None
    unknown: bool = False
    at: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    times: int
    retry_after: float | None = None


RECORD = web.RequestKey("record", RecordedRequest)
BODY: web.RequestKey[Any] = web.RequestKey("body", object)
FILES = web.RequestKey("files", list[UploadedFile])


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"message": message, "code": code}


def not_found(code: int, what: str) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


AUTOCOMPLETE_CHOICES = 25
CHOICE_TEXT = 100


def check_choices(record: InteractionRecord, choices: list[dict[str, Any]]) -> None:
    """An autocomplete answer (type 8): only to an autocomplete interaction, at most 25 choices,
    each name and string value 1-100 characters (Discord answers 400 otherwise)."""
    if record.type is not InteractionType.AUTOCOMPLETE:
        raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body: not an autocomplete interaction")
    problems = []
    if len(choices) > AUTOCOMPLETE_CHOICES:
        problems.append(f"choices: must be {AUTOCOMPLETE_CHOICES} or fewer in length")
    for n, choice in enumerate(choices):
        texts = [("name", choice.get("name"))]
        texts += [("value", choice["value"])] if isinstance(choice.get("value"), str) else []
        problems += [f"choices.{n}.{key}: must be 1-{CHOICE_TEXT} in length" for key, text in texts
                     if not isinstance(text, str) or not 1 <= len(text) <= CHOICE_TEXT]
    if problems:
        raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body: " + "; ".join(problems))


def check_message(body: Any) -> None:
    """400 Invalid Form Body, as Discord answers, for a message past its size limits."""
    problems = message_problems(body if isinstance(body, dict) else None)
    if problems:
        log.warning("REST: message refused (400): %s", "; ".join(problems))
        raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body: " + "; ".join(problems))


async def read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """JSON or multipart/form-data (``payload_json`` + ``files[n]``) -> (json, files)."""
    if not request.can_read_body:
        return None, []
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            else:
                data = bytes(await part.read(decode=False))
                files.append(
                    UploadedFile(
                        field=str(part.name),
                        filename=part.filename or str(part.name),
                        content_type=part.headers.get("Content-Type", "application/octet-stream"),
                        data=data,
                    )
                )
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body") from None


class RestApi:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.world = emulator.world
        self.store = emulator.store

    # ---- wiring ---------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._middleware)
        p = API_PREFIX
        routes = [
            ("GET", "/users/@me", self.get_me),
            ("GET", "/users/@me/guilds", self.get_my_guilds),
            ("GET", "/users/{user_id:\\d+}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/applications/{app_id:\\d+}/commands", self.get_commands),
            ("PUT", "/applications/{app_id:\\d+}/commands", self.put_commands),
            ("GET", "/applications/{app_id:\\d+}/guilds/{guild_id:\\d+}/commands", self.get_commands),
            ("PUT", "/applications/{app_id:\\d+}/guilds/{guild_id:\\d+}/commands", self.put_commands),
            ("GET", "/guilds/{guild_id:\\d+}", self.get_guild),
            ("GET", "/guilds/{guild_id:\\d+}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id:\\d+}/roles", self.get_guild_roles),
            ("GET", "/guilds/{guild_id:\\d+}/members", self.list_members),
            ("GET", "/guilds/{guild_id:\\d+}/members/{user_id:\\d+}", self.get_member),
            (
                "PUT",
                "/guilds/{guild_id:\\d+}/members/{user_id:\\d+}/roles/{role_id:\\d+}",
                self.put_member_role,
            ),
            (
                "DELETE",
                "/guilds/{guild_id:\\d+}/members/{user_id:\\d+}/roles/{role_id:\\d+}",
                self.delete_member_role,
            ),
            ("GET", "/guilds/{guild_id:\\d+}/invites", self.get_guild_invites),
            ("GET", "/guilds/{guild_id:\\d+}/vanity-url", self.get_vanity),
            ("GET", "/guilds/{guild_id:\\d+}/audit-logs", self.get_audit_log),
            ("GET", "/invites/{code}", self.get_invite),
            ("DELETE", "/invites/{code}", self.delete_invite),
            ("GET", "/channels/{channel_id:\\d+}", self.get_channel),
            ("POST", "/channels/{channel_id:\\d+}/invites", self.create_channel_invite),
            ("GET", "/channels/{channel_id:\\d+}/messages", self.get_messages),
            ("POST", "/channels/{channel_id:\\d+}/messages", self.post_message),
            ("GET", "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}", self.get_message),
            ("PATCH", "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}", self.patch_message),
            ("DELETE", "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}", self.delete_message),
            ("POST", "/interactions/{interaction_id:\\d+}/{token}/callback", self.interaction_callback),
            ("POST", "/webhooks/{app_id:\\d+}/{token}", self.post_followup),
            ("GET", "/webhooks/{app_id:\\d+}/{token}/messages/{message_id}", self.get_webhook_message),
            ("PATCH", "/webhooks/{app_id:\\d+}/{token}/messages/{message_id}", self.patch_webhook_message),
            ("DELETE", "/webhooks/{app_id:\\d+}/{token}/messages/{message_id}", self.delete_webhook_message),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, p + path, handler)
        app.router.add_route(
            "GET", "/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}", self.attachment
        )
        app.router.add_route("*", "/{tail:.*}", self.unknown_route)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX):
            path = request.path[len(API_PREFIX) :]
        elif request.path == "/gateway" or request.path.startswith("/attachments/"):
            return await handler(request)
        else:
            path = request.path
        record = RecordedRequest(method=request.method, path=path, query=dict(request.query))
        request[RECORD] = record
        self.emu.requests.append(record)
        # Simulated round trip: the request reaches "Discord" after half of it, the answer the
        # other half later (a state change and its dispatch happen in between, as on Discord).
        round_trip = self.emu.jitter.rest_s()
        if round_trip:
            await asyncio.sleep(round_trip / 2)
        try:
            record.json, files = await read_body(request)
            record.files = [{"field": f.field, "filename": f.filename, "size": f.size} for f in files]
            request[BODY] = record.json
            request[FILES] = files
            fault = self.emu.take_fault(request.method, path)
            if fault is not None and fault.status == 0:
                log.info("REST %s %s -> connection dropped", request.method, path)
                if request.transport is not None:
                    request.transport.close()
                raise web.HTTPServiceUnavailable  # never sent: the connection is gone
            if fault is not None:
                log.info("REST %s %s -> injected %s", request.method, path, fault.status)
                headers = {}
                if fault.retry_after is not None:
                    headers = {"Retry-After": f"{fault.retry_after}", "X-RateLimit-Scope": "user"}
                    if fault.status == 429:
                        # discord.py treats a 429 without Via (Discord's edge proxy) as Cloudflare's ban.
                        headers["X-RateLimit-Global"] = "false"
                        headers["Via"] = "1.1 google"
                response: web.StreamResponse = json_response(fault.body, fault.status, headers)
            elif self._unauthorized(request, path):
                response = json_response(error_body(0, "401: Unauthorized"), 401)
            else:
                response = await handler(request)
        except ApiError as exc:
            response = json_response(error_body(exc.code, exc.message), exc.status)
        except (KeyError, ValueError) as exc:
            log.warning("REST %s %s: bad request (%s)", request.method, path, exc)
            response = json_response(
                error_body(ErrorCode.INVALID_FORM_BODY, f"Invalid Form Body: {exc}"), 400
            )
        except web.HTTPException:
            raise
        except Exception:
            log.exception("REST %s %s failed inside the emulator", request.method, path)
            response = json_response(error_body(0, "500: Internal Server Error"), 500)
        if round_trip:
            await asyncio.sleep(round_trip / 2)
        record.status = response.status
        log.debug("REST %s %s -> %s", request.method, path, response.status)
        self.emu.poke()
        return response

    def _unauthorized(self, request: web.Request, path: str) -> bool:
        if self.emu.token is None or _NO_AUTH.match(path):
            return False
        return request.headers.get("Authorization") != f"Bot {self.emu.token}"

    async def unknown_route(self, request: web.Request) -> web.Response:
        record = request.get(RECORD)
        if record is not None:
            record.unknown = True
        log.warning("REST: no route for %s %s (answered 404)", request.method, request.path_qs)
        return json_response(error_body(0, "404: Not Found"), 404)

    # ---- helpers ---------------------------------------------------------------------------
    def _guild(self, request: web.Request) -> Guild:
        guild = self.world.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise not_found(ErrorCode.UNKNOWN_GUILD, "Guild")
        return guild

    def _channel(self, request: web.Request) -> tuple[Guild, Any]:
        try:
            return self.world.find_channel(int(request.match_info["channel_id"]))
        except KeyError:
            raise not_found(ErrorCode.UNKNOWN_CHANNEL, "Channel") from None

    def _require_manage_guild(self, guild: Guild) -> None:
        if guild.invites_forbidden:
            raise ApiError(403, ErrorCode.MISSING_PERMISSIONS, "Missing Permissions")

    # ---- users, application, gateway -------------------------------------------------------
    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(payloads.bot_user(self.world.bot_user))

    async def get_my_guilds(self, request: web.Request) -> web.Response:
        guilds = []
        for guild in self.world.guilds.values():
            me = guild.members[self.world.bot_user.id]
            guilds.append(
                {
                    "id": str(guild.id),
                    "name": guild.name,
                    "icon": None,
                    "banner": None,
                    "owner": False,
                    "permissions": str(guild.permissions(me)),
                    "features": guild.features,
                    "approximate_member_count": len(guild.members),
                    "approximate_presence_count": 0,
                }
            )
        return json_response(guilds)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise not_found(ErrorCode.UNKNOWN_USER, "User")
        return json_response(payloads.user(user))

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(payloads.application(self.world.bot_user, self.emu.owner))

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.emu.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.emu.gateway_url, "shards": 1, "session_start_limit": limit})

    # ---- application commands --------------------------------------------------------------
    def _scope(self, request: web.Request) -> int | None:
        if int(request.match_info["app_id"]) != self.world.bot_user.id:
            raise ApiError(403, ErrorCode.MISSING_ACCESS, "Missing Access")
        if "guild_id" in request.match_info:
            return self._guild(request).id
        return None

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.emu.commands.get(self._scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body = request[BODY] or []
        if not isinstance(body, list):
            raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body")
        previous = {(c["name"], int(c.get("type", 1))): c for c in self.emu.commands.get(scope, [])}
        stored = []
        for command in body:
            key = (command["name"], int(command.get("type", 1)))
            old = previous.get(key)
            entry = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **command,
                "id": old["id"] if old else str(self.emu.ids.next()),
                "application_id": str(self.world.bot_user.id),
                "version": str(self.emu.ids.next()),
            }
            if scope is not None:
                entry["guild_id"] = str(scope)
            stored.append(entry)
        self.emu.commands[scope] = stored
        log.info(
            "REST: %d application command(s) synced (%s)",
            len(stored),
            f"guild {scope}" if scope else "global",
        )
        return json_response(stored)

    # ---- guilds ----------------------------------------------------------------------------
    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        payload = payloads.guild_base(guild)
        if request.query.get("with_counts", "").lower() in ("true", "1"):
            payload["approximate_member_count"] = len(guild.members)
            payload["approximate_presence_count"] = 0
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([payloads.channel(c) for c in guild.channels.values()])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([payloads.role(r) for r in guild.roles.values()])

    async def list_members(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        limit = max(1, min(int(request.query.get("limit", 1)), 1000))
        after = int(request.query.get("after", 0))
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
        return json_response([payloads.member(m) for m in members[:limit]])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise not_found(ErrorCode.UNKNOWN_MEMBER, "Member")
        return json_response(payloads.member(member))

    async def put_member_role(self, request: web.Request) -> web.Response:
        return self._member_role(request, add=True)

    async def delete_member_role(self, request: web.Request) -> web.Response:
        return self._member_role(request, add=False)

    def _member_role(self, request: web.Request, *, add: bool) -> web.Response:
        guild = self._guild(request)
        user_id = int(request.match_info["user_id"])
        role_id = int(request.match_info["role_id"])
        if user_id not in guild.members:
            raise not_found(ErrorCode.UNKNOWN_MEMBER, "Member")
        if role_id not in guild.roles:
            raise not_found(ErrorCode.UNKNOWN_ROLE, "Role")
        allowed, headers = self.emu.route_limits.take(MEMBER_ROLE_ROUTE, guild.id)
        if not allowed:
            retry_after = float(headers["Retry-After"])
            body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
            return json_response(body, 429, headers)
        if not self._bot_may_assign(guild, guild.roles[role_id]):
            refused = error_body(ErrorCode.MISSING_PERMISSIONS, "Missing Permissions")
            return json_response(refused, 403, headers)
        self.emu.change_roles(guild, user_id, role_id, add=add)
        return web.Response(status=204, headers=headers)

    def _bot_may_assign(self, guild: Guild, role: Role) -> bool:
        """Discord's rule for giving or taking a role: Manage Roles (or Administrator), a role that is
        not managed (a bot's, the booster role, an integration's), and below the bot's highest role
        (roles of one position ordered by id, the lower id above). Administrator does not lift the
        hierarchy; the owner may do anything."""
        me = guild.members[self.world.bot_user.id]
        if me.id == guild.owner_id:
            return True
        if not guild.permissions(me) & Perm.MANAGE_ROLES or role.managed:
            return False
        ranks = [(r.position, -r.id) for r in (guild.roles.get(i) for i in me.roles) if r is not None]
        return bool(ranks) and (role.position, -role.id) < max(ranks)

    # ---- invites ---------------------------------------------------------------------------
    async def get_guild_invites(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        self._require_manage_guild(guild)
        users = self.world.users
        return json_response([payloads.invite(guild, inv, users) for inv in guild.live_invites()])

    async def get_vanity(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        self._require_manage_guild(guild)
        return json_response(
            {"code": guild.vanity_code, "uses": guild.vanity_uses if guild.vanity_code else 0}
        )

    async def get_audit_log(self, request: web.Request) -> web.Response:
        """`GET /guilds/{id}/audit-logs` (View Audit Log): newest first, `action_type`, `user_id`,
        `before`, `after` (entry ids) and `limit` (1-100, default 50) filter the entries."""
        guild = self._guild(request)
        bot_roles = guild.members[self.world.bot_user.id].roles
        perms = 0
        for role_id in [guild.id, *bot_roles]:
            if role_id in guild.roles:
                perms |= guild.roles[role_id].permissions
        if not perms & (Perm.VIEW_AUDIT_LOG | Perm.ADMINISTRATOR):
            raise ApiError(403, ErrorCode.MISSING_PERMISSIONS, "Missing Permissions")
        query = request.query
        limit = min(max(int(query.get("limit", 50)), 1), 100)
        entries = list(reversed(guild.audit_log))
        for key, keep in (
            ("action_type", lambda e, v: e["action_type"] == int(v)),
            ("user_id", lambda e, v: e["user_id"] == v),
            ("before", lambda e, v: int(e["id"]) < int(v)),
            ("after", lambda e, v: int(e["id"]) > int(v)),
        ):
            if key in query:
                entries = [e for e in entries if keep(e, query[key])]
        if "after" in query and "before" not in query:
            entries = list(reversed(entries))[:limit][::-1]  # the oldest after it, newest first
        entries = entries[:limit]
        user_ids = {int(e["user_id"]) for e in entries if e["user_id"]}
        users = [payloads.user(self.world.users[u]) for u in sorted(user_ids) if u in self.world.users]
        return json_response({
            "audit_log_entries": entries, "users": users, "integrations": [], "webhooks": [],
            "guild_scheduled_events": [], "threads": [], "application_commands": [],
            "auto_moderation_rules": [],
        })

    async def get_invite(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        for guild in self.world.guilds.values():
            if code == guild.vanity_code:
                channel = guild.default_text_channel()
                return json_response(
                    {
                        "type": 0,
                        "code": code,
                        "guild": payloads.invite_guild(guild),
                        "channel": {"id": str(channel.id), "type": int(channel.type), "name": channel.name},
                        "approximate_member_count": len(guild.members),
                        "approximate_presence_count": 0,
                        "expires_at": None,
                    }
                )
            invite = guild.invites.get(code)
            if invite is not None and not invite.expired():
                payload = payloads.invite(guild, invite, self.world.users)
                for key in ("uses", "max_uses", "max_age", "temporary", "created_at"):
                    payload.pop(key, None)
                payload["approximate_member_count"] = len(guild.members)
                payload["approximate_presence_count"] = 0
                return json_response(payload)
        raise not_found(ErrorCode.UNKNOWN_INVITE, "Invite")

    async def delete_invite(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        try:
            guild, invite = self.world.find_invite(code)
        except KeyError:
            raise not_found(ErrorCode.UNKNOWN_INVITE, "Invite") from None
        payload = payloads.invite(guild, invite, self.world.users)
        self.emu.invite_delete(code)
        return json_response(payload)

    async def create_channel_invite(self, request: web.Request) -> web.Response:
        guild, channel = self._channel(request)
        body = request[BODY] or {}
        invite, _ = self.emu.create_invite(
            guild,
            code=None,
            inviter=self.world.bot_user.id,
            channel=channel.id,
            max_uses=int(body.get("max_uses", 0)),
            max_age=int(body.get("max_age", 86400)),
            temporary=bool(body.get("temporary", False)),
        )
        return json_response(payloads.invite(guild, invite, self.world.users))

    # ---- channels and messages ---------------------------------------------------------------
    async def get_channel(self, request: web.Request) -> web.Response:
        _, channel = self._channel(request)
        return json_response(payloads.channel(channel))

    async def get_messages(self, request: web.Request) -> web.Response:
        """Channel history as Discord pages it (`before`/`after`/`around`, `limit` 1-100, newest
        first), behind the route's rate limit; 403 where the bot may not read the history."""
        _, channel = self._channel(request)
        allowed, headers = self.emu.route_limits.take(HISTORY_ROUTE, channel.id)
        if not allowed:
            retry_after = float(headers["Retry-After"])
            body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
            return json_response(body, 429, headers)
        if channel.id in self.emu.history_denied:
            return json_response(error_body(ErrorCode.MISSING_ACCESS, "Missing Access"), 403, headers)
        q = request.query
        limit = int(q.get("limit", 50))
        if not 1 <= limit <= 100:
            raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body: limit must be 1-100")
        messages = self.store.channel_history(
            channel.id,
            limit=limit,
            before=int(q["before"]) if "before" in q else None,
            after=int(q["after"]) if "after" in q else None,
            around=int(q["around"]) if "around" in q else None,
        )
        return json_response([self.emu.visible(m) for m in messages], headers=headers)

    def _channel_message(self, request: web.Request) -> dict[str, Any]:
        _, channel = self._channel(request)
        message = self.store.by_id.get(int(request.match_info["message_id"]))
        if message is None or int(message["channel_id"]) != channel.id:
            raise not_found(ErrorCode.UNKNOWN_MESSAGE, "Message")
        return message

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(self.emu.visible(self._channel_message(request)))

    async def post_message(self, request: web.Request) -> web.Response:
        guild, channel = self._channel(request)
        if not channel.accepts_messages:
            raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
        body = request[BODY] or {}
        check_message(body)
        message = self.store.create(
            channel=channel,
            author=self.world.bot_user,
            author_member=guild.members.get(self.world.bot_user.id),
            body=body,
            files=request[FILES],
        )
        self.emu.bot_message_created(message)
        return json_response(message)

    async def patch_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        check_message(request[BODY])
        self.store.edit(message, request[BODY] or {}, request[FILES])
        self.emu.message_updated(message)
        return json_response(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        self.store.delete(message)
        self.emu.message_deleted(message)
        return web.Response(status=204)

    async def attachment(self, request: web.Request) -> web.Response:
        stored = self.store.attachments.get(int(request.match_info["attachment_id"]))
        if stored is None:
            return json_response(error_body(0, "404: Not Found"), 404)
        return web.Response(body=stored.data, headers={"Content-Type": stored.content_type})

    # ---- interactions ------------------------------------------------------------------------
    def _interaction(self, request: web.Request) -> InteractionRecord:
        record = self.emu.interactions_by_token.get(request.match_info["token"])
        if record is None:
            raise not_found(ErrorCode.UNKNOWN_INTERACTION, "interaction")
        return record

    async def interaction_callback(self, request: web.Request) -> web.StreamResponse:
        record = self._interaction(request)
        if record.id != int(request.match_info["interaction_id"]):
            raise not_found(ErrorCode.UNKNOWN_INTERACTION, "interaction")
        if record.acknowledged:
            raise ApiError(400, ErrorCode.ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        age = time.monotonic() - record.created
        if self.emu.ack_deadline is not None and age > self.emu.ack_deadline:
            log.warning("interaction %s answered after %.1fs: rejected (ack_deadline)", record.id, age)
            raise not_found(ErrorCode.UNKNOWN_INTERACTION, "interaction")
        if age > DISCORD_ACK_DEADLINE:
            log.warning(
                "interaction %s answered after %.1fs; Discord allows %ss",
                record.id,
                age,
                DISCORD_ACK_DEADLINE,
            )
        body = request[BODY] or {}
        callback_type = CallbackType(int(body["type"]))
        data = body.get("data") or {}
        if callback_type in (CallbackType.CHANNEL_MESSAGE, CallbackType.UPDATE_MESSAGE):
            check_message(data)
        if callback_type is CallbackType.AUTOCOMPLETE_RESULT:
            check_choices(record, data.get("choices") or [])
        component = record.type is InteractionType.MESSAGE_COMPONENT
        if (
            callback_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE)
            and not component
        ):
            raise ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body: interaction has no message")
        record.callback_type = callback_type
        record.callback = body
        resource: dict[str, Any] = {"type": int(callback_type)}
        guild, channel = self.world.find_channel(record.channel_id)

        if callback_type in (CallbackType.CHANNEL_MESSAGE, CallbackType.DEFERRED_CHANNEL_MESSAGE):
            loading = callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE
            message = self.store.create(
                channel=channel,
                author=self.world.bot_user,
                author_member=guild.members.get(self.world.bot_user.id),
                body={} if loading else data,
                files=[] if loading else request[FILES],
                message_type=MessageType.CHAT_INPUT_COMMAND if not component else MessageType.REPLY,
                webhook_id=self.world.bot_user.id,
                application_id=self.world.bot_user.id,
                interaction_metadata=interaction_metadata(record, self.world),
                extra_flags=(int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
                | (MessageFlag.LOADING if loading else 0),
            )
            record.message = message
            record.finalized = not loading
            resource["message"] = message
            self.emu.bot_message_created(message)
        elif callback_type is CallbackType.UPDATE_MESSAGE:
            record.message = self._clicked_message(record)
            self.store.edit(record.message, data, request[FILES])
            record.finalized = True
            resource["message"] = record.message
            self.emu.message_updated(record.message)
        elif callback_type is CallbackType.DEFERRED_UPDATE_MESSAGE:
            record.message = self._clicked_message(record)
        elif callback_type is CallbackType.MODAL:
            record.modal = data
            record.finalized = True
        elif callback_type is CallbackType.AUTOCOMPLETE_RESULT:
            record.choices = data.get("choices") or []
            record.finalized = True
        log.info("interaction %s (%s): callback type %s", record.id, record.name, int(callback_type))

        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        message = record.message
        return json_response(
            {
                "interaction": {
                    "id": str(record.id),
                    "type": int(record.type),
                    "activity_instance_id": None,
                    "response_message_id": message["id"] if message else None,
                    "response_message_loading": callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE,
                    "response_message_ephemeral": bool(
                        message and int(message["flags"]) & MessageFlag.EPHEMERAL
                    ),
                },
                "resource": resource,
            }
        )

    def _clicked_message(self, record: InteractionRecord) -> dict[str, Any]:
        message_id = int(record.payload["message"]["id"])
        message = self.store.by_id.get(message_id)
        if message is None:
            raise not_found(ErrorCode.UNKNOWN_MESSAGE, "Message")
        return message

    def _webhook(self, request: web.Request) -> InteractionRecord:
        if int(request.match_info["app_id"]) != self.world.bot_user.id:
            raise not_found(ErrorCode.UNKNOWN_WEBHOOK, "Webhook")
        record = self.emu.interactions_by_token.get(request.match_info["token"])
        if record is None or not record.acknowledged:
            raise not_found(ErrorCode.UNKNOWN_WEBHOOK, "Webhook")
        return record

    def _webhook_message(self, request: web.Request, record: InteractionRecord) -> dict[str, Any]:
        ref = request.match_info["message_id"]
        if ref == "@original":
            if record.message is None or int(record.message["id"]) not in self.store.by_id:
                raise not_found(ErrorCode.UNKNOWN_MESSAGE, "Message")
            return record.message
        for message in record.messages:
            if message["id"] == ref and int(ref) in self.store.by_id:
                return message
        raise not_found(ErrorCode.UNKNOWN_MESSAGE, "Message")

    async def post_followup(self, request: web.Request) -> web.StreamResponse:
        record = self._webhook(request)
        body = request[BODY] or {}
        check_message(body)
        guild, channel = self.world.find_channel(record.channel_id)
        original = record.message
        if (
            record.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE
            and original is not None
            and int(original.get("flags", 0)) & MessageFlag.LOADING
        ):
            # After "thinking", Discord turns the first follow-up into the response itself.
            # The defer decided whether the answer is ephemeral; the follow-up's flag is ignored.
            flags = int(body.get("flags") or 0) & ~MessageFlag.EPHEMERAL
            message = self.store.edit(original, {**body, "flags": flags}, request[FILES])
            message["edited_timestamp"] = None
            record.finalized = True
            self.emu.message_updated(message)
        else:
            message = self.store.create(
                channel=channel,
                author=self.world.bot_user,
                author_member=guild.members.get(self.world.bot_user.id),
                body=body,
                files=request[FILES],
                webhook_id=self.world.bot_user.id,
                application_id=self.world.bot_user.id,
                interaction_metadata=interaction_metadata(record, self.world),
            )
            record.followups.append(message)
            record.finalized = True
            self.emu.bot_message_created(message)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message)
        return web.Response(status=204)

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook(request)
        return json_response(self._webhook_message(request, record))

    async def patch_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook(request)
        message = self._webhook_message(request, record)
        check_message(request[BODY])
        self.store.edit(message, request[BODY] or {}, request[FILES])
        record.edits += 1
        record.finalized = True
        self.emu.message_updated(message)
        return json_response(message)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook(request)
        message = self._webhook_message(request, record)
        self.store.delete(message)
        if message is record.message:
            record.deleted = True
        record.finalized = True
        self.emu.message_deleted(message)
        return web.Response(status=204)
