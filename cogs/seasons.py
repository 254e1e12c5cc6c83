"""`/season start|list` (Manage Server; docs/seasons.md): named seasons of the guild's activity.

A season counts from 00:00 (server time zone) of the day it starts until the next season starts;
`/top` and `/ud` show it with `period: season`, and `/top season:<name>` any season, earlier ones
too. A season starting today is announced with the `season_started` event (guild): the activity
roles' `season` rules are evaluated again. The logic is `app.tracking.seasons`; this cog only talks
to Discord.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.tracking import seasons as season_logic
from app.tracking.seasons import MAX_NAME, STARTS, Season, SeasonRefused, current_of, day_start
from app.wiring.commands import answer
from app.wiring.reply_limits import fit_embed
from cogs import style
from cogs.settings import require_manage_guild
from cogs.text import safe_name

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
LIST_PAGE = 15  # seasons per page of /season list
START_CHOICES = [app_commands.Choice(name=f"{when} (00:00, server time)", value=when) for when in STARTS]


def refusal_text(refused: SeasonRefused) -> str:
    name, day = safe_name(refused.name), refused.day
    return {
        season_logic.TOO_LONG: f"A season's name is at most {MAX_NAME} characters.",
        season_logic.UNPRINTABLE: "A season's name is letters, digits, spaces and punctuation only.",
        season_logic.TAKEN: f"This server has a season named **{name}** already; pick another name.",
        season_logic.NOT_AFTER: f"**{name}** started on {day}; a new season starts on a later day: use "
                                "`starts: tomorrow`.",
        season_logic.NEXT_WAITING: f"**{name}** starts tomorrow ({day}); the next season can start once "
                                   "it has begun.",
        season_logic.RACE: "Another season was started at the same moment; see `/season list`.",
    }[refused.reason]


def season_line(season: Season, today: str) -> str:
    """`3. **Spring**: 2026-03-01 to 2026-05-31`, `since 2026-06-01 (current)`, `from ... (next)`."""
    name = f"{season.number}. **{safe_name(season.name)}**"
    if season.start_day > today:
        return f"{name}: from {season.start_day} (starts tomorrow)"
    if season.end_day is None or season.end_day > today:
        return f"{name}: since {season.start_day} (current)"
    return f"{name}: {season.start_day} to {season.last_day}"


def list_embed(seasons: list[Season], today: str, page: int, time_zone: str) -> discord.Embed:
    """Page `page` (0-based, clamped) of the seasons, the latest first."""
    pages = max(1, math.ceil(len(seasons) / LIST_PAGE))
    page = min(max(page, 0), pages - 1)
    latest_first = list(reversed(seasons))[page * LIST_PAGE:(page + 1) * LIST_PAGE]
    embed = discord.Embed(title="Seasons", colour=discord.Colour.blurple())
    if not seasons:
        embed.description = "No season yet; `/season start` starts one."
        return embed
    embed.description = "\n".join(season_line(s, today) for s in latest_first)
    more = f" · `/season list page:{page + 2}` for older ones" if page + 1 < pages else ""
    embed.set_footer(text=f"Days in server time ({time_zone}), each season up to the next one's start · "
                          f"Page {page + 1}/{pages}{more}")
    return embed


class SeasonsCog(commands.Cog, name="Seasons"):
    season_group = app_commands.Group(
        name="season", description="Seasons: leaderboards that start over (Manage Server)", guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.seasons = bot.seasons

    @season_group.command(name="start", description="Start a new season; the current one ends the day before")
    @app_commands.describe(
        name=f"The season's name, 1 to {MAX_NAME} characters, unique here (default: Season N)",
        starts="When it starts: at 00:00 today (default) or tomorrow, in the server's time zone",
    )
    @app_commands.choices(starts=START_CHOICES)
    async def start(self, interaction: discord.Interaction,
                    name: app_commands.Range[str, 1, MAX_NAME] | None = None, starts: str = "today") -> None:
        if not await require_manage_guild(interaction):
            return
        guild = interaction.guild
        assert guild is not None
        if starts not in STARTS:
            await answer(interaction, "`starts` is `today` or `tomorrow`.")
            return
        try:
            season, tz = await self.seasons.start(guild.id, name, starts, interaction.user.id)
        except SeasonRefused as refused:
            await answer(interaction, refusal_text(refused))
            return
        seasons = await self.seasons.all(guild.id)
        before = seasons[-2] if len(seasons) > 1 else None
        text = (f"Season **{safe_name(season.name)}** counts from 00:00 {starts} in the server's time zone "
                f"({tz.key}): {style.when(day_start(season.start_day, tz), 'F')}. ")
        if before is not None:
            text += f"**{safe_name(before.name)}** ends with {before.last_day} and stays readable. "
        text += "`/top period:this season` shows it, and `/top season:` with its name any time later."
        await answer(interaction, text)
        if season.start_day <= await self.seasons.today(guild.id):
            # current now: whoever follows the season (the activity roles, cogs/rewards.py) looks again;
            # a season starting tomorrow is picked up by their next check on that day
            self.bot.dispatch("season_started", guild)

    @season_group.command(name="list", description="The seasons of this server and their days")
    @app_commands.describe(page="Which page, the latest seasons first (default: 1)")
    async def list_(self, interaction: discord.Interaction,
                    page: app_commands.Range[int, 1, 10_000] = 1) -> None:
        if not await require_manage_guild(interaction):
            return
        guild = interaction.guild
        assert guild is not None
        config = await self.bot.repos.guild_settings.get(guild.id)
        seasons = await self.seasons.all(guild.id)
        today = await self.seasons.today(guild.id)
        current = current_of(seasons, today)
        embed = list_embed(seasons, today, page - 1, config.time_zone)
        if current is not None:
            embed.add_field(name="Current", value=f"**{safe_name(current.name)}** since {current.start_day}")
        await interaction.response.send_message(embed=fit_embed(embed), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
