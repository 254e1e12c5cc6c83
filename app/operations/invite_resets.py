"""`/invites reset` and `/invites restore`: a reset is always backed up first, and restorable.

A reset marks the credited joins it clears with the backup id (`reset_id`) and takes the bonus
away with a guarded `$inc`; nothing is deleted. The backup (`invite_backups`) holds a copy of
every join it cleared and every bonus it took, written *before* anything is cleared. A restore
undoes exactly that reset (unmarks those joins, gives that bonus back, guarded by the backup id),
so joins and bonuses recorded after the reset are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.wiring.container import Repositories
from repositories.invite_backups import BackupHeader, new_backup_id, valid_backup_id


@dataclass(frozen=True)
class ResetResult:
    backup_id: str
    joins: int
    bonus_members: int


class RestoreError(Exception):
    """The backup id is malformed, unknown, of another guild, or not restorable."""


async def reset_invites(
    repos: Repositories, guild_id: int, member_id: int | None, by: int, now: datetime
) -> ResetResult:
    """Back up, then clear the invite figures of `member_id` (None: everyone in the guild)."""
    backup_id = new_backup_id()
    joins = await repos.joins.resettable(guild_id, member_id)
    if member_id is None:
        bonuses = await repos.invite_bonus.all(guild_id)
    else:
        amount = await repos.invite_bonus.get(guild_id, member_id)
        bonuses = {member_id: amount} if amount else {}
    header = BackupHeader(backup_id, guild_id, member_id or 0, now, by, "saving", len(joins), len(bonuses))
    await repos.invite_backups.begin(header)
    await repos.invite_backups.add_items(backup_id, joins, bonuses)
    await repos.invite_backups.move(backup_id, "saving", "saved", now)
    await repos.joins.mark_reset([doc["_id"] for doc in joins], backup_id)
    for target, amount in bonuses.items():
        await repos.invite_bonus.add(guild_id, target, -amount, f"reset:{backup_id}")
    await repos.invite_backups.move(backup_id, "saved", "applied", now)
    return ResetResult(backup_id, len(joins), len(bonuses))


async def restore_invites(repos: Repositories, guild_id: int, backup_id: str, now: datetime) -> ResetResult:
    """Undo the reset `backup_id` of this guild (once)."""
    if not valid_backup_id(backup_id):
        raise RestoreError("That is not a backup id (they look like `ib-0123456789ab`).")
    header = await repos.invite_backups.header(backup_id)
    if header is None or header.guild_id != guild_id:
        raise RestoreError(f"There is no backup `{backup_id}` in this server.")
    if header.status == "restored":
        raise RestoreError(f"Backup `{backup_id}` was already restored.")
    if header.status != "applied":
        raise RestoreError(f"The reset of backup `{backup_id}` did not complete; nothing to restore.")
    join_ids, bonuses = await repos.invite_backups.items(backup_id)
    await repos.joins.unmark_reset(join_ids, backup_id)
    for target, amount in bonuses.items():
        await repos.invite_bonus.add(guild_id, target, amount, f"restore:{backup_id}")
    await repos.invite_backups.move(backup_id, "applied", "restored", now)
    return ResetResult(backup_id, len(join_ids), len(bonuses))
