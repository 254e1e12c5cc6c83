"""The Discord side of invite tracking: what `app.tracking.invites.InviteTracker` is handed.

`DiscordGuildAccess` reads a guild's invites, vanity uses and member list through discord.py and
turns recorded joins and leaves into the `tracked_join` / `tracked_leave` events the
announcements cog listens to. The conversions from discord.py objects live here too; the
tracker itself (queueing, batching, matching, snapshots, reconciliation) has no Discord I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import discord

from app.tracking.audit_match import AuditedInvite
from app.tracking.invites import FetchFailed, GuildMembers, InviteTracker, Joiner, JoinFacts
from app.wiring.container import Repositories
from repositories.invites import StoredInvite

log = logging.getLogger(__name__)


def stored_from_invite(invite: discord.Invite) -> StoredInvite:
    inviter = invite.inviter
    channel = invite.channel
    return StoredInvite(
        code=invite.code,
        uses=int(invite.uses or 0),
        max_uses=int(invite.max_uses or 0),
        inviter_id=inviter.id if inviter else None,
        inviter_name=inviter.name if inviter else None,
        channel_id=channel.id if channel else None,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
    )


def joiner_of(member: discord.Member, fallback: datetime, *, live: bool) -> Joiner:
    """A member's join as the tracker sees it (`live`: from a GUILD_MEMBER_ADD)."""
    return Joiner(member.id, member.name, member.joined_at or fallback, member.created_at, live)


def audited_from(data: dict[str, Any], *, revoked: bool) -> list[AuditedInvite]:
    """Invite entries of an audit-log answer (`changes` carry `new_value` on a create, `old_value`
    on a revoke)."""
    names = {int(u["id"]): u.get("username") for u in data.get("users") or []}
    side = "old_value" if revoked else "new_value"
    found = []
    for entry in data.get("audit_log_entries") or []:
        changes = {c["key"]: c.get(side) for c in entry.get("changes") or []}
        if not isinstance(changes.get("code"), str):
            continue
        inviter = int(changes["inviter_id"]) if changes.get("inviter_id") else None
        channel = int(changes["channel_id"]) if changes.get("channel_id") else None
        found.append(AuditedInvite(
            code=changes["code"], created_at=discord.utils.snowflake_time(int(entry["id"])),
            inviter_id=inviter, inviter_name=names.get(inviter) if inviter else None, channel_id=channel,
            max_uses=int(changes.get("max_uses") or 0), max_age=int(changes.get("max_age") or 0),
            revoked=revoked,
        ))
    return found


