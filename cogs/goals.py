"""`/goal set` and `/goal clear`: a member's own weekly goal, shown with their streak on `/ud`.

A member sets only their own goal (no Manage Server needed; `Surface.NONE`): messages a week, hours
of voice a week, or both. The week starts on Monday in the guild's time zone. The texts here are
also the `/ud` fields (`habit_fields`, used by `cogs.stats`); the computation is
`app.tracking.streaks`.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.tracking.streaks import ActiveRule, Habits, Part, Streak, WeekProgress
from app.wiring.commands import answer
from cogs import style
from repositories.goals import GoalRepository, WeeklyGoal
from repositories.guild_settings import GuildSettingsRepository

log = logging.getLogger(__name__)
HOUR = 3600
MAX_GOAL_MESSAGES = 100_000
MAX_GOAL_VOICE_HOURS = 168  # every hour of a week


# ---- texts -------------------------------------------------------------------------------------
def rule_text(rule: ActiveRule) -> str:
    """What makes a day active: `1 message`, `30m of voice`, `1 message or 30m of voice`."""
    parts = [style.count(rule.min_messages, "message")] if rule.min_messages else []
    parts += [f"{style.duration(rule.min_voice_s)} of voice"] if rule.min_voice_s else []
    return " or ".join(parts) or "any message or voice time"


def streak_text(streak: Streak, rule: ActiveRule) -> str:
    """`**5 days** (best 12 days)`, and a line when today still has to count for it to go on."""
    best = f"best {style.count(streak.best, 'day')}"
    if not streak.best:
        return f"No active day yet (a day counts with {rule_text(rule)})"
    if not streak.current:
        return f"No current streak ({best})"
    text = f"**{style.count(streak.current, 'day')}** ({best})"
    if not streak.today_active:
        text += f"\nNot active yet today: {rule_text(rule)} keeps it going"
    return text


def _voice_hours(seconds: int) -> str:
    return f"{seconds // HOUR}h" if seconds % HOUR == 0 else style.duration(seconds)


def _part_text(part: Part, done: str, target: str, unit: str) -> str:
    reached = ", reached" if part.reached else ""
    return f"{done} / {target} {unit} ({part.percent}%{reached})"


def week_lines(week: WeekProgress) -> list[str]:
    """`12 / 20 messages (60%)`, `3h 05m / 5h voice (61%)`: one line per target of the goal."""
    lines = []
    if week.messages is not None:
        m = week.messages
        unit = style.plural(m.target, "message")
        lines.append(_part_text(m, style.number(m.done), style.number(m.target), unit))
    if week.voice is not None:
        v = week.voice
        done = style.duration(v.done) if v.done else "0m"
        lines.append(_part_text(v, done, _voice_hours(v.target), "voice"))
    return lines


def goal_summary(goal: WeeklyGoal) -> str:
    """`**20 messages** and **5h of voice** a week`."""
    parts = [f"**{style.count(goal.messages, 'message')}**"] if goal.messages else []
    parts += [f"**{_voice_hours(goal.voice_s)} of voice**"] if goal.voice_s else []
    return f"{' and '.join(parts)} a week"


def habit_fields(habits: Habits) -> list[tuple[str, str]]:
    """The `/ud` fields: the streak, and the weekly goal's progress when the member set one."""
    fields = [("Streak", streak_text(habits.streak, habits.rule))]
    if habits.week is not None:
        fields.append((f"Weekly goal (since {habits.week.since:%a %b} {habits.week.since.day})",
                       "\n".join(week_lines(habits.week))))
    return fields


# ---- the commands ------------------------------------------------------------------------------
class GoalsCog(commands.Cog, name="Goals"):
    goal_group = app_commands.Group(
        name="goal", description="Your own weekly goal, shown on /ud", guild_only=True,
    )

    def __init__(self, bot: Any, goals: GoalRepository, guild_settings: GuildSettingsRepository) -> None:
        self.bot = bot
        self.goals = goals
        self.guild_settings = guild_settings

    @goal_group.command(name="set", description="Set your weekly goal: messages, hours of voice or both")
    @app_commands.describe(
        messages=f"messages a week (1 to {MAX_GOAL_MESSAGES:,})",
        voice_hours=f"hours of voice a week (1 to {MAX_GOAL_VOICE_HOURS})",
    )
    async def set_(
        self,
        interaction: discord.Interaction,
        messages: app_commands.Range[int, 1, MAX_GOAL_MESSAGES] | None = None,
        voice_hours: app_commands.Range[int, 1, MAX_GOAL_VOICE_HOURS] | None = None,
    ) -> None:
        assert interaction.guild is not None
        if messages is None and voice_hours is None:
            await answer(interaction, "Nothing to set: give `/goal set` `messages`, `voice_hours` or both.")
            return
        goal = await self.goals.set(
            interaction.guild.id, interaction.user.id, seq=interaction.id, now=self.bot.clock.now(),
            messages=messages, voice_s=voice_hours * HOUR if voice_hours is not None else None,
        )
        log.info("guild %s: member %s set their weekly goal", interaction.guild.id, interaction.user.id)
        config = await self.guild_settings.get(interaction.guild.id)
        await answer(interaction, f"Your weekly goal: {goal_summary(goal)}. Weeks start on Monday "
                                  f"({config.time_zone}); `/ud` shows your progress. "
                                  "`/goal clear` removes it.")

    @goal_group.command(name="clear", description="Remove your weekly goal")
    async def clear(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        guild_id, member_id = interaction.guild.id, interaction.user.id
        if (await self.goals.get(guild_id, member_id)).empty:
            await answer(interaction, "You have no weekly goal; `/goal set` sets one.")
            return
        await self.goals.clear(guild_id, member_id, seq=interaction.id, now=self.bot.clock.now())
        log.info("guild %s: member %s cleared their weekly goal", guild_id, member_id)
        await answer(interaction, "Your weekly goal is removed.")
