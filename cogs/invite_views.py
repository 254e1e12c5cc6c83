"""Embeds and the leaderboard pager of the `/invites` commands (no data access here)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import discord

from app.tracking.invite_stats import InviteSummary
from app.wiring.commands import GatedView, read_or_defer, show_in_place
from app.wiring.reply_limits import more_lines
from cogs import style
from cogs.text import HINT_TEXT, safe_name
from repositories.joins import StoredJoin
from repositories.staff_codes import StaffCode

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
PAGE_SIZE = 10
PERIOD_DAYS = {"today": 1, "7d": 7, "30d": 30, "all": None}
PERIOD_LABELS = {"today": "today", "7d": "last 7 days", "30d": "last 30 days", "all": "all time"}
SOURCE_LABELS = {
    "invite": "invite",
    "vanity": "vanity URL",
    "downtime": "matched after downtime",
    "unknown": "unknown",
    "ambiguous": "ambiguous",
}


def esc(text: str | None) -> str:
    """Markdown escaped and mentions (@everyone, <@&id>, <@id>) defused, for names and codes."""
    return safe_name(text)


def period_since(period: str, now: datetime, time_zone: str) -> datetime | None:
    """Start of the period in the guild's time zone (None: all time); KeyError on a bad period."""
    days = PERIOD_DAYS[period]
    if days is None:
        return None
    try:
        tz = ZoneInfo(time_zone)
    except (ValueError, KeyError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return start.astimezone(now.tzinfo)


@dataclass(frozen=True)
class FakeRules:
    """The guild's fake thresholds, quoted beside a fake join's figures."""

    account_days: int = 0
    left_within_seconds: int = 0


def summary_line(summary: InviteSummary) -> str:
    """`**2 invites** (3 joins, 1 left)`, or `No invites yet`."""
    return style.invite_total(summary.total, summary.regular, summary.left, summary.fake, summary.bonus)


def fake_note(join: StoredJoin, rules: FakeRules) -> str:
    """Why the join is fake, with the account's age or the time stayed and the threshold ("" if not)."""
    account_days = (
        (join.joined_at - join.account_created_at).days if join.account_created_at is not None else None
    )
    stayed = int((join.left_at - join.joined_at).total_seconds()) if join.left_at is not None else None
    return style.fake_text(join.fake_reason, account_days=account_days, threshold_days=rules.account_days,
                           stayed_seconds=stayed, threshold_seconds=rules.left_within_seconds)


def joined_member(join: StoredJoin) -> str:
    return style.member(join.member_id, join.member_name, present=join.member_status != "left")


def brought_in_line(join: StoredJoin, rules: FakeRules) -> str:
    fake = fake_note(join, rules)
    return f"{joined_member(join)} joined {style.ago(join.joined_at)}" + (f" - {fake}" if fake else "")


def member_embed(
    name: str, member_id: int, summary: InviteSummary, recent: Sequence[StoredJoin], rules: FakeRules
) -> discord.Embed:
    embed = discord.Embed(
        title=f"Invites of {esc(name)}",
        description=f"{style.member(member_id)}: {summary_line(summary)}",
        colour=discord.Colour.green(),
    )
    lines = [brought_in_line(j, rules) for j in recent]
    embed.add_field(name="Last members brought in", value=more_lines(lines) or "Nobody yet", inline=False)
    return embed


def inviter_text(guild: discord.Guild, join: StoredJoin) -> str:
    if join.inviter_id:
        return style.member_of(guild, join.inviter_id, join.inviter_name)
    if join.source == "vanity" or (join.source == "downtime" and join.code):
        return "nobody (the vanity URL)"
    return "unknown"


def who_embed(guild: discord.Guild, name: str, member_id: int, join: StoredJoin | None,
              rules: FakeRules) -> discord.Embed:
    embed = discord.Embed(title=f"How {esc(name)} joined", colour=discord.Colour.green())
    if join is None:
        embed.description = (f"{style.member(member_id)}: no join recorded (they were here before "
                             "tracking started).")
        return embed
    embed.description = f"{joined_member(join)} joined {style.when(join.joined_at)}"
    embed.add_field(name="Invited by", value=inviter_text(guild, join))
    embed.add_field(name="Code", value=style.code(join.code))
    if join.source != "vanity":  # the inviter already says "the vanity URL"
        embed.add_field(name="Source", value=SOURCE_LABELS.get(join.source, join.source))
    if join.candidates and not join.code:
        candidates = more_lines([esc(c) for c in join.candidates], what="more codes").replace("\n", ", ")
        embed.add_field(name="Candidate codes", value=candidates, inline=False)
    notes = who_notes(join, rules)
    if notes:
        embed.add_field(name="Notes", value="\n".join(notes), inline=False)
    return embed


def who_notes(join: StoredJoin, rules: FakeRules) -> list[str]:
    notes = []
    if join.hint in HINT_TEXT:
        notes.append(f"no invite use: {HINT_TEXT[join.hint]}")
    if join.counted == "rejoin":
        notes.append("rejoin (counted once, for the original inviter)")
    fake = fake_note(join, rules)
    if fake:
        notes.append(fake)
    if join.member_status == "left":
        notes.append(f"left {style.ago(join.left_at)}" if join.left_at else "has left")
    if join.reason:
        notes.append(f"reason: {join.reason.replace('_', ' ')}")
    return notes


def leaderboard_embed(
    rows: Sequence[InviteSummary], guild: discord.Guild, period: str, page: int, pages: int,
    retained: Mapping[int, str] | None = None,
) -> discord.Embed:
    """`rows`: the page's rows (at most PAGE_SIZE); `retained` (`sort: retained_30d`): each row's
    30-day retention in words."""
    title = f"Invite leaderboard - {PERIOD_LABELS[period]}"
    if retained is not None:
        title += ", by members who stayed 30 days"
    embed = discord.Embed(title=title, colour=discord.Colour.gold())
    start = page * PAGE_SIZE
    lines = [
        f"**{start + i + 1}.** {style.member_of(guild, r.member_id)} - {summary_line(r)}"
        + (f" · stayed 30 days: {retained.get(r.member_id, style.NOTHING)}" if retained is not None else "")
        for i, r in enumerate(rows[:PAGE_SIZE])
    ]
    embed.description = "\n".join(lines) or "No invites yet."
    embed.set_footer(text=f"Page {page + 1}/{pages}")
    return embed


def own_invites_embed(summary: InviteSummary, guild: discord.Guild, period: str) -> discord.Embed:
    """`/invites leaderboard` for a member who may see only their own figures (`app.wiring.privacy`)."""
    embed = discord.Embed(title=f"Invite leaderboard - {PERIOD_LABELS[period]}", colour=discord.Colour.gold())
    own = f"{style.member_of(guild, summary.member_id)} - {summary_line(summary)}"
    embed.description = f"{style.own_row_only('invites leaderboard')}\n\n{own}"
    return embed


def staff_embed(
    guild: discord.Guild, staff: Sequence[StaffCode], invites: dict[str, int], conversions: dict[int, int]
) -> discord.Embed:
    embed = discord.Embed(title="Staff invite codes", colour=discord.Colour.blurple())
    lines = []
    for entry in staff:
        brought = invites.get(entry.code, 0)
        converted = conversions.get(entry.member_id, 0)
        lines.append(
            f"{style.member_of(guild, entry.member_id, entry.member_name)}: code {style.code(entry.code)}, "
            f"{style.count(brought, 'invite')}, {style.count(converted, 'conversion')} "
            f"(rate {style.percent(converted, brought)})"
        )
    embed.description = (more_lines(lines, 4096) if lines
                         else "No staff codes yet: add one with `/invites-admin staff add <member> <code>`.")
    return embed


Button = discord.ui.Button["LeaderboardView"]
PageLoader = Callable[[int], Awaitable[tuple[discord.Embed, int, int]]]


class LeaderboardView(GatedView):
    """Previous/Next for one `/invites leaderboard` message of more than one page; only its
    requester pages it."""

    def __init__(self, owner_id: int, load: PageLoader, page: int, pages: int,
                 command: str = "invites leaderboard") -> None:
        super().__init__(timeout=900)
        self.owner_id, self.load, self.page, self.pages = owner_id, load, page, pages
        self.command = command  # the board it pages (`/invites leaderboard`, `/invites retention`)
        self.previous.disabled = page <= 0
        self.next.disabled = page >= pages - 1

    @classmethod
    def when_paged(cls, owner_id: int, load: PageLoader, page: int, pages: int,
                   command: str = "invites leaderboard") -> LeaderboardView | None:
        """The pager, or None for a single page (no buttons that can only be disabled)."""
        return cls(owner_id, load, page, pages, command) if pages > 1 else None

    async def allowed(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                f"Only the member who ran this command can page it; run `/{self.command}` yourself.",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return False
        return True

    @discord.ui.button(label="Previous", custom_id="invites:lb:prev", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: Button) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="Next", custom_id="invites:lb:next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: Button) -> None:
        await self._show(interaction, self.page + 1)

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        embed, page, pages = await read_or_defer(interaction, self.load(page))
        view = LeaderboardView.when_paged(self.owner_id, self.load, page, pages,
                                          self.command)  # None: one page left
        self.stop()
        await show_in_place(interaction, embed, view)


ConfirmButton = discord.ui.Button["ConfirmView"]
CONFIRM_RESET = ("Reset the invite counts of **everyone** in this server? Every member's invites start "
                 "again from zero. A backup is taken first: the reply gives its id, and "
                 "`/invites-admin restore <id>` undoes the reset.")
RESET_CANCELLED = "Cancelled: nothing was reset."
RESET_EXPIRED = "Not confirmed within a minute: nothing was reset. Run `/invites-admin reset` again."


class ConfirmView(GatedView):
    """Confirm / Cancel under an ephemeral question; only the member who asked may answer, once."""

    def __init__(self, owner_id: int, origin: discord.Interaction,
                 confirmed: Callable[[discord.Interaction], Awaitable[None]], timeout: float = 60) -> None:
        super().__init__(timeout=timeout)
        self.owner_id, self.origin, self.confirmed = owner_id, origin, confirmed

    async def allowed(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the admin who ran `/invites-admin reset` can confirm it.", ephemeral=True,
                allowed_mentions=NO_MENTIONS)
            return False
        return True

    @discord.ui.button(label="Reset everyone", custom_id="invites:reset:confirm",
                       style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: ConfirmButton) -> None:
        self.stop()
        await self._close_question(f"{CONFIRM_RESET}\n\nConfirmed.")
        await self.confirmed(interaction)

    @discord.ui.button(label="Cancel", custom_id="invites:reset:cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: ConfirmButton) -> None:
        self.stop()
        await interaction.response.edit_message(content=RESET_CANCELLED, view=None,
                                                allowed_mentions=NO_MENTIONS)

    async def on_timeout(self) -> None:
        await self._close_question(RESET_EXPIRED)

    async def _close_question(self, text: str) -> None:
        """The question without its buttons (best effort: an expired token only leaves them)."""
        try:
            await self.origin.edit_original_response(content=text, view=None, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not close the reset question: %s", exc)
