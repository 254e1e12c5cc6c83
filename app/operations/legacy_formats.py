"""The four legacy formats (see `app.operations.legacy_input`) read into checked records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.operations.legacy_input import (
    CACHE_FILE,
    COUNTS_FILE,
    HISTORY_FILE,
    PROBE_ID,
    LegacyInputError,
    Node,
    Where,
    bounded,
    count,
    moment,
    node,
    read_json,
    single_object,
    snowflake,
    text,
)


@dataclass(frozen=True)
class CachedInvite:
    where: Where
    guild_id: int
    code: str
    uses: int
    inviter_id: int | None
    inviter_name: str | None


@dataclass(frozen=True)
class InviteCounts:
    where: Where
    guild_id: int
    member_id: int
    regular: int
    fake: int
    left: int
    bonus: int

    @property
    def total(self) -> int:
        return self.regular - self.fake - self.left + self.bonus


@dataclass(frozen=True)
class HistoryJoin:
    where: Where
    guild_id: int
    member_id: int
    member_name: str | None
    inviter_id: int | None
    inviter_name: str | None
    code: str | None
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True)
class ActivityTotals:
    where: Where
    guild_id: int
    member_id: int
    messages: int
    cam_on_minutes: int
    cam_off_minutes: int

    def amounts(self) -> dict[str, int]:
        """In this project's units: seconds; voice = camera on + camera off."""
        on, off = self.cam_on_minutes * 60, self.cam_off_minutes * 60
        return {"messages": self.messages, "voice_s": on + off, "cam_on_s": on, "cam_off_s": off,
                "stream_s": 0}


@dataclass
class LegacyData:
    """Everything read from the given files, checked; `skipped` counts what was left out and why."""

    invites: list[CachedInvite] = field(default_factory=list)
    counts: list[InviteCounts] = field(default_factory=list)
    joins: list[HistoryJoin] = field(default_factory=list)
    activity: list[ActivityTotals] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def read_files(paths: list[Path], guild: int | None) -> LegacyData:
    """Read and check every file completely; raises `LegacyInputError` at the first problem."""
    data = LegacyData()
    for path in paths:
        name, values = read_json(path)
        if path.name == CACHE_FILE:
            _invite_cache(name, values, guild, data)
        elif path.name == COUNTS_FILE:
            _invite_counts(name, values, guild, data)
        elif path.name == HISTORY_FILE:
            _join_history(name, values, guild, data)
        else:
            _activity(name, values, guild, data)
    _no_duplicates(data)
    return data


def _guilds(
    name: str, values: list[Any], guild: int | None, data: LegacyData
) -> list[tuple[int, Any, Where]]:
    """The top-level `{guild_id: ...}` entries, those of other guilds than --guild skipped."""
    top = single_object(name, values)
    selected = []
    for key, value in top.items():
        where = Where(name, getattr(value, "line", top.line))
        guild_id = snowflake(key, where, "guild id key")
        if guild is not None and guild_id != guild:
            data.skipped["guild entries not selected by --guild"] += 1
            continue
        selected.append((guild_id, value, where))
    return selected


def _invite_cache(name: str, values: list[Any], guild: int | None, data: LegacyData) -> None:
    for guild_id, raw_invites, where in _guilds(name, values, guild, data):
        invites, _ = node(raw_invites, where, f"guild {guild_id}")
        for code, raw in invites.items():
            entry, at = node(raw, Where(name, invites.line), f"invite {code!r}")
            listed = text(entry.get("code", code), at, "code")
            if listed != code or not code:
                raise at.error(f"code {listed!r} does not match its key {code!r}")
            inviter = entry.get("inviter_id")
            data.invites.append(CachedInvite(
                at, guild_id, code, count(entry.get("uses"), at, "uses"),
                None if inviter is None else snowflake(inviter, at, "inviter_id"),
                text(entry.get("inviter_name"), at, "inviter_name"),
            ))


def _invite_counts(name: str, values: list[Any], guild: int | None, data: LegacyData) -> None:
    for guild_id, raw_users, where in _guilds(name, values, guild, data):
        users, _ = node(raw_users, where, f"guild {guild_id}")
        for user, raw in users.items():
            entry, at = node(raw, Where(name, users.line), f"user {user!r}")
            numbers = {k: count(entry.get(k, 0), at, k) for k in ("regular", "fake", "left", "bonus")}
            counts = InviteCounts(at, guild_id, snowflake(user, at, "user id key"), **numbers)
            bounded(counts.total, at, "the invite total (regular - fake - left + bonus)")
            data.counts.append(counts)


def _join_history(name: str, values: list[Any], guild: int | None, data: LegacyData) -> None:
    for guild_id, events, where in _guilds(name, values, guild, data):
        if not isinstance(events, list):
            raise where.error(f"guild {guild_id}: expected a list of joins")
        for raw in events:
            event, at = node(raw, where, "a join")
            inviter = event.get("inviterId")
            left = event.get("leftAt")
            data.joins.append(HistoryJoin(
                at, guild_id, snowflake(event.get("userId"), at, "userId"),
                text(event.get("username"), at, "username"),
                None if inviter is None else snowflake(inviter, at, "inviterId"),
                text(event.get("inviterName"), at, "inviterName"),
                text(event.get("inviteCode"), at, "inviteCode"),
                moment(event.get("joinedAt"), at, "joinedAt"),
                None if left is None else moment(left, at, "leftAt"),
            ))


def _activity(name: str, values: list[Any], guild: int | None, data: LegacyData) -> None:
    documents = values[0] if len(values) == 1 and isinstance(values[0], list) else values
    for raw in documents:
        doc, at = node(raw, Where(name, 1), "a member document")
        member = doc.get("_id", doc.get("user_id"))
        if member == PROBE_ID:
            data.skipped["old bot test documents"] += 1
            continue
        if guild is None:
            raise at.error("member documents carry no guild id: pass --guild ID")
        member_id = snowflake(member, at, "_id")
        numbers, _ = node(doc.get("data"), at, "data")
        totals = ActivityTotals(
            at, guild, member_id,
            count(numbers.get("message_count", 0), at, "data.message_count"),
            count(numbers.get("voice_cam_on_minutes", 0), at, "data.voice_cam_on_minutes"),
            count(numbers.get("voice_cam_off_minutes", 0), at, "data.voice_cam_off_minutes"),
        )
        bounded(totals.amounts()["voice_s"], at, "voice time in seconds ((camera on + off minutes) * 60)")
        data.activity.append(totals)


def _no_duplicates(data: LegacyData) -> None:
    """One record per key: a second one (a later export of the same member...) is refused."""
    keyed: list[tuple[str, list[Any], Any]] = [
        ("invite", data.invites, lambda r: (r.guild_id, r.code)),
        ("invite counts of member", data.counts, lambda r: (r.guild_id, r.member_id)),
        ("join", data.joins, lambda r: (r.guild_id, r.member_id, r.joined_at)),
        ("member", data.activity, lambda r: (r.guild_id, r.member_id)),
    ]
    for what, records, key in keyed:
        seen: dict[Any, Where] = {}
        for record in records:
            k = key(record)
            if k in seen:
                raise record.where.error(f"{what} {k} is already given at {seen[k]}")
            seen[k] = record.where


__all__ = ["LegacyData", "LegacyInputError", "Node", "read_files"]
