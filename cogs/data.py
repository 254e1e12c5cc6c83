"""`/data erase <member>` (Manage Server): erase a member's tracked data on request.

Backed up to a file first (`app.operations.erase`), then deleted through the repositories; one erase,
reset or restore per guild at a time; the answer carries the backup id.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.operations.backups import BackupService
from app.operations.erase import Erasable, erase_member, has_data, nothing_held
from app.wiring.commands import answer
from app.wiring.limits import retry_text
from cogs import style
from cogs.backup import backup_service
from cogs.settings import require_manage_guild

log = logging.getLogger(__name__)
FAILED = ("The erase failed before anything was deleted or part way; the bot's log says why. "
          "Run `/data erase` again.")
# What each erased collection holds, in words: (singular, plural).
ERASED_WORDS = {
    "activity": ("activity record (messages and voice time)", "activity records (messages and voice time)"),
    "voice_sessions": ("open voice session", "open voice sessions"),
    "joins": ("join record (how they joined)", "join records (how they joined)"),
    "weekly_goals": ("weekly goal", "weekly goals"),
    "reward_log": ("activity-role change", "activity-role changes"),
}


def erased_text(documents: dict[str, int]) -> str:
    """`2 activity records (messages and voice time), no join records`: what an erase removed."""
    parts = []
    for name, n in documents.items():
        one, many = ERASED_WORDS.get(name, (name.replace("_", " "), name.replace("_", " ")))
        parts.append(f"no {many}" if n == 0 else f"{style.number(n)} {one if n == 1 else many}")
    return ", ".join(parts) or "nothing was stored"


class DataCog(commands.Cog, name="Data"):
    data_group = app_commands.Group(
        name="data", description="A member's tracked data (Manage Server)", guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: Any, erasable: list[Erasable], backups: BackupService) -> None:
        self.bot = bot
        self.erasable = erasable
        self.backups = backups

    @data_group.command(
        name="erase",
        description="Erase a member's activity, voice session, joins and weekly goal, backed up first",
    )
    @app_commands.describe(member="Whose data (members who left can be given by id)")
    async def erase(self, interaction: discord.Interaction, member: discord.User) -> None:
        if not await require_manage_guild(interaction):
            return
        assert interaction.guild is not None
        gid = interaction.guild.id
        with self.bot.guild_jobs.hold(gid, "an erase") as mine:
            if not mine:
                await answer(interaction, style.busy(self.bot.guild_jobs.running(gid), "data erase"))
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            refusal = await self._refusal(interaction.guild, member)
            if refusal is not None:
                await answer(interaction, refusal)
                return
            try:
                result = await erase_member(
                    self.erasable, self.backups, gid, member.id, self.bot.clock.now(),
                    settle=self._settle, hold=lambda: self._hold(gid, member.id),
                )
            except Exception:
                log.exception("erase of member %s in guild %s failed", member.id, gid)
                await answer(interaction, FAILED)
                return
            finally:
                self._reread_ranks(gid, member.id)
            await self._prune(gid)
        log.info("guild %s: member %s erased the data of %s (backup %s)", gid, interaction.user.id,
                 member.id, result.backup_id)
        await answer(
            interaction,
            f"Erased the data of {style.member_of(interaction.guild, member.id, member.name)}: "
            f"{erased_text(result.documents)}. "
            f"Backup `{result.backup_id}` was written first; restore it on the bot's host with "
            f"`python -m scripts.restore {result.backup_id}`. Members they brought in keep their joins.",
        )

    async def _refusal(self, guild: discord.Guild, member: discord.User) -> str | None:
        """Why this erase does not run (nothing stored: no backup is written; the guild's erases
        over their window), or None. Only erases that will write a backup count."""
        await self._settle()  # counts still in memory are data too
        who = style.member_of(guild, member.id, member.name)
        if not await has_data(self.erasable, self.backups, guild.id, member.id):
            log.info("guild %s: erase of %s refused: nothing stored", guild.id, member.id)
            return f"Nothing of {who} is stored in this server: nothing erased, no backup written."
        settings = self.bot.settings
        limit = (settings.erase_limit, settings.erase_limit_seconds)
        left = self.bot.cooldowns.hit("data erase", guild.id, 0, limit)
        if left > 0:
            log.info("guild %s: erase of %s refused: %d erases per %.0fs", guild.id, member.id,
                     settings.erase_limit, settings.erase_limit_seconds)
            return (f"This server already erased {settings.erase_limit} members' data in the last "
                    f"{settings.erase_limit_seconds / 60:.0f} minutes. {retry_text(left)}")
        return None

    async def _prune(self, guild_id: int) -> None:
        keep = self.bot.settings.erase_backup_keep_per_guild
        try:
            await self.backups.prune(guild_id, members=True, keep=keep)
        except OSError as exc:
            log.error("retention of the erase backups of guild %s failed: %s", guild_id, exc)

    def _reread_ranks(self, guild_id: int, member_id: int) -> None:
        """The member's counts are gone (or partly, after a failure): off the boards at once, and the
        guild's boards read again from MongoDB (a count in flight may have landed either side)."""
        ranks = getattr(self.bot, "ranks", None)
        if ranks is not None:
            ranks.forget_member(guild_id, member_id)
            ranks.rebuild(guild_id)
        boards = getattr(self.bot.repos, "invite_boards", None)
        if boards is not None:
            boards.rebuild(guild_id)  # their joins are gone (the joins they brought in stay)

    async def _settle(self) -> None:
        activity = self.bot.get_cog("Activity")
        if activity is not None:
            await activity.messages.wait_idle()

    def _hold(self, guild_id: int, member_id: int) -> Any:
        activity = self.bot.get_cog("Activity")
        if activity is None:
            return nothing_held()
        return activity.voice.forgetting(guild_id, member_id)


def data_cog(bot: Any) -> DataCog:
    repos = bot.repos
    erasable = [repos.activity, repos.voice_sessions, repos.joins, repos.goals, repos.reward_log]
    return DataCog(bot, erasable, backup_service(bot))
