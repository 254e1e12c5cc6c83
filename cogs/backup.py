"""`/backup-data` (Manage Server): write this server's data as a backup on the bot's host.

The work is done by `app.operations.backups.BackupService` (async reads, file writes in a thread, so the
event loop stays free); one backup per guild runs at a time.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from pymongo.errors import PyMongoError

from app.operations.backups import BackupError, BackupService
from app.wiring.commands import answer
from app.wiring.limits import BACKUP_LIMIT, retry_text
from cogs import style

log = logging.getLogger(__name__)
NEEDS_MANAGE_GUILD = style.needs_manage_server("backup-data")
ALREADY_RUNNING = "A backup of this server is already running; run `/backup-data` again when it is done."
FAILED = "The backup failed; the bot's log says why. Nothing was kept; run `/backup-data` again."


class BackupCog(commands.Cog, name="Backup"):
    def __init__(self, bot: Any, service: BackupService) -> None:
        self.bot = bot
        self.service = service
        self._running: set[int] = set()

    @app_commands.command(
        name="backup-data", description="Back up this server's tracked data on the bot's host"
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def backup_data(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        if guild_id is None or not interaction.permissions.manage_guild:
            await answer(interaction, NEEDS_MANAGE_GUILD)
            return
        if guild_id in self._running:
            await answer(interaction, ALREADY_RUNNING)
            return
        # Counted only for backups that start: at most BACKUP_LIMIT per member.
        left = self.bot.cooldowns.hit("backup-data", guild_id, interaction.user.id, BACKUP_LIMIT)
        if left > 0:
            await answer(interaction, retry_text(left))
            return
        self._running.add(guild_id)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            result = await self.service.create(now=self.bot.clock.now(), guild_id=guild_id)
            await self.service.prune(guild_id, members=False, keep=self.bot.settings.backup_keep_per_guild)
        except (BackupError, PyMongoError, OSError) as exc:
            log.error("backup of guild %d failed: %s", guild_id, exc)
            await answer(interaction, FAILED)
            return
        except Exception:
            log.exception("backup of guild %d failed", guild_id)
            await answer(interaction, FAILED)
            return
        finally:
            self._running.discard(guild_id)
        await answer(
            interaction,
            f"Backup `{result.backup_id}` written: {style.count(result.files, 'file')}, "
            f"{style.count(result.documents, 'document')}. "
            f"Restore it on the bot's host with `python -m scripts.restore {result.backup_id}`.",
        )


def backup_service(bot: Any) -> BackupService:
    """DATA_DIR/backups with the quota of the settings (erase backups share it)."""
    return BackupService(bot.db, bot.settings.data_dir / "backups", bot.retry_policy,
                         quota_bytes=bot.settings.backup_quota_mb * 2**20)


def backup_cog(bot: Any) -> BackupCog:
    return BackupCog(bot, backup_service(bot))
