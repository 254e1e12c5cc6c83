"""`/ud` (a member's activity, optionally as a member card image) and `/top` (paged leaderboards).

Ranks, pages and the counts of members ranked come from the in-memory boards
(`app.tracking.ranks`, `bot.ranks`) once the guild's are built, and so do the counters shown beside
them (the same values the ranks were computed from, writes kept in the outbox included); until
then, and on a standby process, from the activity repository's aggregations as before.

`/ud` also shows the member's streak of active days and, when they set one with `/goal set`, this
week's progress towards their weekly goal (`app.tracking.streaks`), from one read of the member's
day documents, which the card's bars use too.

`period: season` is the guild's current season (`app.tracking.seasons`), and `/top season:<name>`
any season of the guild: a span of days `[start, end)` the ranks in memory answer like a period.

Other cogs add fields to `/ud` by defining
`async def ud_fields(self, guild_id: int, member_id: int, period: str) -> list[tuple[str, str]]`;
the fields are appended after the activity, streak and weekly goal fields (see `build_ud_embed`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.tracking.card import MemberCard, period_bars, render_member_card, season_bars
from app.tracking.seasons import Season
from app.tracking.streaks import STREAK_DAYS, Habits, active_rule, habits, local_today
from app.tracking.voice import PERIOD_LABELS, period_start_day, zone
from app.wiring.commands import GatedView, read_or_defer, show_in_place
from app.wiring.limits import LEADERBOARD_LIMIT, UD_CHART_LIMIT, cooldown, wants_chart
from app.wiring.privacy import may_see, sight
from app.wiring.reply_limits import fit_embed
from cogs import style
from cogs.choices import matching
from cogs.goals import habit_fields
from cogs.text import safe_name
from repositories.activity import METRICS, ActivityRepository, Counters
from repositories.goals import GoalRepository, WeeklyGoal
from repositories.guild_settings import GuildConfig, GuildSettingsRepository

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
# Days of a member's history `/ud` reads for the streaks (and the card's bars): streaks are counted
# within them, a current streak longer than that shows as this many days.
PAGE_SIZE = 10
PERIOD_CHOICES = [
    app_commands.Choice(name="today", value="today"),
    app_commands.Choice(name="7 days", value="7d"),
    app_commands.Choice(name="30 days", value="30d"),
    app_commands.Choice(name="all time", value="all"),
]
# /ud and /top also offer the current season (not /invites: invites are not per season)
ACTIVITY_PERIOD_CHOICES = [*PERIOD_CHOICES, app_commands.Choice(name="this season", value="season")]
NO_SEASON = "No season yet: an admin starts one with `/season start`."
BOARD_CHOICES = [
    app_commands.Choice(name="messages", value="messages"),
    app_commands.Choice(name="voice", value="voice"),
    app_commands.Choice(name="camera", value="camera"),
    app_commands.Choice(name="streaming", value="streaming"),
]
BOARD_TITLES = {"messages": "messages", "voice": "voice time", "camera": "camera-on time",
                "streaming": "streaming time"}


BOARD_UNITS = {"messages": "message"}


def format_value(board: str, value: int) -> str:
    """A board's value with its unit: `25 messages`, `3h 05m` (`—` for no time)."""
    unit = BOARD_UNITS.get(board)
    return style.count(value, unit) if unit else style.duration(value)


@dataclass(frozen=True)
class Window:
    """What a command counts: a period (`period_start_day`) or a season, as days `[since, until)`."""

    period: str  # a key of PERIOD_LABELS
    since: str | None
    until: str | None = None
    season: Season | None = None

    @property
    def label(self) -> str:
        if self.season is None:
            return PERIOD_LABELS[self.period]
        return f"season {safe_name(self.season.name)} ({season_days(self.season)})"


def season_days(season: Season) -> str:
    """`2026-03-01 to 2026-05-31`, `since 2026-06-01`."""
    return f"{season.start_day} to {season.last_day}" if season.last_day else f"since {season.start_day}"


def season_window(season: Season) -> Window:
    return Window("season", season.start_day, season.end_day, season)


async def send(interaction: discord.Interaction, *, ephemeral: bool = False, **kwargs: Any) -> None:
    """The command's answer: the response, or after a defer the follow-up that replaces it."""
    kwargs["allowed_mentions"] = NO_MENTIONS
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=ephemeral, **kwargs)
    else:
        await interaction.response.send_message(ephemeral=ephemeral, **kwargs)


