"""Interactions: what a user's slash command or button click looks like on the wire, and the
record of how the bot answered it."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import payloads
from .constants import CallbackType, InteractionType, MessageFlag, OptionType
from .state import Channel, Guild, Member, World

_SNOWFLAKE_OPTIONS = {OptionType.USER, OptionType.CHANNEL, OptionType.ROLE, OptionType.MENTIONABLE}


@dataclass
class InteractionRecord:
    """One interaction sent to the bot and everything the bot answered.

    ``message`` is the response message (``@original``) as it is now: edits update it in place.
    For a component interaction answered with type 6/7 it is the clicked message.
    """

    id: int
    token: str
    type: InteractionType
    name: str
    user_id: int
    guild_id: int
    channel_id: int
    payload: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    callback_type: CallbackType | None = None
    callback: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)
    edits: int = 0
    finalized: bool = False
    deleted: bool = False
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None

    # ---- state ----------------------------------------------------------------------------
    @property
    def acknowledged(self) -> bool:
        return self.callback_type is not None

    @property
    def deferred(self) -> bool:
        return self.callback_type in (
            CallbackType.DEFERRED_CHANNEL_MESSAGE,
            CallbackType.DEFERRED_UPDATE_MESSAGE,
        )

    def complete(self, wait_final: bool) -> bool:
        if self.callback_type is None:
            return False
        return not (wait_final and self.deferred and not self.finalized)

    # ---- convenient views of the response ---------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        """The response message (if any) followed by the follow-up messages."""
        return ([self.message] if self.message is not None else []) + self.followups

    @property
    def content(self) -> str:
        return (self.message or {}).get("content", "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return (self.message or {}).get("embeds", [])

    @property
    def embed(self) -> dict[str, Any] | None:
        embeds = self.embeds
        return embeds[0] if embeds else None

    @property
    def components(self) -> list[dict[str, Any]]:
        return (self.message or {}).get("components", [])

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return (self.message or {}).get("attachments", [])

    @property
    def flags(self) -> int:
        return int((self.message or {}).get("flags", 0))

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for m in self.messages for c in iter_components(m) if "custom_id" in c]

    def text(self) -> str:
        """Content plus every embed's title, description, field names/values and footer, of all
        messages: handy for ``assert "42" in response.text()``."""
        parts: list[str] = []
        for message in self.messages:
            parts.append(message.get("content") or "")
            for embed in message.get("embeds", []):
                parts += [embed.get("title") or "", embed.get("description") or ""]
                for fld in embed.get("fields", []):
                    parts += [fld.get("name") or "", fld.get("value") or ""]
                parts.append((embed.get("footer") or {}).get("text") or "")
                parts.append((embed.get("author") or {}).get("name") or "")
        return "\n".join(p for p in parts if p)

    def __repr__(self) -> str:
        return (
            f"<InteractionRecord {self.name!r} id={self.id} callback={self.callback_type!r} "
            f"content={self.content!r} embeds={len(self.embeds)} followups={len(self.followups)}>"
        )


def iter_components(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every component in a message, depth first (action rows, containers, sections too)."""
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found.append(item)
            walk(item.get("components") or [])
            if isinstance(item.get("accessory"), dict):
                walk([item["accessory"]])

    walk(message.get("components") or [])
    return found


def new_token() -> str:
    return "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)


# ---- application command data ----------------------------------------------------------------
def find_command(
    commands: dict[int | None, list[dict[str, Any]]], guild_id: int, name: str
) -> tuple[dict[str, Any] | None, int | None]:
    """The synced definition of chat-input command ``name``: guild commands first, then global."""
    for scope in (guild_id, None):
        for command in commands.get(scope, []):
            if command.get("name") == name and int(command.get("type", 1)) == 1:
                return command, scope
    return None, None


def build_command_data(
    *,
    world: World,
    guild: Guild,
    full_name: str,
    options: dict[str, Any],
    definition: dict[str, Any] | None,
    scope: int | None,
    command_id: int,
    focused: str | None = None,
) -> dict[str, Any]:
    """``data`` of an APPLICATION_COMMAND interaction (or, with ``focused``, of an
    APPLICATION_COMMAND_AUTOCOMPLETE one: the options typed so far, required ones may be missing,
    and the option being typed marked ``focused`` with its partial text as a string value).

    ``full_name`` may name a subcommand ("invites staff add"): the first word is the command, the
    next ones become nested SUB_COMMAND_GROUP (2) / SUB_COMMAND (1) options holding the leaf
    options. With a synced ``definition`` option types come from it and are checked; without one
    they are inferred from the Python values (bool, int, float, str).
    """
    parts = full_name.split()
    if not parts:
        raise ValueError("empty command name")
    resolved: dict[str, dict[str, Any]] = {}
    schema = definition.get("options") if definition else None
    path: list[tuple[str, int]] = []
    for part in parts[1:]:
        if definition is None:
            path.append((part, OptionType.SUB_COMMAND))
            continue
        match = next(
            (o for o in schema or [] if o.get("name") == part and o.get("type") in (1, 2)),
            None,
        )
        if match is None:
            raise ValueError(f"/{' '.join(parts)}: {part!r} is not a subcommand of the synced command")
        path.append((part, int(match["type"])))
        schema = match.get("options")
    if definition is not None and path and path[-1][1] != OptionType.SUB_COMMAND:
        raise ValueError(f"/{full_name} is a group; name one of its subcommands")
    if definition is not None and not path and any(o.get("type") in (1, 2) for o in schema or []):
        raise ValueError(f"/{full_name} has subcommands; name one of them")
    if definition is None and len(path) == 2:
        path[0] = (path[0][0], OptionType.SUB_COMMAND_GROUP)

    leaf = [
        _option(
            world=world,
            guild=guild,
            name=name,
            value=value,
            schema=schema,
            strict=definition is not None,
            resolved=resolved,
        )
        for name, value in options.items()
        if name != focused
    ]
    if focused is not None:
        leaf.append(_focused_option(focused, options.get(focused, ""), schema))
    elif definition is not None:
        missing = [o["name"] for o in schema or [] if o.get("required") and o["name"] not in options]
        if missing:
            raise ValueError(f"/{full_name}: required option(s) missing: {', '.join(missing)}")

    nested: list[dict[str, Any]] = leaf
    for name, option_type in reversed(path):
        nested = [{"type": option_type, "name": name, "options": nested}]
    data: dict[str, Any] = {"id": str(command_id), "name": parts[0], "type": 1}
    if nested:
        data["options"] = nested
    if resolved:
        data["resolved"] = resolved
    if scope is not None:
        data["guild_id"] = str(scope)
    return data


