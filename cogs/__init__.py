"""Discord-facing code: listeners and slash commands. Cogs get repositories from the bot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def all_cog_factories() -> list[Callable[[Any], Any]]:
    """Every cog the bot loads, in order."""
    from cogs.activity import ActivityCog
    from cogs.announcements import AnnouncementsCog
    from cogs.backup import backup_cog
    from cogs.data import data_cog
    from cogs.export import ExportCog
    from cogs.goals import GoalsCog
    from cogs.help import HelpCog
    from cogs.invites import InvitesCog
    from cogs.rewards import RewardsCog
    from cogs.seasons import SeasonsCog
    from cogs.server import ServerCog
    from cogs.settings import SettingsCog
    from cogs.stats import StatsCog
    from cogs.status import StatusCog

    return [
        lambda bot: ActivityCog(bot, bot.repos.activity, bot.repos.voice_sessions, bot.repos.guild_settings),
        lambda bot: StatsCog(bot, bot.repos.activity, bot.repos.guild_settings, bot.repos.goals),
        lambda bot: GoalsCog(bot, bot.repos.goals, bot.repos.guild_settings),
        ServerCog,
        backup_cog,
        ExportCog,
        lambda bot: InvitesCog(bot, bot.repos),
        lambda bot: SettingsCog(bot, bot.repos.guild_settings),
        RewardsCog,
        SeasonsCog,
        StatusCog,
        AnnouncementsCog,
        data_cog,
        HelpCog,
    ]