def build_ud_embed(
    member_name: str,
    period: str,
    counters: Counters,
    message_rank: int | None,
    voice_rank: int | None,
    extra_fields: Sequence[tuple[str, str]] | None = None,
    *,
    member_id: int | None = None,
    member_habits: Habits | None = None,
    period_text: str | None = None,
) -> discord.Embed:
    """The `/ud` embed: the activity fields, the streak and weekly goal (`member_habits`), then the
    `extra_fields` (name, value) pairs, all inline. `period_text`: what is counted (default: the
    period's label)."""
    period_text = period_text or PERIOD_LABELS[period]
    embed = discord.Embed(
        title=f"Activity of {safe_name(member_name)}",
        description=f"{style.member(member_id)} · {period_text}" if member_id else period_text,
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="Messages", value=style.number(counters.messages))
    embed.add_field(name="Voice", value=style.duration(counters.voice_s))
    embed.add_field(name="Camera on", value=style.duration(counters.cam_on_s))
    embed.add_field(name="Camera off", value=style.duration(counters.cam_off_s))
    embed.add_field(name="Streaming", value=style.duration(counters.stream_s))
    embed.add_field(name="Rank (messages)", value=style.rank(message_rank))
    embed.add_field(name="Rank (voice)", value=style.rank(voice_rank))
    for name, value in habit_fields(member_habits) if member_habits is not None else ():
        embed.add_field(name=name, value=value)
    for name, value in extra_fields or ():
        embed.add_field(name=name, value=value)
    return embed


def build_top_embed(
    board: str,
    period: str,
    rows: Sequence[tuple[str, int]],
    first_rank: int,
    page: int,
    pages: int,
    own: tuple[int | None, int],
    *,
    others_hidden: bool = False,
    period_text: str | None = None,
) -> discord.Embed:
    """One leaderboard page: `rows` are (member reference, value), ranked from `first_rank`;
    `others_hidden`: only the caller's rank, the board replaced by why (`app.wiring.privacy`)."""
    lines = [
        f"`#{first_rank + i}` {who} - {format_value(board, value)}" for i, (who, value) in enumerate(rows)
    ]
    description = style.own_row_only("top") if others_hidden else "\n".join(lines) or "Nobody yet."
    embed = discord.Embed(
        title=f"Top {BOARD_TITLES[board]} - {period_text or PERIOD_LABELS[period]}",
        description=description,
        colour=discord.Colour.blurple(),
    )
    rank, value = own
    own_text = f"{style.rank(rank)} - {format_value(board, value)}" if rank or value else "not ranked yet"
    embed.add_field(name="Your rank", value=own_text, inline=False)
    embed.set_footer(text=f"Page {page + 1}/{pages}")
    return embed


def select_options(choices: Sequence[app_commands.Choice[str]], labels: dict[str, str],
                   chosen: str) -> list[discord.SelectOption]:
    return [discord.SelectOption(label=labels.get(c.value, c.name).capitalize(), value=c.value,
                                 default=c.value == chosen) for c in choices]


TopSelect = discord.ui.Select["TopView"]