class DiscordGuildAccess:
    """`GuildAccess` through discord.py: reads, plus the tracker's join/leave notices as bot events."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.loaded: dict[int, discord.Guild] = {}  # guilds whose member request finished
        self.loading: dict[int, asyncio.Task[None]] = {}

    def _guild(self, guild_id: int) -> discord.Guild:
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            raise FetchFailed("fetch_failed", f"guild {guild_id} is not known")
        return guild

    async def invites(self, guild_id: int) -> list[StoredInvite]:
        guild = self._guild(guild_id)
        try:
            invites = await guild.invites()
        except discord.Forbidden as exc:
            raise FetchFailed("missing_permissions", f"{guild.name}: {exc.text}") from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise FetchFailed("fetch_failed", str(exc)) from exc
        return [stored_from_invite(inv) for inv in invites]

    async def vanity(self, guild_id: int) -> tuple[str, int] | None:
        guild = self._guild(guild_id)
        if not guild.vanity_url_code:
            return None
        try:
            # GET /guilds/{id}/vanity-url alone has the uses (Guild.vanity_invite() makes a second
            # call for the channel, which attribution does not need).
            vanity = await self.bot.http.get_vanity_code(guild_id)
        except discord.Forbidden as exc:
            raise FetchFailed("missing_permissions", f"{guild.name}: {exc.text}") from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise FetchFailed("fetch_failed", str(exc)) from exc
        if not vanity.get("code"):
            return None
        return vanity["code"], int(vanity.get("uses") or 0)

    def has_guild(self, guild_id: int) -> bool:
        return self.bot.get_guild(guild_id) is not None

    def members(self, guild_id: int) -> GuildMembers | None:
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return None
        now = self.bot.clock.now()
        humans = [joiner_of(m, now, live=False) for m in guild.members if not m.bot and m.joined_at]
        return GuildMembers(guild.name, humans, self._complete(guild))

    def _complete(self, guild: discord.Guild) -> bool:
        """The whole member list is cached: as many members as Discord counts, or Discord answered
        the request for all members on this guild object (its count can be off by a few)."""
        return guild.chunked or self.loaded.get(guild.id) is guild

    def load_members(self, guild: discord.Guild, then: Callable[[int], None]) -> None:
        """When `guild`'s member list is incomplete (discord.py reports a guild available when its
        member request times out, and the chunks keep coming): wait for discord.py's request to
        finish (or make one), then call `then(guild_id)` if the list is whole. A reconnect ends
        discord.py's requests; the guild_available that follows calls this again."""
        if self._complete(guild):
            return
        running = self.loading.pop(guild.id, None)
        if running is not None:
            running.cancel()
        self.loading[guild.id] = asyncio.get_running_loop().create_task(
            self._load(guild, then), name=f"member list {guild.id}"
        )

    async def _load(self, guild: discord.Guild, then: Callable[[int], None]) -> None:
        try:
            await guild.chunk()
        except (discord.ClientException, discord.HTTPException) as exc:
            log.warning("guild %s: the member list could not be requested: %s", guild.id, exc)
            return
        finally:
            if self.loading.get(guild.id) is asyncio.current_task():
                del self.loading[guild.id]
        if self.bot.get_guild(guild.id) is not guild:
            return  # a new session replaced the guild: its own guild_available follows
        self.loaded[guild.id] = guild
        log.info("guild %s: member list loaded (%d members)", guild.id, len(guild.members))
        then(guild.id)

    def close(self) -> None:
        for task in self.loading.values():
            task.cancel()
        self.loading.clear()

    def member_roles(self, guild_id: int, member_id: int) -> set[int] | None:
        guild = self.bot.get_guild(guild_id)
        member = guild.get_member(member_id) if guild is not None else None
        return {role.id for role in member.roles} if member is not None else None

    async def audited_invites(self, guild_id: int) -> list[AuditedInvite] | None:
        """`GET /guilds/{id}/audit-logs?action_type=40` and `=42` (the latest 100 each)."""
        guild = self.bot.get_guild(guild_id)
        if guild is None or guild.me is None or not guild.me.guild_permissions.view_audit_log:
            return None
        entries: list[AuditedInvite] = []
        try:
            for action, revoked in ((discord.AuditLogAction.invite_create, False),
                                    (discord.AuditLogAction.invite_delete, True)):
                data = await self.bot.http.get_audit_logs(guild_id, limit=100, action_type=action.value)
                entries += audited_from(data, revoked=revoked)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not read the audit log of guild %s: %s", guild_id, exc)
            return None
        return entries

    def join_hint(self, guild_id: int) -> str:
        """From the guild Discord sent (GUILD_CREATE / GUILD_UPDATE): `DISCOVERABLE` among its
        features, and `widget_enabled`."""
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return ""
        discovery, widget = "DISCOVERABLE" in guild.features, bool(guild.widget_enabled)
        if discovery and widget:
            return "discovery_or_widget"
        return "discovery" if discovery else "widget" if widget else ""

    def joined(self, facts: JoinFacts) -> None:
        self.bot.dispatch("tracked_join", facts)

    def left(self, guild_id: int, member_id: int, name: str, facts: JoinFacts | None) -> None:
        self.bot.dispatch("tracked_leave", guild_id, member_id, name, facts)


def make_invite_tracker(
    bot: Any, repos: Repositories, access: DiscordGuildAccess | None = None
) -> InviteTracker:
    """The bot's invite tracker, reading Discord through `access` (default: through `bot`), its
    inputs written ahead to the bot's invite journal."""
    journal = getattr(bot, "journal", None)
    return InviteTracker(repos, bot.clock, access or DiscordGuildAccess(bot), journal=journal)
