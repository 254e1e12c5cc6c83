"""Invite tracking listeners and the `/invites` commands.

Listeners only queue events into `InviteTracker` (`app/tracking/invites.py`, in arrival order);
the tracker's per-guild worker does the rest. Commands read through repositories (`bot.repos`),
never a collection.

Commands (Discord allows default member permissions only on a top-level command, and `/invites`
holds member commands too, so the admin subcommands check Manage Guild at runtime and refuse
ephemerally): show, who, leaderboard (members); staff add/remove/list, bonus, debug, refresh,
reset, restore (Manage Guild).
"""

from __future__ import annotations

import logging
import math
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
from app.wiring.container import Repositories
from app.wiring.limits import LEADERBOARD_LIMIT, cooldown
from app.wiring.reply_limits import fit_reply
from app.wiring.validation import invite_code, reject, valid_id, valid_invite_event
from cogs.invite_tracker import DiscordGuildAccess, joiner_of, make_invite_tracker, stored_from_invite
from cogs.invite_views import (
    NO_MENTIONS,
    PAGE_SIZE,
    LeaderboardView,
    esc,
    leaderboard_embed,
    member_embed,
    period_since,
    staff_embed,
    summary_line,
    who_embed,
)
from cogs.stats import PERIOD_CHOICES

log = logging.getLogger(__name__)
RECENT = 5


def clean_code(value: str) -> str | None:
    """An invite code from a code or an invite link (discord.gg/..., discord.com/invite/...); None
    when it is not one (strict pattern: `app.wiring.validation.invite_code`)."""
    return invite_code(value)