class TopView(GatedView):
    """Board and period selects, and Previous/Next when there is more than one page, for one `/top`
    message; only the member who ran the command uses them. Switching is not a run of `/top`: it
    does not count against the command's cooldown."""

    def __init__(self, cog: StatsCog, owner_id: int, board: str, period: str, page: int, pages: int,
                 season: str | None = None) -> None:
        super().__init__(timeout=900)
        self.cog, self.owner_id, self.board, self.period = cog, owner_id, board, period
        self.page, self.pages, self.season = page, pages, season  # season: the name of a chosen one
        self.board_select.options = select_options(BOARD_CHOICES, BOARD_TITLES, board)
        chosen = period if season is None else ""  # a season by name: none of the periods
        self.period_select.options = select_options(ACTIVITY_PERIOD_CHOICES, PERIOD_LABELS, chosen)
        if pages > 1:
            self.previous.disabled = page <= 0
            self.next.disabled = page >= pages - 1
        else:
            self.remove_item(self.previous)
            self.remove_item(self.next)

    async def allowed(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the member who ran /top can page it; run /top yourself.", ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return False
        return True

    @discord.ui.select(custom_id="top:board", placeholder="Board", row=0)
    async def board_select(self, interaction: discord.Interaction, select: TopSelect) -> None:
        await self._show(interaction, select.values[0], self.period, 0, self.season)

    @discord.ui.select(custom_id="top:period", placeholder="Period", row=1)
    async def period_select(self, interaction: discord.Interaction, select: TopSelect) -> None:
        await self._show(interaction, self.board, select.values[0], 0, None)

    @discord.ui.button(label="Previous", custom_id="top:prev", style=discord.ButtonStyle.secondary, row=2)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[TopView]) -> None:
        await self._show(interaction, self.board, self.period, self.page - 1, self.season)

    @discord.ui.button(label="Next", custom_id="top:next", style=discord.ButtonStyle.secondary, row=2)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[TopView]) -> None:
        await self._show(interaction, self.board, self.period, self.page + 1, self.season)

    async def _show(self, interaction: discord.Interaction, board: str, period: str, page: int,
                    season: str | None) -> None:
        assert interaction.guild is not None
        if board not in BOARD_TITLES or period not in PERIOD_LABELS:
            return  # not one of the options the select offered
        window = await self.cog.window(interaction.guild.id, period, season)
        if window is None:
            await interaction.response.send_message(NO_SEASON, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        embed, pages, page = await read_or_defer(interaction, self.cog.top_page(
            interaction.guild, self.owner_id, board, window, page, interaction.permissions.manage_guild))
        view = TopView(self.cog, self.owner_id, board, period, page, pages, season)
        self.stop()
        await show_in_place(interaction, embed, view)


class StatsCog(commands.Cog, name="Stats"):
    def __init__(
        self, bot: Any, activity: ActivityRepository, guild_settings: GuildSettingsRepository,
        goals: GoalRepository | None = None,
    ) -> None:
        self.bot = bot
        self.activity = activity
        self.guild_settings = guild_settings
        self.goals = goals  # None: no weekly goals shown
        self.seasons = bot.seasons

    async def window(self, guild_id: int, period: str, season_name: str | None = None) -> Window | None:
        """What `period` (or the season named `season_name`) counts today; None: no such season
        (no current one for `period: season`)."""
        if season_name is not None:
            season = await self.seasons.named(guild_id, season_name)
            return season_window(season) if season is not None else None
        if period == "season":
            season = await self.seasons.current(guild_id)
            return season_window(season) if season is not None else None
        config = await self.guild_settings.get(guild_id)
        return Window(period, period_start_day(period, self.bot.clock.now(), zone(config.time_zone)))

    # ---- /ud -------------------------------------------------------------------------------
    @app_commands.command(name="ud", description="A member's messages and voice time")
    @app_commands.describe(
        member="Whose activity (default: yours)",
        period="Which period (default: all time)",
        chart="Attach a member card: totals, ranks and the period's bars",
    )
    @app_commands.choices(period=ACTIVITY_PERIOD_CHOICES)
    @app_commands.guild_only()
    @cooldown("ud chart", UD_CHART_LIMIT, when=wants_chart)
    async def ud(self, interaction: discord.Interaction, member: discord.Member | None = None,
                 period: str = "all", chart: bool = False) -> None:
        guild = interaction.guild
        assert guild is not None
        target = member or interaction.user
        config = await self.guild_settings.get(guild.id)
        if not may_see(config.members_view_others, interaction.permissions.manage_guild,
                       interaction.user.id, target.id):
            await interaction.response.send_message(
                style.only_own("ud"), ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        private = style.private_lookup(interaction, target.id)
        window = await self.window(guild.id, period)
        if window is None:
            await interaction.response.send_message(NO_SEASON, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if chart:
            await interaction.response.defer(thinking=True, ephemeral=private)
        today = local_today(self.bot.clock.now(), zone(config.time_zone))
        (counters, message_rank, voice_rank), extra, days, member_habits = await read_or_defer(
            interaction, self.ud_read(config, target.id, window, today), ephemeral=private)
        embed = build_ud_embed(target.display_name, period, counters, message_rank, voice_rank, extra,
                               member_id=target.id, member_habits=member_habits, period_text=window.label)
        if not chart:
            await send(interaction, embed=fit_embed(embed), ephemeral=private)
            return
        card = await read_or_defer(interaction, self.member_card(
            guild, target, window, today, (counters, message_rank, voice_rank), days, member_habits))
        png = await asyncio.to_thread(render_member_card, card)
        embed.set_image(url="attachment://activity.png")
        image = discord.File(io.BytesIO(png), "activity.png")
        await interaction.followup.send(embed=fit_embed(embed), file=image, allowed_mentions=NO_MENTIONS)

    async def member_card(self, guild: discord.Guild, member: discord.abc.User, window: Window, today: date,
                          values: tuple[Counters, int | None, int | None],
                          days: dict[str, Counters], member_habits: Habits | None = None) -> MemberCard:
        """What the `/ud` card shows: the period's totals and ranks (`values`, from `ud_values`), the
        number of members ranked, the period's bars (`period_bars`, or `season_bars` for the current
        season, from the member's day documents `days`), and the streak and weekly goal."""
        counters, message_rank, voice_rank = values
        ranked = (await self.ranked_count(guild.id, "messages", window),
                  await self.ranked_count(guild.id, "voice", window))
        if window.season is not None:
            bars, caption = season_bars(window.season.start_day, today, days)
        else:
            bars, caption = period_bars(window.period, today, days)
        return MemberCard(member.display_name, member.id, f"{guild.name} · {window.label}",
                          counters, message_rank, voice_rank, ranked, bars, caption, member_habits)

    async def ud_read(self, config: GuildConfig, member_id: int, window: Window, today: date,
                       ) -> tuple[tuple[Counters, int | None, int | None], list[tuple[str, str]],
                                  dict[str, Counters], Habits]:
        """Everything `/ud` reads: counters and both ranks, the other cogs' fields, the member's days
        of the last `STREAK_DAYS` days and, from them, the streaks and the weekly goal's progress. The
        days come from the ranks in memory when they know them (the mirrored day documents, and the
        active days before the mirror), else from MongoDB by `_id` (a lookup on any server)."""
        guild_id = config.guild_id
        values = await self.ud_values(guild_id, member_id, window)
        extra = await self._extra_fields(guild_id, member_id, window.period)
        first = today - timedelta(days=STREAK_DAYS - 1)
        ranks = getattr(self.bot, "ranks", None)
        rule = active_rule(config)
        known = ranks.streak_days(guild_id, member_id, first, rule) if ranks is not None else None
        if known is None:
            days, earlier = await self.activity.days_between(guild_id, member_id, first, today), []
        else:
            days, earlier = known
        return values, extra, days, await self.member_habits(config, member_id, today, days, earlier)

    async def member_habits(self, config: GuildConfig, member_id: int, today: date,
                            days: dict[str, Counters], earlier: list[date] | None = None) -> Habits:
        """The member's streaks (the guild's rule for an active day) and their weekly goal's progress;
        `earlier`: active days whose documents `days` leaves out (from the ranks in memory)."""
        goal = await self.goals.get(config.guild_id, member_id) if self.goals is not None else WeeklyGoal()
        return habits(days, today, active_rule(config), goal, earlier or ())

    async def ud_values(
        self, guild_id: int, member_id: int, window: Window
    ) -> tuple[Counters, int | None, int | None]:
        """A member's counters and ranks on the messages and voice boards, of `window`'s days."""
        counters = await self.member_counters(guild_id, member_id, window)
        return (counters, await self.rank(guild_id, member_id, "messages", window),
                await self.rank(guild_id, member_id, "voice", window))

    # ---- reads: the ranks in memory when built, else the repository -----------------------
    def _ranks(self, guild_id: int) -> Any:
        """The ranks in memory when the guild's are built: they answer any span of days (one
        reaching before their mirror of 32 days is read once from MongoDB, then kept current)."""
        ranks = getattr(self.bot, "ranks", None)
        return ranks if ranks is not None and ranks.ready(guild_id) else None

    async def member_counters(self, guild_id: int, member_id: int, window: Window) -> Counters:
        ranks = self._ranks(guild_id)
        if ranks is not None:
            return await ranks.member_counters(guild_id, member_id, window.since, window.until)
        return await self.activity.member_counters(guild_id, member_id, window.since, window.until)

    async def rank(self, guild_id: int, member_id: int, board: str, window: Window) -> int | None:
        ranks = self._ranks(guild_id)
        if ranks is not None:
            return await ranks.rank(guild_id, member_id, board, window.since, window.until)
        return await self.activity.rank(guild_id, member_id, board, window.since, window.until)

    async def ranked_count(self, guild_id: int, board: str, window: Window) -> int:
        ranks = self._ranks(guild_id)
        if ranks is not None:
            return await ranks.count(guild_id, board, window.since, window.until)
        return await self.activity.ranked_count(guild_id, board, window.since, window.until)

    async def leaderboard(self, guild_id: int, board: str, window: Window, skip: int,
                          limit: int) -> list[tuple[int, int]]:
        ranks = self._ranks(guild_id)
        if ranks is not None:
            return await ranks.page(guild_id, board, window.since, skip, limit, window.until)
        return await self.activity.leaderboard(guild_id, board, window.since, skip, limit, window.until)

    async def _extra_fields(self, guild_id: int, member_id: int, period: str) -> list[tuple[str, str]]:
        """Fields other cogs contribute to /ud (their `ud_fields` method); a failing one is skipped."""
        extra: list[tuple[str, str]] = []
        for cog in list(self.bot.cogs.values()):
            provider = getattr(cog, "ud_fields", None)
            if provider is None:
                continue
            try:
                extra.extend(await provider(guild_id, member_id, period))
            except Exception:
                log.exception("/ud fields from %s failed", type(cog).__name__)
        return extra

    # ---- /top ------------------------------------------------------------------------------
    @app_commands.command(name="top", description="Leaderboard of messages, voice, camera or streaming time")
    @app_commands.describe(board="What to rank by", period="Which period (default: all time)",
                           season="A season by name, earlier ones too (see /season list)")
    @app_commands.choices(board=BOARD_CHOICES, period=ACTIVITY_PERIOD_CHOICES)
    @app_commands.guild_only()
    @cooldown("top", LEADERBOARD_LIMIT)
    async def top(self, interaction: discord.Interaction, board: str, period: str = "all",
                  season: str | None = None) -> None:
        guild = interaction.guild
        assert guild is not None
        manage_guild = interaction.permissions.manage_guild
        config = await self.guild_settings.get(guild.id)
        private = sight(config.members_view_others, manage_guild).private
        period = "season" if season is not None else period
        window = await self.window(guild.id, period, season)
        if window is None:
            text = NO_SEASON if season is None else (
                f"No season named **{safe_name(season)}** in this server; see `/season list`.")
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        embed, pages, page = await read_or_defer(
            interaction, self.top_page(guild, interaction.user.id, board, window, 0, manage_guild),
            ephemeral=private)
        view = TopView(self, interaction.user.id, board, period, page, pages, season)
        await send(interaction, embed=fit_embed(embed), view=view, ephemeral=private)

    @top.autocomplete("season")
    async def season_names(self, interaction: discord.Interaction,
                           current: str) -> list[app_commands.Choice[str]]:
        """The guild's seasons, the latest first, each with its days."""
        if interaction.guild_id is None:
            return []
        seasons = await self.seasons.all(interaction.guild_id)
        return matching(current, ((f"{s.name} ({season_days(s)})", s.name) for s in reversed(seasons)))

    async def top_page(
        self, guild: discord.Guild, caller_id: int, board: str, window: Window, page: int,
        manage_guild: bool = False,
    ) -> tuple[discord.Embed, int, int]:
        """The embed of page `page` (clamped), the page count, and the page shown. A caller who may
        not see other members (`app.wiring.privacy.sight`) gets one page with only their own rank."""
        config = await self.guild_settings.get(guild.id)
        others = sight(config.members_view_others, manage_guild).others
        period, label = window.period, window.label
        rank = await self.rank(guild.id, caller_id, board, window)
        own = (rank, getattr(await self.member_counters(guild.id, caller_id, window), METRICS[board]))
        if not others:
            embed = build_top_embed(board, period, [], 1, 0, 1, own, others_hidden=True, period_text=label)
            return embed, 1, 0
        total = await self.ranked_count(guild.id, board, window)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(page, 0), pages - 1)
        rows = await self.leaderboard(guild.id, board, window, page * PAGE_SIZE, PAGE_SIZE)
        named = [(self._name(guild, member_id), value) for member_id, value in rows]
        embed = build_top_embed(board, period, named, page * PAGE_SIZE + 1, page, pages, own,
                                period_text=label)
        return embed, pages, page

    @staticmethod
    def _name(guild: discord.Guild, member_id: int) -> str:
        return style.member_of(guild, member_id)
