"""Erase on request (`/data erase`): back up a member's own data to a file, then delete it.

What is erased, in one guild: the member's activity (all-time total and day documents), their
open voice session, their joins as the one who joined, and their weekly goal. Joins of members they
brought in stay: those are the other members' records (they keep the inviter id, and the inviter's
invite figures are derived from them); bonus invites and staff codes are staff decisions and stay too.

The backup is a member backup of `app.operations.backups.BackupService` (a file under DATA_DIR/backups, in
the mongoexport format, outside the database, so erased data really leaves MongoDB), written and
fsynced BEFORE anything is deleted; `python -m scripts.restore <id>` brings it back. Leaderboards
drop the member as soon as the deletes land. Activity documents are emptied into tombstones rather
than deleted (`ActivityRepository.erase_member`): they keep the write guards, so a write of the
member still in flight is refused instead of counting again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.operations.backups import BackupService

log = logging.getLogger(__name__)


class Erasable(Protocol):
    collection_name: str

    def member_filter(self, guild_id: int, member_id: int) -> dict[str, Any]: ...

    async def erase_member(self, guild_id: int, member_id: int) -> None: ...


@dataclass(frozen=True)
class EraseResult:
    backup_id: str
    documents: dict[str, int]  # collection -> documents backed up and deleted

    @property
    def total(self) -> int:
        return sum(self.documents.values())


async def has_data(repos: list[Erasable], backups: BackupService, guild_id: int, member_id: int) -> bool:
    """True when any of `repos` holds a document of the member in this guild (an erase of an id
    with nothing stored writes no backup)."""
    for repo in repos:
        found = await backups.db[repo.collection_name].find_one(
            repo.member_filter(guild_id, member_id), {"_id": 1})
        if found is not None:
            return True
    return False


@contextlib.asynccontextmanager
async def nothing_held() -> AsyncIterator[None]:
    yield


async def erase_member(
    repos: list[Erasable],
    backups: BackupService,
    guild_id: int,
    member_id: int,
    now: datetime,
    *,
    settle: Callable[[], Awaitable[object]] | None = None,
    hold: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None,
) -> EraseResult:
    """Back up, then delete the member's documents of `repos` in this guild.

    `settle` first writes counts still in memory (so they are backed up and erased too); `hold`
    keeps the member's voice tracking still while it runs (see VoiceTracker.forgetting).
    """
    if settle is not None:
        await settle()
    async with (hold or nothing_held)():
        names = {repo.collection_name for repo in repos}
        backup = await backups.create(now=now, guild_id=guild_id, member_id=member_id, only=names)
        for repo in repos:
            await repo.erase_member(guild_id, member_id)
    counts = dict.fromkeys(sorted(names), 0) | {e.name: e.count for e in backup.manifest.collections}
    log.info("erased member %s of guild %s: %d documents (%s), backup %s", member_id, guild_id,
             sum(counts.values()), ", ".join(f"{k}={v}" for k, v in sorted(counts.items())), backup.backup_id)
    return EraseResult(backup.backup_id, counts)
