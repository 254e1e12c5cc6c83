"""`/settings show` and `/settings set`: per-guild settings, for members with Manage Server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from app.wiring.reply_limits import fit_content, fit_embed, more_lines
from cogs import style
from cogs.choices import time_zone_choices
from repositories.guild_settings import (
    FAKE_LEFT_MAX_SECONDS,
    STREAK_MAX_MESSAGES,
    STREAK_MAX_VOICE_MINUTES,
    GuildConfig,
    GuildSettingsRepository,
    SettingError,
)

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
STREAK_SETTINGS = {"streak_min_messages", "streak_min_voice_minutes"}  # the rule for an active day
Clearable = Literal["conversion_role", "announcement_channel", "voice_downtime_cap_seconds",
                    "join_template", "leave_template", "ignored_channels", "fake_left_within_seconds",
                    "fake_repeat_joiner", "streak_min_messages", "streak_min_voice_minutes"]
CLEARED_VALUE: dict[str, Any] = {"conversion_role": None, "announcement_channel": None,
                                 "voice_downtime_cap_seconds": None, "ignored_channels": frozenset()}


async def require_manage_guild(interaction: discord.Interaction) -> bool:
    """The runtime half of the admin check (server overrides can re-grant a command to anyone)."""
    if interaction.guild is not None and interaction.permissions.manage_guild:
        return True
    name = interaction.command.qualified_name if interaction.command else "settings"
    await interaction.response.send_message(
        style.needs_manage_server(name), ephemeral=True, allowed_mentions=NO_MENTIONS
    )
    return False


Render = Callable[[GuildConfig, float], str]


@dataclass(frozen=True)
class Row:
    group: str
    key: str
    label: str
    render: Render


def _off_or(text: str, value: int) -> str:
    return text if value else "off"


def _streak_unused(config: GuildConfig) -> str:
    """A streak minimum of 0 is not used; with both unused, any activity counts."""
    if config.streak_min_messages or config.streak_min_voice_minutes:
        return "not used"
    return "not used (any message or voice time counts)"


def _streak_messages(config: GuildConfig) -> str:
    minimum = config.streak_min_messages
    return f"at least {style.count(minimum, 'message')}" if minimum else _streak_unused(config)


def _streak_voice(config: GuildConfig) -> str:
    minutes = config.streak_min_voice_minutes
    return f"at least {style.duration(minutes * 60)}" if minutes else _streak_unused(config)


ROWS = [
    Row("Activity", "time_zone", "Time zone (day boundaries)", lambda c, _: c.time_zone),
    Row("Activity", "ignored_channels", "Channels not counted",
        lambda c, _: ", ".join(style.channel(x) for x in sorted(c.ignored_channels)) or "none"),
    Row("Activity", "count_self_deafened", "Voice counted while self-deafened",
        lambda c, _: style.yes_no(c.count_self_deafened)),
    Row("Activity", "members_view_others", "Members may see others' numbers",
        lambda c, _: style.yes_no(c.members_view_others)),
    Row("Activity", "voice_downtime_cap_seconds", "Voice credited across a bot downtime",
        lambda c, default: f"at most {style.duration(c.voice_downtime_cap_seconds)}"
        if c.voice_downtime_cap_seconds is not None else f"at most {style.duration(default)} (default)"),
    Row("Activity", "streak_min_messages", "Streak day needs messages", lambda c, _: _streak_messages(c)),
    Row("Activity", "streak_min_voice_minutes", "Streak day needs voice", lambda c, _: _streak_voice(c)),
    Row("Fake invites", "fake_account_days", "Account younger than",
        lambda c, _: _off_or(style.count(c.fake_account_days, "day"), c.fake_account_days)),
    Row("Fake invites", "fake_left_within_seconds", "Left within",
        lambda c, _: _off_or(style.duration(c.fake_left_within_seconds), c.fake_left_within_seconds)),
    Row("Fake invites", "fake_repeat_joiner", "Rejoins", lambda c, _: style.yes_no(c.fake_repeat_joiner)),
    Row("Invites", "conversion_role", "Conversion role", lambda c, _: style.role(c.conversion_role)),
    Row("Announcements", "announcement_channel", "Channel",
        lambda c, _: style.channel(c.announcement_channel)),
    Row("Announcements", "mention_member", "Join message mentions the member",
        lambda c, _: style.yes_no(c.mention_member)),
    Row("Join message", "join_template", "Join message",
        lambda c, _: discord.utils.escape_markdown(c.join_template)),
    Row("Leave message", "leave_template", "Leave message",
        lambda c, _: discord.utils.escape_markdown(c.leave_template)),
]
LABELS = {row.key: row.label for row in ROWS}


def settings_embed(config: GuildConfig, default_cap: float) -> discord.Embed:
    """The settings grouped, one field per group, in readable labels."""
    embed = discord.Embed(title="Settings", description="Change them with `/settings set`.")
    groups: dict[str, list[str]] = {}
    for row in ROWS:
        value = row.render(config, default_cap)
        groups.setdefault(row.group, []).append(value if row.label == row.group else f"{row.label}: {value}")
    for group, lines in groups.items():
        embed.add_field(name=group, value=more_lines(lines), inline=False)
    return embed


def changes_text(old: GuildConfig, new: GuildConfig, default_cap: float) -> str:
    """`old -> new` for each setting that changed, in the labels of `/settings show`."""
    lines = [
        f"{row.label}: {row.render(old, default_cap)} -> {row.render(new, default_cap)}"
        for row in ROWS
        if getattr(old, row.key) != getattr(new, row.key)
    ]
    if not lines:
        return "Nothing changed: the settings already had these values."
    return "Changed:\n" + "\n".join(lines)


class SettingsCog(commands.Cog):
    settings_group = app_commands.Group(
        name="settings", description="Show or change this server's tracker settings", guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: Any, guild_settings: GuildSettingsRepository) -> None:
        self.bot = bot
        self.guild_settings = guild_settings

    @settings_group.command(name="show", description="Show this server's settings")
    async def show(self, interaction: discord.Interaction) -> None:
        if not await require_manage_guild(interaction):
            return
        assert interaction.guild is not None
        config = await self.guild_settings.get(interaction.guild.id)
        embed = settings_embed(config, self.bot.settings.voice_downtime_cap_seconds)
        await interaction.response.send_message(embed=fit_embed(embed), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)

    @settings_group.command(name="set", description="Change one or more settings")
    @app_commands.describe(
        time_zone="IANA time zone for day boundaries, e.g. Europe/Berlin",
        fake_account_days="accounts younger than this many days count as fake invites",
        fake_left_within_seconds="a member who leaves within this many seconds of joining is fake (0: off)",
        fake_repeat_joiner="a member's rejoins are marked fake",
        conversion_role="gaining this role counts as a conversion for the staff member who invited",
        ignore_channel="stop counting messages in this channel",
        unignore_channel="count messages in this channel again",
        count_self_deafened="count voice time while self-deafened",
        members_view_others="members may see other members' numbers (lookups, boards, announcement totals)",
        voice_downtime_cap_seconds="most voice time credited for a bot downtime, in seconds",
        streak_min_messages="a day counts towards a streak with this many messages (0: not used)",
        streak_min_voice_minutes="a day also counts with this many minutes of voice (0: not used)",
        announcement_channel="post join and leave messages here",
        join_template="join message; placeholders {member} {member_name} {inviter} {inviter_name} {code} "
                      "{invites} {source} {account_age}",
        leave_template="leave message; same placeholders as the join message",
        mention_member="the join message may mention the member",
        clear="reset one setting to its default",
    )
    async def set_(
        self,
        interaction: discord.Interaction,
        time_zone: app_commands.Range[str, 1, 64] | None = None,
        fake_account_days: app_commands.Range[int, 0, 365] | None = None,
        fake_left_within_seconds: app_commands.Range[int, 0, FAKE_LEFT_MAX_SECONDS] | None = None,
        fake_repeat_joiner: bool | None = None,
        conversion_role: discord.Role | None = None,
        ignore_channel: discord.TextChannel | None = None,
        unignore_channel: discord.TextChannel | None = None,
        count_self_deafened: bool | None = None,
        members_view_others: bool | None = None,
        voice_downtime_cap_seconds: app_commands.Range[int, 0, 86400] | None = None,
        streak_min_messages: app_commands.Range[int, 0, STREAK_MAX_MESSAGES] | None = None,
        streak_min_voice_minutes: app_commands.Range[int, 0, STREAK_MAX_VOICE_MINUTES] | None = None,
        announcement_channel: discord.TextChannel | None = None,
        join_template: app_commands.Range[str, 1, 500] | None = None,
        leave_template: app_commands.Range[str, 1, 500] | None = None,
        mention_member: bool | None = None,
        clear: Clearable | None = None,
    ) -> None:
        if not await require_manage_guild(interaction):
            return
        assert interaction.guild is not None
        current = await self.guild_settings.get(interaction.guild.id)
        changes: dict[str, Any] = {
            name: value for name, value in {
                "time_zone": time_zone, "fake_account_days": fake_account_days,
                "fake_left_within_seconds": fake_left_within_seconds,
                "fake_repeat_joiner": fake_repeat_joiner,
                "conversion_role": conversion_role.id if conversion_role else None,
                "count_self_deafened": count_self_deafened, "members_view_others": members_view_others,
                "voice_downtime_cap_seconds": voice_downtime_cap_seconds,
                "streak_min_messages": streak_min_messages,
                "streak_min_voice_minutes": streak_min_voice_minutes,
                "announcement_channel": announcement_channel.id if announcement_channel else None,
                "join_template": join_template, "leave_template": leave_template,
                "mention_member": mention_member,
            }.items() if value is not None
        }
        if ignore_channel is not None or unignore_channel is not None:
            ignored = set(current.ignored_channels)
            if ignore_channel is not None:
                ignored.add(ignore_channel.id)
            if unignore_channel is not None:
                ignored.discard(unignore_channel.id)
            changes["ignored_channels"] = frozenset(ignored)
        if clear is not None:
            changes[clear] = CLEARED_VALUE.get(clear, getattr(GuildConfig(0), clear))
        if not changes:
            await interaction.response.send_message(
                "Nothing to change: give `/settings set` at least one option.", ephemeral=True,
                allowed_mentions=NO_MENTIONS)
            return
        try:
            updated = await self.guild_settings.set_fields(
                interaction.guild.id, by=interaction.user.id, at=self.bot.clock.now(), **changes
            )
        except SettingError as exc:
            await interaction.response.send_message(fit_content(f"Not changed: {exc}"), ephemeral=True,
                                                    allowed_mentions=NO_MENTIONS)
            return
        log.info("guild %s: member %s changed %s", interaction.guild.id, interaction.user.id,
                 ", ".join(sorted(changes)))
        ranks = getattr(self.bot, "ranks", None)
        if ranks is not None and STREAK_SETTINGS & set(changes) and ranks.ready(interaction.guild.id):
            ranks.rebuild(interaction.guild.id)  # the active days kept in memory follow the old rule
        text = changes_text(current, updated, self.bot.settings.voice_downtime_cap_seconds)
        await interaction.response.send_message(fit_content(text), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)

    @set_.autocomplete("time_zone")
    async def time_zone_autocomplete(self, interaction: discord.Interaction,
                                     current: str) -> list[app_commands.Choice[str]]:
        return time_zone_choices(current)
