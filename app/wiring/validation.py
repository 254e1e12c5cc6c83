"""Strict checks on what comes from outside: ids, invite codes, backup ids, gateway events.

A value that fails is rejected, never repaired into a query: user-supplied strings reach MongoDB
only as values inside filters the code builds (`{"code": value}`), never as a key or an operator,
and only after these patterns. A rejected gateway event gets one warning log line (`reject`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # BSON int64: a larger id cannot be stored (and Discord never sends one)
INVITE_CODE = re.compile(r"[A-Za-z0-9-]{2,32}")
INVITE_LINK = re.compile(
    r"(?:https?://)?(?:www\.)?(?:discord(?:app)?\.com/invite|discord\.gg)/([A-Za-z0-9-]{2,32})/?"
)
INVITE_BACKUP_ID = re.compile(r"ib-[0-9a-f]{12}")
FILE_BACKUP_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def valid_id(value: Any) -> bool:
    """A Discord id we can store: a positive int that fits in 64-bit signed (no bool, no str)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def invite_code(value: Any) -> str | None:
    """The code of an invite code or invite link (discord.gg/x, discord.com/invite/x), else None."""
    if not isinstance(value, str) or len(value) > 100:
        return None
    text = value.strip()
    if INVITE_CODE.fullmatch(text):
        return text
    link = INVITE_LINK.fullmatch(text)
    return link.group(1) if link else None


def invite_backup_id(value: Any) -> str | None:
    """An `/invites-admin reset` backup id (`ib-` and 12 hex digits), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if INVITE_BACKUP_ID.fullmatch(text) else None


def valid_invite_event(invite: Any, guild_known: bool) -> str:
    """Why an INVITE_CREATE / INVITE_DELETE cannot be used ('' when it can)."""
    if not guild_known:
        return "unknown guild"
    code = getattr(invite, "code", None)
    if not isinstance(code, str) or invite_code(code) != code:
        return "malformed invite code"  # also none at all (a code of None passed before)
    uses = getattr(invite, "uses", None)
    if uses is not None and (not isinstance(uses, int) or uses < 0 or uses > MAX_ID):
        return "invalid uses"
    inviter = getattr(invite, "inviter", None)
    if inviter is not None and not valid_id(inviter.id):
        return "inviter id out of range"
    channel = getattr(invite, "channel", None)
    if channel is not None and not valid_id(channel.id):
        return "channel id out of range"
    return ""


def reject(event: str, reason: str, **ids: Any) -> None:
    """One clear line per rejected event: what, why, and the ids it named."""
    named = " ".join(f"{k}={v!r}"[:80] for k, v in ids.items())
    log.warning("rejected %s: %s (%s)", event, reason, named)
