"""Wire payloads (API v10 JSON) built from the emulator's state.

Ids are strings and times ISO 8601, as Discord sends them. The shapes follow Discord's
documentation; the fields discord.py 2.7 requires are marked where it matters.
"""

from __future__ import annotations

from typing import Any

from .constants import THREAD_TYPES, ChannelType, MessageType
from .snowflake import iso, utcnow
from .state import Channel, Guild, Invite, Member, Role, User, VoiceState

APPLICATION_FLAGS = (1 << 19) | (1 << 23)  # GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


def user(u: User) -> dict[str, Any]:
    return {
        "id": str(u.id),
        "username": u.username,
        "global_name": u.global_name,
        "discriminator": "0",
        "avatar": u.avatar,
        "bot": u.bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "primary_guild": None,
        "collectibles": None,
    }


def bot_user(u: User) -> dict[str, Any]:
    """``GET /users/@me`` and READY's user: a user plus the account fields."""
    return {**user(u), "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}


def application(bot: User, owner: User) -> dict[str, Any]:
    """``GET /oauth2/applications/@me`` (discord.py needs description, icon, bot_public,
    bot_require_code_grant, owner and verify_key)."""
    return {
        "id": str(bot.id),
        "name": bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": False,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": APPLICATION_FLAGS,
        "owner": user(owner),
        "team": None,
        "bot": user(bot),
        "hook": True,
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "tags": [],
        "approximate_guild_count": 1,
        "integration_types_config": {"0": {}},
    }


def role(r: Role) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": r.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        payload["tags"] = {"bot_id": str(r.bot_id)}
    return payload


def channel(c: Channel, *, permissions: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(c.id),
        "type": int(c.type),
        "guild_id": str(c.guild_id),
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [],
        "parent_id": str(c.parent_id) if c.parent_id is not None else None,
        "nsfw": False,
        "flags": 0,
    }
    if c.type in (ChannelType.TEXT, ChannelType.NEWS, ChannelType.FORUM):
        payload.update(topic=c.topic, rate_limit_per_user=0, last_message_id=_opt_id(c.last_message_id))
    if c.is_voice:
        payload.update(
            bitrate=64000,
            user_limit=0,
            rtc_region=None,
            video_quality_mode=1,
            rate_limit_per_user=0,
            last_message_id=_opt_id(c.last_message_id),
        )
    if c.type in THREAD_TYPES:
        payload.update(owner_id=str(c.guild_id), last_message_id=_opt_id(c.last_message_id),
                       rate_limit_per_user=0, message_count=0, member_count=0, total_message_sent=0,
                       thread_metadata={"archived": False, "auto_archive_duration": 10080,
                                        "archive_timestamp": iso(utcnow()), "locked": False})
        payload.pop("permission_overwrites")
        payload.pop("position")
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def member(m: Member, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
    """A guild member; discord.py requires ``roles`` and ``flags``."""
    payload: dict[str, Any] = {
        "roles": [str(r) for r in m.roles],
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "joined_at": iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "unusual_dm_activity_until": None,
        "avatar_decoration_data": None,
    }
    if with_user:
        payload["user"] = user(m.user)
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def voice_state(guild: Guild, vs: VoiceState | None, user_id: int, *, full: bool = True) -> dict[str, Any]:
    """VOICE_STATE_UPDATE (``full``: with guild_id and member) or a GUILD_CREATE voice state.

    ``vs`` None means the user left voice: channel_id null and all flags off.
    """
    payload: dict[str, Any] = {
        "user_id": str(user_id),
        "channel_id": str(vs.channel_id) if vs else None,
        "session_id": vs.session_id if vs else "",
        "deaf": vs.deaf if vs else False,
        "mute": vs.mute if vs else False,
        "self_deaf": vs.self_deaf if vs else False,
        "self_mute": vs.self_mute if vs else False,
        "self_video": vs.self_video if vs else False,
        "self_stream": vs.self_stream if vs else False,
        "suppress": vs.suppress if vs else False,
        "request_to_speak_timestamp": None,
    }
    if full:
        payload["guild_id"] = str(guild.id)
        m = guild.members.get(user_id)
        if m is not None:
            payload["member"] = member(m)
    return payload


INVITE_CREATE_ACTION = 40
INVITE_DELETE_ACTION = 42


def invite_audit_entry(entry_id: int, user_id: int | None, invite: Invite, action: int) -> dict[str, Any]:
    """An audit log entry for an invite created (40, `new_value`s) or revoked (42, `old_value`s), as
    Discord writes it (a used-up invite deleted by Discord leaves no entry)."""
    side = "new_value" if action == INVITE_CREATE_ACTION else "old_value"
    values = {
        "code": invite.code, "channel_id": str(invite.channel_id),
        "inviter_id": str(invite.inviter_id) if invite.inviter_id else None,
        "uses": invite.uses if action != INVITE_CREATE_ACTION else 0, "max_uses": invite.max_uses,
        "max_age": invite.max_age, "temporary": invite.temporary, "flags": 0,
    }
    return {
        "id": str(entry_id),
        "user_id": str(user_id) if user_id else None,
        "target_id": None,
        "action_type": action,
        "changes": [{"key": key, side: value} for key, value in values.items()],
    }


def guild_base(g: Guild) -> dict[str, Any]:
    """The guild object (``GET /guilds/{id}``), without the GUILD_CREATE extras."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "region": None,
        "afk_channel_id": _opt_id(g.afk_channel_id),
        "afk_timeout": g.afk_timeout,
        "widget_enabled": g.widget_enabled,
        "widget_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in sorted(g.roles.values(), key=lambda r: (r.position, r.id))],
        "emojis": [],
        "stickers": [],
        "features": g.features,
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": _opt_id(g.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "safety_alerts_channel_id": None,
        "public_updates_channel_id": None,
        "max_presences": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "vanity_url_code": g.vanity_code,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": g.locale,
        "nsfw_level": 0,
        "nsfw": False,
        "incidents_data": None,
    }


def guild_create(g: Guild, *, members: bool, voice_states: bool, bot_id: int,
                 large_threshold: int = 250) -> dict[str, Any]:
    """GUILD_CREATE for a bot. ``members``/``voice_states``: whether the member list and the voice
    states are sent (the session's intents, a large guild's offline members). discord.py requests
    member chunks (op 8) unless member_count == len(members)."""
    if members:
        member_list = list(g.members.values())
    else:
        # Without GUILD_MEMBERS Discord sends only the bot itself and members in voice.
        keep = {bot_id, *g.voice_states} if voice_states else {bot_id}
        member_list = [m for m in g.members.values() if m.id in keep]
    bot_member = g.members.get(bot_id)
    return {
        **guild_base(g),
        "joined_at": iso(bot_member.joined_at if bot_member else utcnow()),
        "large": len(g.members) >= large_threshold,
        "unavailable": False,
        "member_count": len(g.members),
        "members": [member(m) for m in member_list],
        "voice_states": [voice_state(g, vs, uid, full=False) for uid, vs in g.voice_states.items()]
        if voice_states
        else [],
        "channels": [channel(c) for c in g.channels.values() if c.type not in THREAD_TYPES],
        "threads": [channel(c) for c in g.channels.values() if c.type in THREAD_TYPES],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "embedded_activities": [],
        "activity_instances": [],
        "lazy": True,
        "application_command_counts": {},
        "home_header": None,
        "hub_type": None,
        "latest_onboarding_question_id": None,
        "version": 0,
    }


def invite(g: Guild, inv: Invite, users: dict[int, User]) -> dict[str, Any]:
    """Full invite object as ``GET /guilds/{id}/invites`` returns it (with metadata)."""
    c = g.channels[inv.channel_id]
    payload: dict[str, Any] = {
        "type": 0,
        "code": inv.code,
        "inviter": user(users[inv.inviter_id]) if inv.inviter_id in users else None,
        "max_age": inv.max_age,
        "created_at": iso(inv.created_at),
        "expires_at": iso(inv.expires_at) if inv.expires_at else None,
        "channel": {"id": str(c.id), "type": int(c.type), "name": c.name},
        "guild": invite_guild(g),
        "guild_id": str(g.id),
        "uses": inv.uses,
        "max_uses": inv.max_uses,
        "temporary": inv.temporary,
        "flags": 0,
    }
    if payload["inviter"] is None:
        del payload["inviter"]
    return payload


def invite_guild(g: Guild) -> dict[str, Any]:
    """The partial guild inside an invite object."""
    return {
        "id": str(g.id),
        "name": g.name,
        "splash": None,
        "banner": None,
        "description": None,
        "icon": None,
        "features": g.features,
        "verification_level": 0,
        "vanity_url_code": g.vanity_code,
        "nsfw_level": 0,
        "nsfw": False,
        "premium_subscription_count": 0,
    }


def invite_create(g: Guild, inv: Invite, users: dict[int, User]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": 0,
        "channel_id": str(inv.channel_id),
        "code": inv.code,
        "created_at": iso(inv.created_at),
        "expires_at": iso(inv.expires_at) if inv.expires_at else None,
        "guild_id": str(g.id),
        "max_age": inv.max_age,
        "max_uses": inv.max_uses,
        "temporary": inv.temporary,
        "uses": inv.uses,
        "flags": 0,
    }
    if inv.inviter_id in users:
        payload["inviter"] = user(users[inv.inviter_id])
    return payload


def invite_delete(g: Guild, inv: Invite) -> dict[str, Any]:
    return {"channel_id": str(inv.channel_id), "guild_id": str(g.id), "code": inv.code}


def message(
    *,
    message_id: int,
    channel: Channel,
    author: User,
    author_member: Member | None,
    content: str = "",
    embeds: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    flags: int = 0,
    message_type: int = MessageType.DEFAULT,
    mentions: list[dict[str, Any]] | None = None,
    webhook_id: int | None = None,
    application_id: int | None = None,
    interaction_metadata: dict[str, Any] | None = None,
    tts: bool = False,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(message_id),
        "type": int(message_type),
        "channel_id": str(channel.id),
        "guild_id": str(channel.guild_id),
        "author": user(author),
        "content": content,
        "timestamp": iso(utcnow()),
        "edited_timestamp": None,
        "tts": tts,
        "mention_everyone": False,
        "mentions": mentions or [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": attachments or [],
        "embeds": [_embed(e) for e in embeds or []],
        "components": components or [],
        "pinned": False,
        "flags": flags,
        "position": 0,
    }
    if author_member is not None:
        payload["member"] = member(author_member, with_user=False)
    if webhook_id is not None:
        payload["webhook_id"] = str(webhook_id)
    if application_id is not None:
        payload["application_id"] = str(application_id)
    if interaction_metadata is not None:
        payload["interaction_metadata"] = interaction_metadata
    return payload


def _embed(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich", **data}


def _opt_id(value: int | None) -> str | None:
    return str(value) if value is not None else None