def _option(
    *,
    world: World,
    guild: Guild,
    name: str,
    value: Any,
    schema: list[dict[str, Any]] | None,
    strict: bool,
    resolved: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    definition = next((o for o in schema or [] if o.get("name") == name), None)
    if definition is not None:
        option_type = OptionType(int(definition["type"]))
    elif strict:
        known = ", ".join(o["name"] for o in schema or []) or "none"
        raise ValueError(f"unknown option {name!r} (the synced command has: {known})")
    elif isinstance(value, bool):
        option_type = OptionType.BOOLEAN
    elif isinstance(value, int):
        option_type = OptionType.INTEGER
    elif isinstance(value, float):
        option_type = OptionType.NUMBER
    else:
        option_type = OptionType.STRING

    if option_type in _SNOWFLAKE_OPTIONS:
        wire_value: Any = _resolve(world, guild, option_type, value, resolved)
    elif option_type is OptionType.INTEGER:
        wire_value = int(value)
    elif option_type is OptionType.NUMBER:
        wire_value = float(value)
    elif option_type is OptionType.BOOLEAN:
        wire_value = bool(value)
    elif option_type is OptionType.STRING:
        wire_value = str(value)
    else:
        raise ValueError(f"option {name!r}: type {option_type.name} is not supported by the emulator")
    if definition is not None and definition.get("choices"):
        allowed = [c["value"] for c in definition["choices"]]
        if wire_value not in allowed:
            raise ValueError(f"option {name!r}: {wire_value!r} is not one of the choices {allowed}")
    return {"type": int(option_type), "name": name, "value": wire_value}


def _focused_option(name: str, text: Any, schema: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The option being typed: Discord sends the partial text as it is (a string, whatever the
    option's type), unchecked against choices and bounds; the option must allow autocomplete."""
    definition = next((o for o in schema or [] if o.get("name") == name), None)
    if definition is None:
        raise ValueError(f"unknown option {name!r} to autocomplete")
    if not definition.get("autocomplete"):
        raise ValueError(f"option {name!r} does not have autocomplete")
    return {"type": int(definition["type"]), "name": name, "value": str(text), "focused": True}


def _resolve(
    world: World, guild: Guild, option_type: OptionType, value: Any, resolved: dict[str, Any]
) -> str:
    ref = int(value["id"] if isinstance(value, dict) else value)
    if option_type in (OptionType.ROLE, OptionType.MENTIONABLE) and ref in guild.roles:
        resolved.setdefault("roles", {})[str(ref)] = payloads.role(guild.roles[ref])
        return str(ref)
    if option_type is OptionType.ROLE:
        raise ValueError(f"guild {guild.id} has no role {ref}")
    if option_type is OptionType.CHANNEL:
        channel = guild.channel(ref)
        entry = payloads.channel(channel, permissions=guild.permissions(guild.members[world.bot_user.id]))
        resolved.setdefault("channels", {})[str(ref)] = entry
        return str(ref)
    user = world.user(ref)
    resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
    member = guild.members.get(user.id)
    if member is not None:
        entry = payloads.member(member, with_user=False, permissions=guild.permissions(member))
        resolved.setdefault("members", {})[str(user.id)] = entry
    return str(user.id)


def interaction_payload(
    *,
    world: World,
    interaction_id: int,
    interaction_type: InteractionType,
    token: str,
    guild: Guild,
    channel: Channel,
    member: Member,
    data: dict[str, Any],
    locale: str,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """INTERACTION_CREATE. discord.py requires ``version``, ``attachment_size_limit``, a member
    with ``flags``, and an id that is a current snowflake."""
    member_permissions = guild.permissions(member)
    bot_permissions = guild.permissions(guild.members[world.bot_user.id])
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(world.bot_user.id),
        "type": int(interaction_type),
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": guild.locale, "features": guild.features},
        "guild_locale": guild.locale,
        "channel_id": str(channel.id),
        "channel": payloads.channel(channel, permissions=member_permissions),
        "member": payloads.member(member, permissions=member_permissions),
        "token": token,
        "version": 1,
        "app_permissions": str(bot_permissions),
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": payloads.ATTACHMENT_SIZE_LIMIT,
    }
    if message is not None:
        payload["message"] = message
    return payload


def interaction_metadata(record: InteractionRecord, world: World) -> dict[str, Any]:
    """The ``interaction_metadata`` Discord puts on a response message."""
    metadata: dict[str, Any] = {
        "id": str(record.id),
        "type": int(record.type),
        "user": payloads.user(world.users[record.user_id]),
        "authorizing_integration_owners": {"0": str(record.guild_id)},
    }
    if record.type is InteractionType.APPLICATION_COMMAND:
        metadata["name"] = record.name
        metadata["command_type"] = 1
    else:
        metadata["interacted_message_id"] = str(record.payload.get("message", {}).get("id"))
    return metadata
