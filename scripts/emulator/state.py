"""The emulated world: users, guilds with channels, roles, members, voice states and invites.

Everything here is plain data plus the rules Discord applies to it (permissions, invite use
counting, expiry). Building wire payloads lives in ``payloads``; dispatching events in ``server``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .constants import CHANNEL_TYPE_NAMES, MESSAGE_TYPES, VOICE_TYPES, ChannelType, Perm
from .snowflake import SnowflakeGenerator, parse_time, snowflake_from_time, time_from_snowflake, utcnow

log = logging.getLogger(__name__)

# Fixture ids below this are aliases, not snowflakes: with a ``created`` time the emulator builds
# the real id as snowflake(created) | alias (so it fits the 22 low bits and stays unique).
ALIAS_LIMIT = 1 << 22


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None

    @property
    def created_at(self) -> datetime:
        return time_from_snowflake(self.id)


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    bot_id: int | None = None


@dataclass
class Channel:
    id: int
    guild_id: int
    type: ChannelType
    name: str
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    last_message_id: int | None = None

    @property
    def is_voice(self) -> bool:
        return self.type in VOICE_TYPES

    @property
    def accepts_messages(self) -> bool:
        return self.type in MESSAGE_TYPES


@dataclass
class Member:
    user: User
    roles: list[int]
    joined_at: datetime
    nick: str | None = None

    @property
    def id(self) -> int:
        return self.user.id


@dataclass
class VoiceState:
    user_id: int
    channel_id: int
    session_id: str
    self_mute: bool = False
    self_deaf: bool = False
    self_video: bool = False
    self_stream: bool = False
    mute: bool = False
    deaf: bool = False
    suppress: bool = False


@dataclass
class Invite:
    code: str
    guild_id: int
    channel_id: int
    inviter_id: int | None
    uses: int = 0
    max_uses: int = 0
    max_age: int = 0
    temporary: bool = False
    created_at: datetime = field(default_factory=utcnow)

    @property
    def expires_at(self) -> datetime | None:
        return self.created_at + timedelta(seconds=self.max_age) if self.max_age else None

    def expired(self, now: datetime | None = None) -> bool:
        expires = self.expires_at
        return expires is not None and (now or utcnow()) >= expires


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    bot_role_id: int
    channels: dict[int, Channel] = field(default_factory=dict)
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    voice_states: dict[int, VoiceState] = field(default_factory=dict)
    invites: dict[str, Invite] = field(default_factory=dict)
    afk_channel_id: int | None = None
    afk_timeout: int = 300
    system_channel_id: int | None = None
    vanity_code: str | None = None
    vanity_uses: int = 0
    invites_forbidden: bool = False
    extra_features: list[str] = field(default_factory=list)  # e.g. DISCOVERABLE, COMMUNITY
    widget_enabled: bool = False
    audit_log: list[dict[str, Any]] = field(default_factory=list)  # raw entries, oldest first
    admin_role_id: int | None = None
    locale: str = "en-US"
    unavailable: bool = False  # in an outage: no dispatches, no GUILD_CREATE until it is back
    member_list_held: bool = False  # GUILD_CREATE without the member list; op 8 answered on release

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    @property
    def features(self) -> list[str]:
        vanity = ["VANITY_URL", "INVITE_SPLASH"] if self.vanity_code else []
        return vanity + [f for f in self.extra_features if f not in vanity]

    def channel(self, channel_id: int) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise KeyError(f"guild {self.id} has no channel {channel_id}") from None

    def member(self, user_id: int) -> Member:
        try:
            return self.members[user_id]
        except KeyError:
            raise KeyError(f"user {user_id} is not a member of guild {self.id}") from None

    def default_text_channel(self) -> Channel:
        if self.system_channel_id is not None:
            return self.channels[self.system_channel_id]
        for channel in sorted(self.channels.values(), key=lambda c: (c.position, c.id)):
            if channel.type is ChannelType.TEXT:
                return channel
        raise KeyError(f"guild {self.id} has no text channel")

    def permissions(self, member: Member) -> int:
        """Guild-level permissions as Discord computes them (no channel overwrites are modelled)."""
        if member.id == self.owner_id:
            return Perm.ALL
        value = self.everyone.permissions
        for role_id in member.roles:
            role = self.roles.get(role_id)
            if role is not None:
                value |= role.permissions
        return Perm.ALL if value & Perm.ADMINISTRATOR else value

    def live_invites(self) -> list[Invite]:
        now = utcnow()
        return [invite for invite in self.invites.values() if not invite.expired(now)]


class World:
    """All users and guilds the emulator knows, plus id resolution (aliases -> snowflakes)."""

    def __init__(self, bot_user: User, ids: SnowflakeGenerator) -> None:
        self.ids = ids
        self.bot_user = bot_user
        self.users: dict[int, User] = {bot_user.id: bot_user}
        self.aliases: dict[int, int] = {}
        self.guilds: dict[int, Guild] = {}
        # channel id -> messages (full payloads as stored, oldest first)
        self.messages: dict[int, list[dict[str, Any]]] = {}

    # ---- id resolution -------------------------------------------------------------------
    def user_id(self, ref: int | str | dict[str, Any]) -> int:
        if isinstance(ref, dict):
            ref = ref["id"]
        ref = int(ref)
        return self.aliases.get(ref, ref)

    def user(self, ref: int | str | dict[str, Any]) -> User:
        user_id = self.user_id(ref)
        try:
            return self.users[user_id]
        except KeyError:
            raise KeyError(f"unknown user {ref}") from None

    def add_user(self, spec: dict[str, Any]) -> User:
        """Register a user from a fixture dict (``id``, ``name``, ``created``, ``bot``, ``global_name``).

        Id rule: an ``id`` below 2**22 together with ``created`` is an alias; the real id is
        ``snowflake(created) | alias``, so ``member.created_at`` matches ``created`` and the id is
        the same on every run. Any other id is kept as given (``created`` is then only checked).
        Without an ``id``, one is generated from ``created`` (or the current time).
        """
        created = parse_time(spec["created"]) if spec.get("created") else None
        given = spec.get("id")
        if given is None:
            real_id = snowflake_from_time(created, self.ids.next()) if created else self.ids.next()
        else:
            given = int(given)
            if given in self.aliases:
                real_id = self.aliases[given]
            elif created is not None and given < ALIAS_LIMIT:
                real_id = snowflake_from_time(created, given)
                self.aliases[given] = real_id
            else:
                real_id = given
                if created is not None and abs((time_from_snowflake(given) - created).total_seconds()) > 1:
                    log.warning("user %s: id is a snowflake, so 'created' %s is ignored", given, created)
        existing = self.users.get(real_id)
        if existing is not None:
            return existing
        name = spec.get("name") or spec.get("username") or f"user{given if given is not None else real_id}"
        user = User(
            id=real_id,
            username=str(name),
            global_name=spec.get("global_name"),
            bot=bool(spec.get("bot", False)),
        )
        self.users[real_id] = user
        return user

    def ensure_user(self, ref: int | str | dict[str, Any]) -> User:
        """A known user, or a placeholder for an id seen only as e.g. an invite's inviter."""
        if isinstance(ref, dict):
            return self.add_user(ref)
        user_id = self.user_id(ref)
        if user_id not in self.users:
            log.info("user %s is not declared anywhere; created a placeholder user", ref)
            self.users[user_id] = User(id=user_id, username=f"user{user_id}")
        return self.users[user_id]

    # ---- lookups --------------------------------------------------------------------------
    def guild(self, ref: int | str | None = None) -> Guild:
        if ref is None:
            if len(self.guilds) != 1:
                raise ValueError(f"{len(self.guilds)} guilds are loaded: say which one (guild=...)")
            return next(iter(self.guilds.values()))
        try:
            return self.guilds[int(ref)]
        except KeyError:
            raise KeyError(f"unknown guild {ref}") from None

    def find_channel(self, ref: int | str) -> tuple[Guild, Channel]:
        channel_id = int(ref)
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild, guild.channels[channel_id]
        raise KeyError(f"unknown channel {ref}")

    def find_invite(self, code: str, guild: Guild | None = None) -> tuple[Guild, Invite]:
        for candidate in [guild] if guild is not None else list(self.guilds.values()):
            if code in candidate.invites:
                return candidate, candidate.invites[code]
        raise KeyError(f"unknown invite {code!r}")

    # ---- loading --------------------------------------------------------------------------
    def load_guild(self, spec: dict[str, Any]) -> Guild:
        """Build a guild from the fixture format documented in docs/emulator.md."""
        guild_id = int(spec["id"])
        if guild_id in self.guilds:
            raise ValueError(f"guild {guild_id} is already loaded")
        members_spec = list(spec.get("members", []))
        for member_spec in members_spec:
            self.add_user(member_spec)

        bot_role_id = int(spec.get("bot_role", 0)) or self.ids.next()
        guild = Guild(
            id=guild_id,
            name=str(spec.get("name") or f"Guild {guild_id}"),
            owner_id=0,
            bot_role_id=bot_role_id,
            afk_timeout=int(spec.get("afk_timeout", 300)),
            locale=str(spec.get("locale", "en-US")),
            invites_forbidden=bool(spec.get("invites_forbidden", False)),
            extra_features=[str(f) for f in spec.get("features", [])],
            widget_enabled=bool(spec.get("widget", False)),
        )
        self._load_roles(guild, spec)
        self._load_channels(guild, spec)
        self._load_members(guild, spec, members_spec)

        guild.afk_channel_id = self._optional_channel(guild, spec.get("afk_channel"), "afk_channel")
        guild.system_channel_id = self._optional_channel(guild, spec.get("system_channel"), "system_channel")
        vanity = spec.get("vanity")
        if vanity:
            guild.vanity_code = str(vanity["code"])
            guild.vanity_uses = int(vanity.get("uses", 0))

        owner = spec.get("owner")
        if owner is not None:
            guild.owner_id = self.user_id(owner)
        else:
            humans = [m for m in guild.members.values() if m.id != self.bot_user.id]
            admins = [m for m in humans if guild.admin_role_id in m.roles]
            guild.owner_id = (admins or humans or [guild.members[self.bot_user.id]])[0].id

        for invite_spec in spec.get("invites", []):
            self.add_invite(
                guild,
                code=str(invite_spec["code"]),
                inviter=invite_spec.get("inviter"),
                channel=invite_spec.get("channel"),
                uses=int(invite_spec.get("uses", 0)),
                max_uses=int(invite_spec.get("max_uses", 0)),
                max_age=int(invite_spec.get("max_age", 0)),
                temporary=bool(invite_spec.get("temporary", False)),
                created_at=parse_time(invite_spec["created"]) if invite_spec.get("created") else None,
            )
        for vs_spec in spec.get("voice_states", []):
            self.set_voice(
                guild,
                self.user_id(vs_spec["user"]),
                int(vs_spec["channel"]),
                camera=bool(vs_spec.get("camera", False)),
                stream=bool(vs_spec.get("stream", False)),
                self_deaf=bool(vs_spec.get("self_deaf", False)),
                self_mute=bool(vs_spec.get("self_mute", False)),
            )
        self.guilds[guild_id] = guild
        return guild

    def _load_roles(self, guild: Guild, spec: dict[str, Any]) -> None:
        guild.roles[guild.id] = Role(id=guild.id, name="@everyone", permissions=Perm.EVERYONE)
        for position, role_spec in enumerate(spec.get("roles", []), start=1):
            role_id = int(role_spec["id"])
            role = Role(
                id=role_id,
                name=str(role_spec.get("name") or f"role{role_id}"),
                permissions=int(role_spec.get("permissions", 0)),
                position=int(role_spec.get("position", position)),
                color=int(role_spec.get("color", 0)),
                hoist=bool(role_spec.get("hoist", False)),
                mentionable=bool(role_spec.get("mentionable", False)),
                managed=bool(role_spec.get("managed", False)),
            )
            if role_id == guild.id:
                role.name = "@everyone"
                role.position = 0
                role.permissions = int(role_spec.get("permissions", Perm.EVERYONE))
            guild.roles[role_id] = role
        top = max(role.position for role in guild.roles.values())
        guild.roles[guild.bot_role_id] = Role(
            id=guild.bot_role_id,
            name=self.bot_user.username,
            permissions=Perm.BOT,
            position=top + 1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        if any(m.get("admin") for m in spec.get("members", [])):
            admin_id = int(spec.get("admin_role", 0)) or self.ids.next()
            guild.roles[admin_id] = Role(id=admin_id, name="Admin", permissions=Perm.ADMIN, position=top + 2)
            guild.admin_role_id = admin_id

    def _load_channels(self, guild: Guild, spec: dict[str, Any]) -> None:
        channels_spec = spec.get("channels")
        if not channels_spec:
            channels_spec = [
                {"id": self.ids.next(), "type": "text", "name": "general"},
                {"id": self.ids.next(), "type": "voice", "name": "General"},
            ]
        for position, channel_spec in enumerate(channels_spec):
            kind = channel_spec.get("type", "text")
            channel_type = CHANNEL_TYPE_NAMES[kind] if isinstance(kind, str) else ChannelType(int(kind))
            channel_id = int(channel_spec["id"])
            if channel_id in guild.channels:
                raise ValueError(f"guild {guild.id}: duplicate channel id {channel_id}")
            parent = channel_spec.get("parent")
            guild.channels[channel_id] = Channel(
                id=channel_id,
                guild_id=guild.id,
                type=channel_type,
                name=str(channel_spec.get("name") or f"{channel_type.name.lower()}-{channel_id}"),
                position=int(channel_spec.get("position", position)),
                parent_id=int(parent) if parent is not None else None,
                topic=channel_spec.get("topic"),
            )

    def _load_members(self, guild: Guild, spec: dict[str, Any], members_spec: list[dict[str, Any]]) -> None:
        bot_joined = parse_time(spec["bot_joined"]) if spec.get("bot_joined") else utcnow()
        guild.members[self.bot_user.id] = Member(
            user=self.bot_user, roles=[guild.bot_role_id], joined_at=bot_joined
        )
        for member_spec in members_spec:
            self.add_member(guild, member_spec)

    def _optional_channel(self, guild: Guild, ref: Any, what: str) -> int | None:
        if ref is None:
            return None
        channel_id = int(ref)
        if channel_id not in guild.channels:
            raise ValueError(f"guild {guild.id}: {what} {channel_id} is not one of its channels")
        return channel_id

    # ---- mutations (no events here; the server dispatches) -------------------------------------
    def add_member(self, guild: Guild, spec: dict[str, Any]) -> Member:
        user = self.add_user(spec)
        if user.id in guild.members:
            raise ValueError(f"user {user.id} is already a member of guild {guild.id}")
        roles = [int(r) for r in spec.get("roles", [])]
        for role_id in roles:
            if role_id not in guild.roles:
                raise ValueError(f"guild {guild.id}: member {user.id} has unknown role {role_id}")
        if spec.get("admin"):
            if guild.admin_role_id is None:
                guild.admin_role_id = self.ids.next()
                top = max(role.position for role in guild.roles.values())
                guild.roles[guild.admin_role_id] = Role(
                    id=guild.admin_role_id, name="Admin", permissions=Perm.ADMIN, position=top + 1
                )
            roles.append(guild.admin_role_id)
        joined = parse_time(spec["joined"]) if spec.get("joined") else utcnow()
        member = Member(user=user, roles=roles, joined_at=joined, nick=spec.get("nick"))
        guild.members[user.id] = member
        return member

    def set_voice(
        self,
        guild: Guild,
        user_id: int,
        channel_id: int | None,
        *,
        camera: bool = False,
        stream: bool = False,
        self_deaf: bool = False,
        self_mute: bool = False,
    ) -> VoiceState | None:
        """Move a member into ``channel_id`` (None: leave voice). Returns the new state or None."""
        guild.member(user_id)
        if channel_id is None:
            guild.voice_states.pop(user_id, None)
            return None
        channel = guild.channel(channel_id)
        if not channel.is_voice:
            raise ValueError(f"channel {channel_id} is not a voice or stage channel")
        current = guild.voice_states.get(user_id)
        session_id = current.session_id if current else f"{self.ids.next():x}"
        state = VoiceState(
            user_id=user_id,
            channel_id=channel_id,
            session_id=session_id,
            self_mute=self_mute,
            self_deaf=self_deaf,
            self_video=camera,
            self_stream=stream,
        )
        guild.voice_states[user_id] = state
        return state

    def add_invite(
        self,
        guild: Guild,
        *,
        code: str,
        inviter: Any = None,
        channel: Any = None,
        uses: int = 0,
        max_uses: int = 0,
        max_age: int = 0,
        temporary: bool = False,
        created_at: datetime | None = None,
    ) -> Invite:
        if any(code in g.invites for g in self.guilds.values()) or code in guild.invites:
            raise ValueError(f"invite code {code!r} already exists")
        if code == guild.vanity_code:
            raise ValueError(f"invite code {code!r} is the guild's vanity code")
        inviter_id = self.ensure_user(inviter).id if inviter is not None else None
        channel_id = int(channel) if channel is not None else guild.default_text_channel().id
        guild.channel(channel_id)
        invite = Invite(
            code=code,
            guild_id=guild.id,
            channel_id=channel_id,
            inviter_id=inviter_id,
            uses=uses,
            max_uses=max_uses,
            max_age=max_age,
            temporary=temporary,
            created_at=created_at or utcnow(),
        )
        guild.invites[code] = invite
        return invite