class InvitesCog(commands.Cog, name="Invites"):
    invites = app_commands.Group(name="invites", description="Invite tracking", guild_only=True)
    staff = app_commands.Group(name="staff", description="Staff invite codes", parent=invites)

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
                          "/invites reset or restore finishes them", guild.id, exc or type(exc).__name__)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self._available(guild)

    def _available(self, guild: discord.Guild) -> None:
        """Sync the guild now; with part of its member list, sync again once the list is whole
        (the tracker looks for members who joined while the bot was down only in a whole list)."""
        self.tracker.guild_available(guild.id)
        self.access.load_members(guild, self.tracker.guild_available)

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
        self.tracker.gateway_back()

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
        await self._send(
            interaction, ephemeral=True, content="You need the **Manage Server** permission for this command."
        )
        return False

    async def _busy(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        running = self.bot.guild_jobs.running(interaction.guild.id) or "another job"
        await self._send(
            interaction, ephemeral=True,
            content=f"{running.capitalize()} is running in this server; try again when it is done.",
        )

    def _name(self, guild: discord.Guild, member_id: int, fallback: str | None = None) -> str:
        member = guild.get_member(member_id)
        return member.display_name if member else (fallback or str(member_id))

    # ---- member commands ------------------------------------------------------------------------
    @invites.command(name="show", description="A member's invite counts and the last members they brought in")
    @app_commands.describe(member="Whose invites (default: yours)")
    async def show(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        assert interaction.guild is not None
        target = member or interaction.user
        if target.id != interaction.user.id and not interaction.permissions.manage_guild:
            config = await self.repos.guild_settings.get(interaction.guild.id)
            if not config.members_view_others:
                await self._send(
                    interaction, ephemeral=True, content="This server lets members see only their own."
                )
                return
        summary = await self.repos.invite_stats.member_summary(interaction.guild.id, target.id)
        recent = await self.repos.joins.brought_in_by(interaction.guild.id, target.id, RECENT)
        await self._send(interaction, embed=member_embed(target.display_name, summary, recent))

    @invites.command(
        name="who", description="Who invited a member, by which code, when, and how it was found"
    )
    @app_commands.describe(member="The member who joined")
    async def who(self, interaction: discord.Interaction, member: discord.Member) -> None:
        assert interaction.guild is not None
        if member.id != interaction.user.id and not interaction.permissions.manage_guild:
            config = await self.repos.guild_settings.get(interaction.guild.id)
            if not config.members_view_others:
                await self._send(
                    interaction, ephemeral=True, content="This server lets members see only their own."
                )
                return
        join = await self.repos.joins.latest_for_member(interaction.guild.id, member.id)
        await self._send(interaction, embed=who_embed(member.display_name, join))

    @invites.command(name="leaderboard", description="Members ranked by invites")
    @app_commands.describe(period="Members brought in during (default: all time; bonus counts only all time)")
    @app_commands.choices(period=PERIOD_CHOICES)
    @cooldown("invites leaderboard", LEADERBOARD_LIMIT)
    async def leaderboard(self, interaction: discord.Interaction, period: str = "all") -> None:
        guild = interaction.guild
        assert guild is not None
        config = await self.repos.guild_settings.get(guild.id)
        since = period_since(period, self.bot.clock.now(), config.time_zone)

        async def load(page: int) -> tuple[discord.Embed, int, int]:
            rows = await self.repos.invite_stats.leaderboard(guild.id, since)
            pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
            page = min(max(page, 0), pages - 1)
            start = page * PAGE_SIZE
            names = {r.member_id: self._name(guild, r.member_id) for r in rows[start : start + PAGE_SIZE]}
            return leaderboard_embed(rows, names, period, page, pages), page, pages

        embed, page, pages = await load(0)
        view = LeaderboardView(interaction.user.id, load, page, pages)
        await self._send(interaction, embed=embed, view=view)

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
            await self._send(interaction, ephemeral=True, content="That is not an invite code.")
            return
        holder = await self.repos.staff_codes.by_code(gid, clean)
        if holder is not None and holder.member_id != member.id:
            await self._send(
                interaction,
                ephemeral=True,
                content=f"`{clean}` already belongs to {esc(holder.member_name)}; remove it there first.",
            )
            return
        await self.repos.staff_codes.assign(
            gid, member.id, member.name, clean, interaction.user.id, self.bot.clock.now()
        )
        known = clean in await self.repos.invites.live(gid)
        note = "" if known else " (not among the invites the bot has seen yet: check `/invites debug`)"
        await self._send(
            interaction, ephemeral=True, content=f"Staff code `{clean}` saved for {esc(member.name)}.{note}"
        )

    @staff.command(name="remove", description="Remove a staff member's invite code (Manage Server)")
    @app_commands.describe(member="The staff member")
    async def staff_remove(self, interaction: discord.Interaction, member: discord.Member) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        removed = await self.repos.staff_codes.remove(interaction.guild.id, member.id, self.bot.clock.now())
        text = (
            f"Staff code of {esc(member.name)} removed."
            if removed
            else f"{esc(member.name)} has no staff code."
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
        await self._send(interaction, ephemeral=True, embed=staff_embed(staff, invites, conversions))

    # ---- admin ----------------------------------------------------------------------------------
    @invites.command(
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
            content=f"Bonus {int(amount):+d} for {esc(member.name)}: now {summary_line(summary)}.",
        )

    @invites.command(
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
        now = self.bot.clock.now()
        embed = discord.Embed(title="Invite tracking", colour=discord.Colour.orange())
        age = (
            f"{int((now - state.snapshot_at).total_seconds())}s ago" if state.snapshot_at else "never stored"
        )
        embed.add_field(name="Snapshot", value=f"{len(stored)} invites, stored {age}")
        embed.add_field(name="Vanity", value=f"{state.vanity_code or '-'} ({state.vanity_uses or 0} uses)")
        perms = guild.me.guild_permissions if guild.me else None
        missing = [] if perms and perms.manage_guild else ["Manage Server (needed to read invites)"]
        if state.permission == "missing" and not missing:
            missing.append("Manage Server (the last invite fetch was refused)")
        embed.add_field(name="Missing bot permissions", value="\n".join(missing) or "none", inline=False)
        if state.stale:
            embed.add_field(
                name="Stale", value="the last invite fetch failed; joins since are unknown", inline=False
            )
        try:
            live = await self.tracker.fetch_live(guild.id)
        except Exception as exc:
            embed.add_field(
                name="Live invites",
                value=f"could not fetch: {esc(self.bot.redactor.redact(str(getattr(exc, 'reason', exc))))}",
                inline=False,
            )
        else:
            live_uses = {inv.code: inv.uses for inv in live.invites}
            only_live = sorted(set(live_uses) - set(stored))
            only_stored = sorted(set(stored) - set(live_uses))
            differ = sorted(c for c in set(live_uses) & set(stored) if live_uses[c] != stored[c].uses)
            embed.add_field(
                name="Live vs stored",
                value=(
                    f"{len(live_uses)} live, {len(stored)} stored\n"
                    f"only live: {', '.join(only_live) or '-'}\n"
                    f"only stored: {', '.join(only_stored) or '-'}\n"
                    f"uses differ: {', '.join(differ) or '-'}"
                ),
                inline=False,
            )
        staff_lines = [
            f"`{s.code}` {esc(s.member_name)}" + ("" if s.code in stored else " (not in the snapshot)")
            for s in staff
        ]
        embed.add_field(name="Staff codes", value="\n".join(staff_lines) or "none", inline=False)
        announcements = self.bot.get_cog("Announcements")
        problem = announcements.problem(guild.id) if announcements is not None else None
        if problem:
            embed.add_field(name="Announcements", value=problem, inline=False)
        return embed

    @invites.command(
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
        if result.get("status") == "ok" and result.get("stored"):
            text = f"Snapshot stored: {result['invites']} invites; {result['reconciled']} joins reconciled."
        elif result.get("status") == "ok":
            text = (f"Read {result['invites']} invites; joins are still being matched, the snapshot "
                    "is stored once they are settled.")
        else:
            text = f"Could not read the invites ({result.get('status')}); the snapshot was not changed."
        await self._send(interaction, ephemeral=True, content=text)

    @invites.command(name="reset", description="Reset invite counts, backed up first (Manage Server)")
    @app_commands.describe(member="Whose counts (default: everyone's)")
    async def reset(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        if not await self._admin(interaction):
            return
        assert interaction.guild is not None
        with self.bot.guild_jobs.hold(interaction.guild.id, "an invite reset") as mine:
            if not mine:
                await self._busy(interaction)
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
        who = esc(member.name) if member else "everyone"
        await self._send(
            interaction,
            ephemeral=True,
            content=resumed_text(resumed) + (
                f"Invites of {who} reset ({result.joins} joins, {result.bonus_members} bonuses). "
                f"Backup id: `{result.backup_id}` - undo with `/invites restore {result.backup_id}`."
            ),
        )

    @invites.command(name="restore", description="Undo a reset from its backup (Manage Server)")
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
                f"Backup `{result.backup_id}` restored "
                f"({result.joins} joins, {result.bonus_members} bonuses given back).{interrupted}"
            ),
        )


def resumed_text(resumed: list[Resumed]) -> str:
    """Lines telling the admin which interrupted resets / restores were finished first."""
    lines = []
    for item in resumed:
        r = item.result
        if item.action == "reset":
            lines.append(f"An interrupted reset was finished first ({r.joins} joins, {r.bonus_members} "
                         f"bonuses): backup `{r.backup_id}` - undo with `/invites restore {r.backup_id}`.")
        else:
            lines.append(f"An interrupted restore of backup `{r.backup_id}` was finished first.")
    return "".join(line + "\n" for line in lines)
