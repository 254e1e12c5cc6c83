"""`/invites-admin reset` and `/invites-admin restore`: a reset is always backed up first, and restorable.

A reset marks the credited joins it clears with the backup id (`reset_id`) and takes the bonus
away under a per-backup guard on the bonus document; nothing is deleted. The backup
(`invite_backups`) holds a copy of every join it cleared and every bonus it took, written *before*
anything is cleared. A restore undoes exactly that reset (unmarks those joins, gives back the
bonus that reset took), so joins and bonuses recorded after the reset are kept.

Every step can be repeated without changing anything twice, so an interrupted reset or restore is
finished by running its steps again (`resume_interrupted`): items are copied once
(`$setOnInsert` on deterministic keys), joins are marked only where unmarked and unmarked only
where this backup marked them, a bonus is taken once and given back once per backup (its
`reset_{backup_id}` field), and the header's status moves only from the expected one. Each
operation is noted in the guild's in-flight document before its first step and cleared after its
last, so the next start (or the next reset or restore in the guild) finds it with one read.

A reset interrupted in "saving" has cleared nothing yet: finishing it copies what the scope holds
then (copies already made are kept as they are) and applies it. `/invites-admin restore` accepts a
backup in any state but "restored" and undoes whatever part of its reset was applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from app.wiring.container import Repositories
from repositories.invite_backups import LEGACY_BONUS_GUARD, BackupHeader, new_backup_id, valid_backup_id

log = logging.getLogger(__name__)

SAVING, SAVED, APPLIED, RESTORING, RESTORED = "saving", "saved", "applied", "restoring", "restored"
UNFINISHED_RESET = (SAVING, SAVED)


@dataclass(frozen=True)
class ResetResult:
    backup_id: str
    joins: int
    bonus_members: int
    was: str = ""  # restore: the backup's status before it ("applied", or "saving"/"saved": interrupted)


@dataclass(frozen=True)
class Resumed:
    """An interrupted operation finished by `resume_interrupted`: "reset" or "restore"."""

    action: str
    result: ResetResult


class RestoreError(Exception):
    """The backup id is malformed, unknown, of another guild, or not restorable."""


async def reset_invites(
    repos: Repositories, guild_id: int, member_id: int | None, by: int, now: datetime
) -> ResetResult:
    """Back up, then clear the invite figures of `member_id` (None: everyone in the guild)."""
    backup_id = new_backup_id()
    await repos.invite_backups.start_flight(guild_id, backup_id, now)
    await repos.invite_backups.begin(BackupHeader(backup_id, guild_id, member_id or 0, now, by, SAVING, 0, 0))
    return await _finish_reset(repos, await _header(repos, backup_id), now)


async def restore_invites(repos: Repositories, guild_id: int, backup_id: str, now: datetime) -> ResetResult:
    """Undo the reset `backup_id` of this guild (once), whatever part of it was applied."""
    if not valid_backup_id(backup_id):
        raise RestoreError("That is not a backup id (they look like `ib-0123456789ab`).")
    header = await repos.invite_backups.header(backup_id)
    if header is None or header.guild_id != guild_id:
        raise RestoreError(f"There is no backup `{backup_id}` in this server: give the id that "
                           "`/invites-admin reset` answered with.")
    if header.status == RESTORED:
        raise RestoreError(f"Backup `{backup_id}` was already restored.")
    if header.bonus_guard == LEGACY_BONUS_GUARD and header.status in UNFINISHED_RESET:
        # Written before resets could be finished: which bonuses it took is not recorded.
        raise RestoreError(f"The reset of backup `{backup_id}` did not complete; nothing to restore.")
    was = header.status
    if header.status != RESTORING:
        await repos.invite_backups.start_flight(guild_id, backup_id, now)
        await repos.invite_backups.move(backup_id, header.status, RESTORING, now)
        header = await _header(repos, backup_id)
        if header.status == RESTORED:
            raise RestoreError(f"Backup `{backup_id}` was already restored.")
        if header.status != RESTORING:
            raise RestoreError(f"Backup `{backup_id}` changed while restoring it; try again.")
    return await _finish_restore(repos, header, now, was)


async def resume_interrupted(
    repos: Repositories, guild_id: int, now: datetime, *, skip: str | None = None
) -> list[Resumed]:
    """Finish the guild's resets and restores that a crash interrupted, oldest first (`skip`: a
    backup the caller is about to restore itself)."""
    done: list[Resumed] = []
    for backup_id in await repos.invite_backups.in_flight(guild_id):
        if backup_id == skip:
            continue
        header = await repos.invite_backups.header(backup_id)
        if header is None or header.guild_id != guild_id or header.status in (APPLIED, RESTORED):
            # Stopped before its header was written (nothing happened), or after its last step.
            await repos.invite_backups.end_flight(guild_id, backup_id)
            continue
        action = "restore" if header.status == RESTORING else "reset"
        log.warning("guild %s: finishing the %s of invite backup %s, interrupted at %s",
                    guild_id, action, backup_id, header.status)
        if header.status == RESTORING:
            result = await _finish_restore(repos, header, now, RESTORING)
        else:
            result = await _finish_reset(repos, header, now)
        done.append(Resumed(action, result))
    return done


async def _finish_reset(repos: Repositories, header: BackupHeader, now: datetime) -> ResetResult:
    """Run the reset's steps from where its header stands: copy (saving), then clear (saved)."""
    backup_id = header.backup_id
    if header.status == SAVING:
        await _copy(repos, header)
        join_ids, bonuses = await repos.invite_backups.items(backup_id)
        await repos.invite_backups.move(backup_id, SAVING, SAVED, now, (len(join_ids), len(bonuses)))
        header = await _header(repos, backup_id)
    if header.status == SAVED:
        join_ids, bonuses = await repos.invite_backups.items(backup_id)
        await repos.joins.mark_reset(join_ids, backup_id)
        for target, amount in sorted(bonuses.items()):
            await repos.invite_bonus.take_for_reset(header.guild_id, target, amount, backup_id)
        await repos.invite_backups.move(backup_id, SAVED, APPLIED, now)
        header = await _header(repos, backup_id)
    if header.status == APPLIED:
        await repos.invite_backups.end_flight(header.guild_id, backup_id)
    return ResetResult(backup_id, header.joins, header.bonus_members)


