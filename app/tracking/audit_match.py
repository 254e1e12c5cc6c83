"""The audit-log match: an invite created and used up between two reads of the invite list.

Such an invite is in no read, so no use count ever rises for its joiner. When a read shows no use
rising, the tracker asks the audit log (View Audit Log) for INVITE_CREATE entries (action 40) and
INVITE_DELETE entries (42: revoked by someone; Discord deleting a used-up invite writes none). An
entry is used only when it makes the match certain (`used_up_candidate`); the tracker then adds
it to the snapshot in memory with 0 uses, and the usual used-up rule
(`app.tracking.attribution.increases`) counts its one use in the read. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

CLOCK_SKEW = timedelta(seconds=1)  # assumed between Discord's snowflake times and this host's clock


@dataclass(frozen=True)
class AuditedInvite:
    """One invite audit entry: created (action 40) or revoked (42)."""

    code: str
    created_at: datetime  # the entry's time (snowflake)
    inviter_id: int | None
    inviter_name: str | None
    channel_id: int | None
    max_uses: int
    max_age: int
    revoked: bool = False

    def expires_at(self) -> datetime | None:
        return self.created_at + timedelta(seconds=self.max_age) if self.max_age else None


def used_up_candidate(
    entries: Sequence[AuditedInvite], known: Collection[str], read_sent: datetime, read_at: datetime
) -> AuditedInvite | None:
    """The one invite whose use the read must hold, or None when it is not certain. Certain when
    exactly one created entry is: unknown to the snapshot, the read and the stored invites
    (`known`: else the usual rules apply), a one-use invite (gone = used up, its use in the read),
    created before the read was sent (with the clock skew margin; created later, its use could be
    after the read), not revoked, and not expired when the read was answered (`read_at`)."""
    revoked = {e.code for e in entries if e.revoked}
    found = [
        e for e in entries
        if not e.revoked
        and e.code not in known
        and e.code not in revoked
        and e.max_uses == 1
        and e.created_at + CLOCK_SKEW < read_sent
        and not _expired(e, read_at)
    ]
    codes = {e.code for e in found}
    return found[0] if len(codes) == 1 else None


def _expired(entry: AuditedInvite, at: datetime) -> bool:
    expires = entry.expires_at()
    return expires is not None and expires <= at
