"""Invite tracking listeners and the `/invites` commands.

Listeners only queue events into `InviteTracker` (`app/tracking/invites.py`, in arrival order);
the tracker's per-guild worker does the rest. Commands read through repositories (`bot.repos`),
never a collection.

Commands: `/invites show|who|leaderboard|retention` for members; `/invites-admin staff add|remove|list`,
`bonus`, `debug`, `refresh`, `reset`, `restore` for Manage Server. Discord takes default member
permissions only on a top-level command, so the admin subcommands live in their own top-level
group: the client hides it from members (and a server can grant it to a moderator role as one
command in Server Settings > Integrations); each subcommand still checks Manage Server at runtime,
because such an override can grant it to anyone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.operations.invite_resets import (
    RestoreError,
    Resumed,
    reset_invites,
    restore_invites,
    resume_interrupted,
)
from app.wiring.commands import read_or_defer
from app.wiring.container import Repositories
from app.wiring.limits import LEADERBOARD_LIMIT, cooldown
from app.wiring.privacy import may_see, sight
from app.wiring.reply_limits import fit_reply, more_lines
from app.wiring.validation import invite_code, reject, valid_id, valid_invite_event
from cogs import style
from cogs.choices import matching
from cogs.invite_retention import (
    RETENTION_PAGE_SIZE,
    board_embed,
    code_embed,
    horizon_text,
    inviter_embed,
    own_board_embed,
)
from cogs.invite_tracker import DiscordGuildAccess, joiner_of, make_invite_tracker, stored_from_invite
from cogs.invite_views import (
    CONFIRM_RESET,
    NO_MENTIONS,
    PAGE_SIZE,
    ConfirmView,
    FakeRules,
    LeaderboardView,
    esc,
    leaderboard_embed,
    member_embed,
    own_invites_embed,
    period_since,
    staff_embed,
    summary_line,
    who_embed,
)
from cogs.stats import PERIOD_CHOICES
from repositories.activity import Counters

log = logging.getLogger(__name__)
SORT_CHOICES = [
    app_commands.Choice(name="invites", value="invites"),
    app_commands.Choice(name="members who stayed 30 days", value="retained_30d"),
]
RECENT = 5
BACKUPS_SUGGESTED = 100  # newest backups read for the restore suggestions (25 shown)
NOT_A_CODE = ("That is not an invite code or link: give the code (`abc123`) or the link "
              "(`discord.gg/abc123`); `/invites-admin debug` lists the server's invites.")


def command_name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "invites"


def clean_code(value: str) -> str | None:
    """An invite code from a code or an invite link (discord.gg/..., discord.com/invite/...); None
    when it is not one (strict pattern: `app.wiring.validation.invite_code`)."""
    return invite_code(value)


class InvitesCog(commands.Cog, name="Invites"):
    invites = app_commands.Group(name="invites", description="Invite tracking", guild_only=True)
    admin = app_commands.Group(
        name="invites-admin", guild_only=True,
        description="Staff codes, bonus, reset and checks of invite tracking (Manage Server)",
        default_permissions=discord.Permissions(manage_guild=True),
    )
    staff = app_commands.Group(name="staff", description="Staff invite codes", parent=admin)

    def __init__(self, bot: Any, repos: Repositories) -> None:
        self.bot = bot
        self.repos = repos
        self.access = DiscordGuildAccess(bot)
        self.tracker = make_invite_tracker(bot, repos, self.access)

    async def cog_load(self) -> None:
        # After the shutdown flush waited for every queue (wait_idle), stop the workers.
        self.bot.add_shutdown_hook("invite workers", self._close)
        left = getattr(self.bot, "journal_left", [])
        self.tracker.restore(left)  # before any event: the previous run's waiting joins come first
        left.clear()

    async def cog_unload(self) -> None:
        await self._close()

    async def _close(self) -> None:
        self.access.close()
        await self.tracker.close()

    async def wait_idle(self) -> None:
        await self.tracker.wait_idle()

    # ---- listeners: queue only, in arrival order (malformed events rejected with one log line) ---
    def _known_guild(self, guild_id: int | None) -> bool:
        guild = self.bot.get_guild(guild_id) if guild_id is not None else None
        return guild is not None and not guild.unavailable

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        self._available(guild)

    @commands.Cog.listener("on_guild_available")
    async def finish_interrupted_resets(self, guild: discord.Guild) -> None:
        """At start (and when this process takes the lease over): a reset or restore a crash
        interrupted is finished before anything else runs one in the guild."""
        with self.bot.guild_jobs.hold(guild.id, "an invite reset") as mine:
            if not mine:
                return  # a reset / restore / erase runs: a reset or restore resumes them itself
            try:
                await resume_interrupted(self.repos, guild.id, self.bot.clock.now())
            except Exception as exc:
                log.error("guild %s: interrupted invite resets not finished (%s); the next start or "
                          "/invites-admin reset or restore finishes them", guild.id,
                          exc or type(exc).__name__)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self._available(guild)

    def _available(self, guild: discord.Guild) -> None:
        """Sync the guild now; with part of its member list, sync again once the list is whole
        (the tracker looks for members who joined while the bot was down only in a whole list)."""
        self.tracker.guild_available(guild.id)
        self.access.load_members(guild, self.tracker.guild_available)
        if self.repos.invite_boards is not None:
            self.repos.invite_boards.ensure(guild.id)  # in the background; aggregations meanwhile

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.tracker.guild_gone(guild.id)

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        self.tracker.gateway_lost()  # join events may now come late (a RESUME replays them)

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        self.tracker.gateway_back()

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self.tracker.gateway_back(resumed=True)

    @commands.Cog.listener()
    async def on_guild_unavailable(self, guild: discord.Guild) -> None:
        self.tracker.guild_unavailable(guild.id)

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        if not valid_id(member.id):
            reject("GUILD_MEMBER_ADD", "member id out of range", guild=member.guild.id, member=member.id)
        elif not member.bot:
            joiner = joiner_of(member, self.bot.clock.now(), live=True)
            self.tracker.submit(member.guild.id, "join", joiner)

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        if not self._known_guild(payload.guild_id):
            reject("GUILD_MEMBER_REMOVE", "unknown guild", guild=payload.guild_id, member=payload.user.id)
        elif not valid_id(payload.user.id):
            reject("GUILD_MEMBER_REMOVE", "member id out of range", guild=payload.guild_id,
                   member=payload.user.id)
        elif not payload.user.bot:
            if isinstance(payload.user, discord.Member) and payload.user.joined_at is not None:
                joiner = joiner_of(payload.user, self.bot.clock.now(), live=False)
                self.tracker.joined_unseen(payload.guild_id, joiner)
            self.tracker.submit(payload.guild_id, "leave", payload.user.id)

    @commands.Cog.listener()
    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        added = {r.id for r in after.roles} - {r.id for r in before.roles}
        if added and not valid_id(after.id):
            reject("GUILD_MEMBER_UPDATE", "member id out of range", guild=after.guild.id, member=after.id)
        elif added and not after.bot:
            self.tracker.submit(after.guild.id, "roles", (after.id, added))

    @commands.Cog.listener()
    async def on_invite_create(self, invite: discord.Invite) -> None:
        if self._usable_invite("INVITE_CREATE", invite):
            self.tracker.submit(invite.guild.id, "invite_create", stored_from_invite(invite))  # type: ignore[union-attr]

    @commands.Cog.listener()
    async def on_invite_delete(self, invite: discord.Invite) -> None:
        if self._usable_invite("INVITE_DELETE", invite):
            self.tracker.submit(invite.guild.id, "invite_delete", invite.code)  # type: ignore[union-attr]

    def _usable_invite(self, event: str, invite: discord.Invite) -> bool:
        guild_id = invite.guild.id if invite.guild else None
        problem = valid_invite_event(invite, self._known_guild(guild_id))
        if problem:
            reject(event, problem, guild=guild_id, code=invite.code)
        return not problem

    # ---- /ud contribution ---------------------------------------------------------------------
    async def ud_fields(self, guild_id: int, member_id: int, period: str) -> list[tuple[str, str]]:
        """The member's invite figures for `/ud` (all time: invites are not per period)."""
        summary = await self.repos.invite_stats.member_summary(guild_id, member_id)
        return [("Invites", summary_line(summary))]

    # ---- helpers -----------------------------------------------------------------------------
    async def _send(
        self, interaction: discord.Interaction, *, ephemeral: bool = False, **kwargs: Any
    ) -> None:
        kwargs["allowed_mentions"] = NO_MENTIONS
        kwargs = fit_reply(kwargs)
        if interaction.response.is_done():
            await interaction.followup.send(ephemeral=ephemeral, **kwargs)
        else:
            await interaction.response.send_message(ephemeral=ephemeral, **kwargs)

    async def _admin(self, interaction: discord.Interaction) -> bool:
        if interaction.guild is not None and interaction.permissions.manage_guild:
            return True
        refusal = style.needs_manage_server(command_name(interaction))
        await self._send(interaction, ephemeral=True, content=refusal)
        return False

    async def _busy(self, interaction: discord.Interaction, command: str | None = None) -> None:
        assert interaction.guild is not None
        running = self.bot.guild_jobs.running(interaction.guild.id)
        text = style.busy(running, command or command_name(interaction))
        await self._send(interaction, ephemeral=True, content=text)

    async def _may_see(self, interaction: discord.Interaction, member_id: int) -> bool:
        """Own figures, Manage Server, or a server that lets members look at others
        (`app.wiring.privacy.may_see`); else refused."""
        assert interaction.guild is not None
        config = await self.repos.guild_settings.get(interaction.guild.id)
        if may_see(config.members_view_others, interaction.permissions.manage_guild,
                   interaction.user.id, member_id):
            return True
        await self._send(interaction, ephemeral=True, content=style.only_own(command_name(interaction)))
        return False

    async def _rules(self, guild_id: int) -> FakeRules:
        config = await self.repos.guild_settings.get(guild_id)
        return FakeRules(config.fake_account_days, config.fake_left_within_seconds)

    # ---- member commands ------------------------------------------------------------------------
    @invites.command(name="show", description="A member's invite counts and the last members they brought in")
    @app_commands.describe(member="Whose invites (default: yours)")
    async def show(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        assert interaction.guild is not None
        target = member or interaction.user
        if not await self._may_see(interaction, target.id):
            return
        gid = interaction.guild.id
        summary, recent = await read_or_defer(interaction, self._summary_and_recent(gid, target.id),
                                              ephemeral=style.private_lookup(interaction, target.id))
        embed = member_embed(target.display_name, target.id, summary, recent, await self._rules(gid))
        await self._send(interaction, embed=embed, ephemeral=style.private_lookup(interaction, target.id))

    async def _summary_and_recent(self, guild_id: int, member_id: int) -> tuple[Any, list[Any]]:
        summary = await self.repos.invite_stats.member_summary(guild_id, member_id)
        return summary, await self.repos.joins.brought_in_by(guild_id, member_id, RECENT)

    @invites.command(
        name="who", description="Who invited a member, by which code, when, and how it was found"
    )
    @app_commands.describe(member="The member who joined")
    async def who(self, interaction: discord.Interaction, member: discord.Member) -> None:
        guild = interaction.guild
        assert guild is not None
        if not await self._may_see(interaction, member.id):
            return
        join = await self.repos.joins.latest_for_member(guild.id, member.id)
        embed = who_embed(guild, member.display_name, member.id, join, await self._rules(guild.id))
        await self._send(interaction, embed=embed, ephemeral=style.private_lookup(interaction, member.id))

    @invites.command(name="leaderboard", description="Members ranked by invites")
    @app_commands.describe(
        period="Members brought in during (default: all time; bonus counts only all time)",
        sort="Rank by invites (default) or by how many of the members brought in stayed 30 days",
    )
    @app_commands.choices(period=PERIOD_CHOICES, sort=SORT_CHOICES)
    @cooldown("invites leaderboard", LEADERBOARD_LIMIT)
    async def leaderboard(self, interaction: discord.Interaction, period: str = "all",
                          sort: str = "invites") -> None:
        guild = interaction.guild
        assert guild is not None
        caller_id, manage_guild = interaction.user.id, interaction.permissions.manage_guild
        config = await self.repos.guild_settings.get(guild.id)
        since = period_since(period, self.bot.clock.now(), config.time_zone)
        by_retention = sort == "retained_30d"

        async def rows_of(page: int, now: datetime | None) -> tuple[list[Any], int]:
            return await self.repos.invite_stats.leaderboard_page(
                guild.id, since, page * PAGE_SIZE, PAGE_SIZE, retained_at=now)

        async def load(page: int) -> tuple[discord.Embed, int, int]:
            stats = self.repos.invite_stats
            current = await self.repos.guild_settings.get(guild.id)  # asked again on every page
            if not sight(current.members_view_others, manage_guild).others:
                own = await stats.member_summary(guild.id, caller_id, since)
                return own_invites_embed(own, guild, period), 0, 1
            now = self.bot.clock.now() if by_retention else None
            rows, count = await rows_of(max(page, 0), now)
            pages = max(1, math.ceil(count / PAGE_SIZE))
            if page >= pages:  # the board shrank since the last page was shown
                page = pages - 1
                rows, count = await rows_of(page, now)
            page = max(page, 0)
            retained = None
            if now is not None:
                horizons = await stats.retained(guild.id, since, now, [r.member_id for r in rows])
                retained = {m: horizon_text(h) for m, h in horizons.items()}
            return leaderboard_embed(rows, guild, period, page, pages, retained), page, pages

        private = sight(config.members_view_others, manage_guild).private
        embed, page, pages = await read_or_defer(interaction, load(0), ephemeral=private)
        view = LeaderboardView.when_paged(caller_id, load, page, pages)
        await self._send(interaction, embed=embed, ephemeral=private, **({"view": view} if view else {}))

    @invites.command(
        name="retention",
        description="How many of the members each inviter brought in stayed 1, 7 and 30 days",
    )
    @app_commands.describe(
        member="One inviter's figures, with a line per code (default: every inviter, best first)",
        code="One invite code's figures: the code or the invite link",
    )
    @cooldown("invites retention", LEADERBOARD_LIMIT)
    async def retention(self, interaction: discord.Interaction, member: discord.Member | None = None,
                        code: str | None = None) -> None:
        assert interaction.guild is not None
        clean = clean_code(code) if code is not None else None
        if code is not None and clean is None:
            await self._send(interaction, ephemeral=True, content=NOT_A_CODE)
        elif clean is not None:
            await self._code_retention(interaction, clean, member)
        elif member is not None:
            await self._inviter_retention(interaction, member)
        else:
            await self._retention_board(interaction)

    async def _activity(self, guild_id: int, member_ids: Iterable[int]) -> dict[int, Counters]:
        """All-time counters for the medians: the ranks in memory when built, else the repository."""
        ranks = getattr(self.bot, "ranks", None)
        if ranks is not None and ranks.covers(guild_id, None):
            return {m: ranks.counters(guild_id, m, None) for m in set(member_ids)}
        return await self.repos.activity.totals_of(guild_id, member_ids)

    async def _inviter_retention(self, interaction: discord.Interaction, member: discord.Member) -> None:
        guild = interaction.guild
        assert guild is not None
        if not await self._may_see(interaction, member.id):
            return
        private = style.private_lookup(interaction, member.id)

        async def read() -> discord.Embed:
            stats, now = self.repos.invite_stats, self.bot.clock.now()
            view = await stats.retention(guild.id, now, inviter_id=member.id)
            by_code = await stats.retention_by_code(guild.id, now, member.id)
            counters = await self._activity(guild.id, view.members)
            return inviter_embed(guild, member.display_name, member.id, view, by_code, counters)

        embed = await read_or_defer(interaction, read(), ephemeral=private)
        await self._send(interaction, embed=embed, ephemeral=private)

    async def _code_retention(self, interaction: discord.Interaction, code: str,
                              member: discord.Member | None) -> None:
        """A code's figures are its inviter's: refused like a lookup of them when they are someone
        else's and members may not see others. An admin's answer is ephemeral (it is usually
        another member's code), a member's when the server keeps figures private."""
        guild = interaction.guild
        assert guild is not None
        if member is not None and not await self._may_see(interaction, member.id):
            return
        config = await self.repos.guild_settings.get(guild.id)
        caller, manage_guild = interaction.user.id, interaction.permissions.manage_guild
        private = manage_guild or sight(config.members_view_others, manage_guild).private

        async def read() -> tuple[Any, dict[int, Counters]]:
            view = await self.repos.invite_stats.retention(
                guild.id, self.bot.clock.now(), inviter_id=member.id if member else None, code=code)
            return view, await self._activity(guild.id, view.members)

        view, counters = await read_or_defer(interaction, read(), ephemeral=private)
        if not all(may_see(config.members_view_others, manage_guild, caller, i) for i in view.inviters):
            await self._send(interaction, ephemeral=True, content=style.only_own(command_name(interaction)))
            return
        embed = code_embed(guild, code, view, member.id if member else None, counters)
        await self._send(interaction, embed=embed, ephemeral=private)

    async def _retention_board(self, interaction: discord.Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        caller_id, manage_guild = interaction.user.id, interaction.permissions.manage_guild
        config = await self.repos.guild_settings.get(guild.id)

        async def load(page: int) -> tuple[discord.Embed, int, int]:
            stats, now = self.repos.invite_stats, self.bot.clock.now()
            current = await self.repos.guild_settings.get(guild.id)  # asked again on every page
            if not sight(current.members_view_others, manage_guild).others:
                own = await stats.retention(guild.id, now, inviter_id=caller_id)
                counters = await self._activity(guild.id, own.members)
                return own_board_embed(guild, caller_id, own, counters), 0, 1
            size = RETENTION_PAGE_SIZE
            rows, count = await stats.retention_board(guild.id, now, max(page, 0) * size, size)
            pages = max(1, math.ceil(count / size))
            if page >= pages:  # the board shrank since the last page was shown
                page = pages - 1
                rows, count = await stats.retention_board(guild.id, now, page * size, size)
            page = max(page, 0)
            counters = await self._activity(guild.id, [m for _, view in rows for m in view.members])
            return board_embed(guild, rows, counters, page, pages), page, pages

        private = sight(config.members_view_others, manage_guild).private
        embed, page, pages = await read_or_defer(interaction, load(0), ephemeral=private)
        view = LeaderboardView.when_paged(caller_id, load, page, pages, "invites retention")
        await self._send(interaction, embed=embed, ephemeral=private, **({"view": view} if view else {}))

    # ---- staff codes ----------------------------------------------------------------------------
    @staff.command(name="add", description="Assign an invite code to a staff member (Manage Server)")
    @app_commands.describe(member="The staff member", code="The invite code or link")
    async def staff_add(self, interaction: discord.Interaction, member: discord.Member, code: str) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        gid = interaction.guild.id
        clean = clean_code(code)
        if clean is None:
            await self._send(interaction, ephemeral=True, content=NOT_A_CODE)
            return
        holder = await self.repos.staff_codes.by_code(gid, clean)
        if holder is not None and holder.member_id != member.id:
            await self._send(
                interaction,
                ephemeral=True,
                content=(f"`{clean}` already belongs to "
                         f"{style.member_of(interaction.guild, holder.member_id, holder.member_name)}; "
                         f"remove it there first with `/invites-admin staff remove`."),
            )
            return
        await self.repos.staff_codes.assign(
            gid, member.id, member.name, clean, interaction.user.id, self.bot.clock.now()
        )
        known = clean in await self.repos.invites.live(gid)
        note = "" if known else " (not among the invites the bot has seen yet: check `/invites-admin debug`)"
        await self._send(
            interaction, ephemeral=True,
            content=f"Staff code `{clean}` saved for {style.member(member.id)}.{note}",
        )

    @staff_add.autocomplete("code")
    async def code_autocomplete(self, interaction: discord.Interaction,
                                current: str) -> list[app_commands.Choice[str]]:
        """The server's invites the bot has stored, with uses and inviter; a staff code says whose."""
        if interaction.guild is None or not interaction.permissions.manage_guild:
            return []
        gid = interaction.guild.id
        stored = await self.repos.invites.live(gid)
        staff = {s.code: s.member_name for s in await self.repos.staff_codes.active(gid)}
        return matching(current, ((code_choice(inv, staff.get(code)), code) for code, inv in stored.items()))

    @staff.command(name="remove", description="Remove a staff member's invite code (Manage Server)")
    @app_commands.describe(member="The staff member")
    async def staff_remove(self, interaction: discord.Interaction, member: discord.Member) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        removed = await self.repos.staff_codes.remove(interaction.guild.id, member.id, self.bot.clock.now())
        text = (
            f"Staff code of {style.member(member.id)} removed."
            if removed
            else (f"{style.member(member.id)} has no staff code; `/invites-admin staff list` shows who "
                  "has one.")
        )
        await self._send(interaction, ephemeral=True, content=text)

    @staff.command(name="list", description="Staff codes with invites, conversions and rate (Manage Server)")
    async def staff_list(self, interaction: discord.Interaction) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        gid = interaction.guild.id
        staff = await self.repos.staff_codes.active(gid)
        invites = await self.repos.joins.code_counts(gid, [s.code for s in staff])
        conversions = await self.repos.joins.conversion_counts(gid)
        embed = staff_embed(interaction.guild, staff, invites, conversions)
        await self._send(interaction, ephemeral=True, embed=embed)

    # ---- admin ----------------------------------------------------------------------------------
    @admin.command(
        name="bonus", description="Add (or with a negative amount, take) bonus invites (Manage Server)"
    )
    @app_commands.describe(member="Who gets the bonus", amount="Invites to add, -1000 to 1000")
    async def bonus(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        amount: app_commands.Range[int, -1000, 1000],
    ) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        gid = interaction.guild.id
        await self.repos.invite_bonus.add(gid, member.id, int(amount), f"bonus:{interaction.id}")
        summary = await self.repos.invite_stats.member_summary(gid, member.id)
        await self._send(
            interaction,
            ephemeral=True,
            content=(f"{style.signed(int(amount), 'bonus invite')} for {style.member(member.id)}: "
                     f"now {summary_line(summary)}."),
        )

    @admin.command(
        name="debug", description="Invite snapshot, live vs stored codes, permissions (Manage Server)"
    )
    async def debug(self, interaction: discord.Interaction) -> None:
        if not await self._admin(interaction):
            return
        guild = interaction.guild
        assert guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        embed = await self._debug_embed(guild)
        await self._send(interaction, ephemeral=True, embed=embed)

    async def _debug_embed(self, guild: discord.Guild) -> discord.Embed:
        state = await self.repos.invite_guilds.get(guild.id)
        stored = await self.repos.invites.live(guild.id)
        staff = await self.repos.staff_codes.active(guild.id)
        embed = discord.Embed(title="Invite tracking", colour=discord.Colour.orange())
        stored_when = style.ago(state.snapshot_at) if state.snapshot_at else "never"
        embed.add_field(name="Snapshot", value=f"{style.count(len(stored), 'invite')}, stored {stored_when}")
        embed.add_field(name="Vanity URL", value=(
            f"{style.code(state.vanity_code)}, {style.count(state.vanity_uses or 0, 'use')}"
            if state.vanity_code else "none"))
        missing = self._missing_permissions(guild, state.permission)
        embed.add_field(name="Missing bot permissions", value="\n".join(missing) or "none", inline=False)
        problems = [f"the bot lacks {missing[0]}"] if missing else []
        if state.stale:
            embed.add_field(name="Stale", value="the last invite fetch failed; joins since are unknown",
                            inline=False)
            problems.append("the last invite fetch failed: run `/invites-admin refresh`")
        problems += await self._live_field(embed, guild, stored)
        staff_lines = [
            f"{style.code(s.code)} {style.member_of(guild, s.member_id, s.member_name)}"
            + ("" if s.code in stored else " (not in the snapshot)")
            for s in staff
        ]
        embed.add_field(name="Staff codes", value=more_lines(staff_lines) or "none", inline=False)
        problems += [f"staff code {style.code(s.code)} is not among the invites" for s in staff
                     if s.code not in stored]
        announcements = self.bot.get_cog("Announcements")
        problem = announcements.problem(guild.id) if announcements is not None else None
        if problem:
            embed.add_field(name="Announcements", value=problem, inline=False)
            problems.append(f"announcements: {problem}")
        embed.description = debug_verdict(problems)
        return embed

    @staticmethod
    def _missing_permissions(guild: discord.Guild, permission: str | None) -> list[str]:
        perms = guild.me.guild_permissions if guild.me else None
        if not (perms and perms.manage_guild):
            return ["Manage Server (needed to read invites)"]
        if permission == "missing":
            return ["Manage Server (the last invite fetch was refused)"]
        return []

    async def _live_field(
        self, embed: discord.Embed, guild: discord.Guild, stored: dict[str, Any]
    ) -> list[str]:
        """The live-vs-stored field; the problems it shows, in words."""
        try:
            live = await self.tracker.fetch_live(guild.id)
        except Exception as exc:
            reason = esc(self.bot.redactor.redact(str(getattr(exc, "reason", exc))))
            embed.add_field(name="Live invites", value=f"could not fetch: {reason}", inline=False)
            return [f"the live invites could not be read ({reason})"]
        live_uses = {inv.code: inv.uses for inv in live.invites}
        groups = {
            "only on Discord": sorted(set(live_uses) - set(stored)),
            "only stored": sorted(set(stored) - set(live_uses)),
            "uses differ": sorted(c for c in set(live_uses) & set(stored) if live_uses[c] != stored[c].uses),
        }
        lines = [f"{style.count(len(live_uses), 'invite')} on Discord, {len(stored)} stored"]
        lines += [f"{label}: {', '.join(esc(c) for c in codes)}" for label, codes in groups.items() if codes]
        embed.add_field(name="Live vs stored", value="\n".join(lines) if len(lines) > 1 else
                        lines[0] + ": they match", inline=False)
        differing = sum(len(codes) for codes in groups.values())
        if differing:
            differ = style.verb(differing, "differs", "differ")
            codes = style.count(differing, "code")
            return [f"{codes} {differ} from Discord: `/invites-admin refresh` stores them again"]
        return []

    @admin.command(
        name="refresh", description="Fetch the invites now and store the snapshot (Manage Server)"
    )
    async def refresh(self, interaction: discord.Interaction) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        done = self.tracker.submit(interaction.guild.id, "refresh", wait=True)
        assert done is not None
        result = await done
        await self._send(interaction, ephemeral=True, content=refresh_text(result))

    @admin.command(name="reset", description="Reset invite counts, backed up first (Manage Server)")
    @app_commands.describe(member="Whose counts (default: everyone's, after a confirmation)")
    async def reset(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        if member is not None:
            await self._reset(interaction, member)
        elif self.bot.guild_jobs.running(interaction.guild.id):
            await self._busy(interaction)
        else:  # everyone: only once the admin confirms
            view = ConfirmView(interaction.user.id, interaction, lambda click: self._reset(click, None))
            await self._send(interaction, ephemeral=True, content=CONFIRM_RESET, view=view)

    async def _reset(self, interaction: discord.Interaction, member: discord.Member | None) -> None:
        """Reset one member's invites or everyone's (`interaction`: the command, or the click that
        confirmed it), backed up first; the answer carries the backup id."""
        assert interaction.guild is not None
        with self.bot.guild_jobs.hold(interaction.guild.id, "an invite reset") as mine:
            if not mine:
                await self._busy(interaction, "invites-admin reset")
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            resumed = await resume_interrupted(self.repos, interaction.guild.id, self.bot.clock.now())
            result = await reset_invites(
                self.repos,
                interaction.guild.id,
                member.id if member else None,
                interaction.user.id,
                self.bot.clock.now(),
            )
        who = style.member(member.id) if member else "everyone"
        await self._send(
            interaction,
            ephemeral=True,
            content=resumed_text(resumed) + (
                f"Invites of {who} reset: {cleared_text(result.joins, result.bonus_members)}. "
                f"Backup id: `{result.backup_id}` - undo with `/invites-admin restore {result.backup_id}`."
            ),
        )

    @admin.command(name="restore", description="Undo a reset from its backup (Manage Server)")
    @app_commands.describe(backup_id="The id the reset answered with, like ib-0123456789ab")
    async def restore(self, interaction: discord.Interaction, backup_id: str) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        with self.bot.guild_jobs.hold(interaction.guild.id, "an invite restore") as mine:
            if not mine:
                await self._busy(interaction)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            backup_id = backup_id.strip()
            resumed = await resume_interrupted(
                self.repos, interaction.guild.id, self.bot.clock.now(), skip=backup_id
            )
            try:
                result = await restore_invites(
                    self.repos, interaction.guild.id, backup_id, self.bot.clock.now()
                )
            except RestoreError as exc:
                await self._send(interaction, ephemeral=True, content=resumed_text(resumed) + str(exc))
                return
        interrupted = (
            " Its reset had been interrupted; what it had cleared is back."
            if result.was in ("saving", "saved") else ""
        )
        await self._send(
            interaction,
            ephemeral=True,
            content=resumed_text(resumed) + (
                f"Backup `{result.backup_id}` restored: "
                f"{given_back_text(result.joins, result.bonus_members)}.{interrupted}"
            ),
        )


    @restore.autocomplete("backup_id")
    async def backup_autocomplete(self, interaction: discord.Interaction,
                                  current: str) -> list[app_commands.Choice[str]]:
        """The server's invite backups, newest first, with whose invites and their state."""
        if interaction.guild is None or not interaction.permissions.manage_guild:
            return []
        headers = await self.repos.invite_backups.recent(interaction.guild.id, BACKUPS_SUGGESTED)
        return matching(current, ((backup_choice(h, interaction.guild), h.backup_id) for h in headers))


def code_choice(invite: Any, staff_name: str | None) -> str:
    """`abc · 3 uses · by ada · staff code of bob`: an invite as an autocomplete suggestion."""
    parts = [invite.code, style.count(invite.uses, "use")]
    parts += [f"by {invite.inviter_name}"] if invite.inviter_name else []
    parts += [f"staff code of {staff_name}"] if staff_name else []
    return " · ".join(parts)


def backup_choice(header: Any, guild: discord.Guild) -> str:
    """`ib-0123456789ab · everyone · 2026-03-10 12:00 UTC · applied`: a backup as a suggestion."""
    if header.member_id:
        member = guild.get_member(header.member_id)
        who = member.display_name if member else "a former member"
    else:
        who = "everyone"
    return f"{header.backup_id} · {who} · {header.created_at:%Y-%m-%d %H:%M} UTC · {header.status}"


def debug_verdict(problems: list[str]) -> str:
    """The one-line verdict leading `/invites-admin debug`."""
    if not problems:
        return "**All good:** invites are read and stored, and the snapshot matches Discord."
    more = f" (and {len(problems) - 1} more below)" if len(problems) > 1 else ""
    return f"**Needs attention:** {problems[0]}{more}."


def resumed_text(resumed: list[Resumed]) -> str:
    """Lines telling the admin which interrupted resets / restores were finished first."""
    lines = []
    for item in resumed:
        r = item.result
        if item.action == "reset":
            cleared = cleared_text(r.joins, r.bonus_members)
            lines.append(f"An interrupted reset was finished first ({cleared}): backup `{r.backup_id}` - "
                         f"undo with `/invites-admin restore {r.backup_id}`.")
        else:
            lines.append(f"An interrupted restore of backup `{r.backup_id}` was finished first.")
    return "".join(line + "\n" for line in lines)


def refresh_text(result: dict[str, Any]) -> str:
    invites = style.count(int(result.get("invites") or 0), "invite")
    if result.get("status") == "ok" and result.get("stored"):
        reconciled = style.count(int(result.get("reconciled") or 0), "join")
        return f"Snapshot stored: {invites}; {reconciled} reconciled."
    if result.get("status") == "ok":
        return (f"Read {invites}; joins are still being matched, the snapshot is stored once they "
                "are settled.")
    return (f"Could not read the invites ({result.get('status')}); the snapshot was not changed. "
            "`/invites-admin debug` shows what is missing.")


def cleared_text(joins: int, bonus_members: int) -> str:
    """What a reset cleared, in words: `3 joins no longer counted, bonus invites of 1 member cleared`."""
    if not joins and not bonus_members:
        return "there was nothing to clear"
    parts = [f"{style.count(joins, 'join')} no longer counted"] if joins else []
    parts += [f"bonus invites of {style.count(bonus_members, 'member')} cleared"] if bonus_members else []
    return ", ".join(parts)


def given_back_text(joins: int, bonus_members: int) -> str:
    if not joins and not bonus_members:
        return "there was nothing to give back"
    parts = [f"{style.count(joins, 'join')} counted again"] if joins else []
    parts += [f"bonus invites of {style.count(bonus_members, 'member')} given back"] if bonus_members else []
    return ", ".join(parts)