async def _copy(repos: Repositories, header: BackupHeader) -> None:
    """Copy what the reset clears into the backup (a repeat adds only what is not copied yet)."""
    guild_id, member_id = header.guild_id, header.member_id or None
    joins = await repos.joins.resettable(guild_id, member_id)
    if member_id is None:
        bonuses = await repos.invite_bonus.all(guild_id)
    else:
        amount = await repos.invite_bonus.get(guild_id, member_id)
        bonuses = {member_id: amount} if amount else {}
    await repos.invite_backups.add_items(header.backup_id, joins, bonuses)


async def _finish_restore(repos: Repositories, header: BackupHeader, now: datetime, was: str) -> ResetResult:
    """Undo what the reset applied: unmark its joins, give back the bonus it took; then "restored"."""
    backup_id, guild_id = header.backup_id, header.guild_id
    join_ids, bonuses = await repos.invite_backups.items(backup_id)
    joins = await repos.joins.unmark_reset(join_ids, backup_id)
    legacy = header.bonus_guard == LEGACY_BONUS_GUARD
    given = 0
    for target, amount in sorted(bonuses.items()):
        given += await repos.invite_bonus.give_back(guild_id, target, amount, backup_id, legacy=legacy)
    await repos.invite_backups.move(backup_id, RESTORING, RESTORED, now)
    if (await _header(repos, backup_id)).status == RESTORED:
        await repos.invite_backups.end_flight(guild_id, backup_id)
    return ResetResult(backup_id, joins, given, was)


async def _header(repos: Repositories, backup_id: str) -> BackupHeader:
    header = await repos.invite_backups.header(backup_id)
    if header is None:
        raise RuntimeError(f"invite backup {backup_id} has no header")
    return header
