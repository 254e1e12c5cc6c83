"""Embeds and the leaderboard pager of the `/invites` commands (no data access here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import discord

from app.tracking.invite_stats import InviteSummary
from app.wiring.reply_limits import fit_embed, more_lines
from cogs.text import HINT_TEXT, safe_name
from repositories.joins import StoredJoin
from repositories.staff_codes import StaffCode

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


def stamp(when: datetime | None) -> str:
    return discord.utils.format_dt(when, "f") if when else "?"


def summary_line(summary: InviteSummary) -> str:
    return (
        f"**{summary.total}** invites ({summary.regular} regular, {summary.left} left, "
        f"{summary.fake} fake, {summary.bonus:+d} bonus)"
    )


def member_embed(name: str, summary: InviteSummary, recent: Sequence[StoredJoin]) -> discord.Embed:
    embed = discord.Embed(title=f"Invites of {esc(name)}", colour=discord.Colour.green())
    embed.add_field(name="Total", value=str(summary.total))
    embed.add_field(name="Regular", value=str(summary.regular))
    embed.add_field(name="Left", value=str(summary.left))
    embed.add_field(name="Fake", value=str(summary.fake))
    embed.add_field(name="Bonus", value=str(summary.bonus))
    lines = [
        f"{esc(j.member_name)} ({j.member_id}), {stamp(j.joined_at)}"
        + (" - left" if j.member_status == "left" else "")
        + (f" - fake ({j.fake_reason.replace('_', ' ')})" if j.fake_reason else "")
        for j in recent
    ]
    embed.add_field(name="Last members brought in", value=more_lines(lines) or "nobody yet", inline=False)
    return embed


def who_embed(name: str, join: StoredJoin | None) -> discord.Embed:
    embed = discord.Embed(title=f"How {esc(name)} joined", colour=discord.Colour.green())
    if join is None:
        embed.description = "No join recorded (they were here before tracking started)."
        return embed
    if join.inviter_id:
        inviter = f"{esc(join.inviter_name)} ({join.inviter_id})"
    elif join.source == "vanity" or (join.source == "downtime" and not join.inviter_id and join.code):
        inviter = "vanity URL"
    else:
        inviter = "unknown"
    embed.add_field(name="Invited by", value=inviter)
    embed.add_field(name="Code", value=esc(join.code) if join.code else "-")
    embed.add_field(name="Source", value=SOURCE_LABELS.get(join.source, join.source))
    embed.add_field(name="Joined", value=stamp(join.joined_at))
    if join.candidates and not join.code:
        candidates = more_lines([esc(c) for c in join.candidates], what="more codes").replace("\n", ", ")
        embed.add_field(name="Candidate codes", value=candidates, inline=False)
    notes = []
    if join.hint in HINT_TEXT:
        notes.append(f"no invite use: {HINT_TEXT[join.hint]}")
    if join.counted == "rejoin":
        notes.append("rejoin (counted once, for the original inviter)")
    if join.fake_reason:
        notes.append(f"fake: {join.fake_reason.replace('_', ' ')}")
    if join.member_status == "left":
        notes.append("has left")
    if join.reason:
        notes.append(f"reason: {join.reason.replace('_', ' ')}")
    if notes:
        embed.add_field(name="Notes", value="\n".join(notes), inline=False)
    return embed


def leaderboard_embed(
    rows: Sequence[InviteSummary], names: dict[int, str], period: str, page: int, pages: int
) -> discord.Embed:
    embed = discord.Embed(title=f"Invite leaderboard - {PERIOD_LABELS[period]}", colour=discord.Colour.gold())
    start = page * PAGE_SIZE
    lines = [
        f"**{start + i + 1}.** {esc(names.get(r.member_id, str(r.member_id)))} - {summary_line(r)}"
        for i, r in enumerate(rows[start : start + PAGE_SIZE])
    ]
    embed.description = "\n".join(lines) or "No invites yet."
    embed.set_footer(text=f"Page {page + 1}/{pages}")
    return embed


def staff_embed(
    staff: Sequence[StaffCode], invites: dict[str, int], conversions: dict[int, int]
) -> discord.Embed:
    embed = discord.Embed(title="Staff invite codes", colour=discord.Colour.blurple())
    for entry in staff:
        brought = invites.get(entry.code, 0)
        converted = conversions.get(entry.member_id, 0)
        rate = f"{100 * converted / brought:.1f}%" if brought else "0.0%"
        embed.add_field(
            name=f"{esc(entry.member_name)} ({entry.member_id})",
            value=f"Code: `{entry.code}`\nInvites: {brought} | Conversions: {converted}\nRate: {rate}",
            inline=False,
        )
    if not staff:
        embed.description = "No staff codes yet: `/invites staff add <member> <code>`."
    return embed


Button = discord.ui.Button["LeaderboardView"]
PageLoader = Callable[[int], Awaitable[tuple[discord.Embed, int, int]]]


class LeaderboardView(discord.ui.View):
    """Previous/Next for one `/invites leaderboard` message; only its requester pages it."""

    def __init__(self, owner_id: int, load: PageLoader, page: int, pages: int) -> None:
        super().__init__(timeout=900)
        self.owner_id, self.load, self.page, self.pages = owner_id, load, page, pages
        self.previous.disabled = page <= 0
        self.next.disabled = page >= pages - 1

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the member who ran this command can page it.",
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
        embed, page, pages = await self.load(page)
        view = LeaderboardView(self.owner_id, self.load, page, pages)
        self.stop()
        await interaction.response.edit_message(embed=fit_embed(embed), view=view,
                                                allowed_mentions=NO_MENTIONS)
