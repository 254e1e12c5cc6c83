"""`/settings show` and `/settings set`: per-guild settings, for members with Manage Server."""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from app.wiring.reply_limits import fit_content, fit_embed
from repositories.guild_settings import (
    FAKE_LEFT_MAX_SECONDS,
    GuildConfig,
    GuildSettingsRepository,
    SettingError,
)

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
Clearable = Literal["conversion_role", "announcement_channel", "voice_downtime_cap_seconds",
                    "join_template", "leave_template", "ignored_channels", "fake_left_within_seconds",
                    "fake_repeat_joiner"]
CLEARED_VALUE: dict[str, Any] = {"conversion_role": None, "announcement_channel": None,
                                 "voice_downtime_cap_seconds": None, "ignored_channels": frozenset()}


async def require_manage_guild(interaction: discord.Interaction) -> bool:
    """The runtime half of the admin check (server overrides can re-grant a command to anyone)."""
    if interaction.guild is not None and interaction.permissions.manage_guild:
        return True
    await interaction.response.send_message(
        "This command needs the Manage Server permission.", ephemeral=True, allowed_mentions=NO_MENTIONS
    )
    return False


def _channel(value: int | None) -> str:
    return f"<#{value}>" if value else "not set"


def settings_embed(config: GuildConfig, default_cap: float) -> discord.Embed:
    embed = discord.Embed(title="Settings")
    cap = config.voice_downtime_cap_seconds
    rows = [
        ("time_zone", config.time_zone),
        ("ignored_channels", ", ".join(f"<#{c}>" for c in sorted(config.ignored_channels)) or "none"),
        ("count_self_deafened", "yes" if config.count_self_deafened else "no"),
        ("fake_account_days", str(config.fake_account_days)),
        ("fake_left_within_seconds", str(config.fake_left_within_seconds or "0 (off)")),
        ("fake_repeat_joiner", "yes" if config.fake_repeat_joiner else "no"),
        ("conversion_role", f"<@&{config.conversion_role}>" if config.conversion_role else "not set"),
        ("members_view_others", "yes" if config.members_view_others else "no"),
        ("voice_downtime_cap_seconds", f"{cap}" if cap is not None else f"{default_cap:g} (default)"),
        ("announcement_channel", _channel(config.announcement_channel)),
        ("join_template", discord.utils.escape_markdown(config.join_template)),
        ("leave_template", discord.utils.escape_markdown(config.leave_template)),
        ("mention_member", "yes" if config.mention_member else "no"),
    ]
    for name, value in rows:
        embed.add_field(name=name, value=value[:1024], inline=False)
    return embed


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
        members_view_others="members may look up other members with /ud",
        voice_downtime_cap_seconds="most voice time credited for a bot downtime, in seconds",
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
            await interaction.response.send_message("Nothing to change: give at least one option.",
                                                    ephemeral=True, allowed_mentions=NO_MENTIONS)
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
        await interaction.response.send_message(
            f"Changed: {', '.join(sorted(changes))}.",
            embed=fit_embed(settings_embed(updated, self.bot.settings.voice_downtime_cap_seconds)),
            ephemeral=True, allowed_mentions=NO_MENTIONS,
        )
