"""Import of the old bots' data (read and checked by `app.operations.legacy_formats`) through the
repositories.

Everything is planned first (reads only), then written, so a refused import writes nothing. Each
write is idempotent, keyed by its source record, so a second import of the same files changes
nothing:

- cached invites -> `invites`: only codes the snapshot does not hold (`$setOnInsert`); "live" when
  the guild has no snapshot yet (the bot's first fetch then diffs against the old uses), else
  "removed" (kept for history and inviter names; a newer snapshot is never overwritten, seed 001)
- join history -> `joins`: one document per join on the bot's own key `{guild}:{member}:{joined_ms}`
  (`$setOnInsert`), `imported: "legacy"`
- invite counts -> `invite_bonus`: the legacy total (regular - fake - left + bonus) minus what the
  imported join history of the same run already credits, as one guarded `$inc` under the op id
  `legacy-invites:{guild}:{member}` (guard field `import_op`)
- member documents -> `activity` all-time totals: one guarded `$inc` under `legacy-activity:{guild}:{member}`
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from app.operations.legacy_formats import ActivityTotals, HistoryJoin, LegacyData
from app.wiring.clock import to_ms
from app.wiring.container import Repositories
from repositories.activity import total_key
from repositories.invites import LIVE, REMOVED, StoredInvite
from repositories.joins import FAKE_REASONS, FIRST, REJOIN, Attribution, JoinRecord

VANITY = "vanity"


class ImportConflict(RuntimeError):
    """The import would count something twice; nothing was written."""


@dataclass
class Plan:
    invites: dict[tuple[int, str], list[StoredInvite]] = field(default_factory=dict)
    joins: dict[str, dict[str, Any]] = field(default_factory=dict)
    bonuses: list[tuple[int, int, int, str]] = field(default_factory=list)
    activity: list[tuple[ActivityTotals, str]] = field(default_factory=list)
    new_join_guilds: set[int] = field(default_factory=set)
    tally: Counter[str] = field(default_factory=Counter)

    def summary(self, data: LegacyData, dry_run: bool) -> list[str]:
        t, verb = self.tally, "to add" if dry_run else "added"
        lines = [
            f"invite snapshot: {len(data.invites)} code(s): {t['invites_new']} {verb}, "
            f"{t['invites_old']} already stored",
            f"joins: {len(data.joins)}: {t['joins_new']} {verb}, {t['joins_old']} already stored",
            f"invite counts: {len(data.counts)} member(s): {t['bonus_new']} bonus adjustment(s) {verb}, "
            f"{t['bonus_old']} already imported, {t['bonus_zero']} matched by the join history",
            f"activity totals: {len(data.activity)} member(s): {t['activity_new']} {verb}, "
            f"{t['activity_old']} already imported",
        ]
        lines += [f"skipped: {n} {why}" for why, n in sorted(data.skipped.items())]
        lines.append("dry run: nothing written" if dry_run else "done")
        return lines


async def import_legacy(data: LegacyData, repos: Repositories, now: datetime, dry_run: bool) -> list[str]:
    """Plan (reads only), then, unless `dry_run`, write; returns the summary lines."""
    plan = Plan()
    await _plan_invites(plan, data, repos, now)
    await _plan_joins(plan, data.joins, repos, now)
    await _plan_bonuses(plan, data, repos)
    await _plan_activity(plan, data.activity, repos)
    await _check_pairs(plan, data, repos)
    if not dry_run:
        await _write(plan, repos, now)
    return plan.summary(data, dry_run)


def _by_guild(records: Iterable[Any]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    for record in records:
        grouped[record.guild_id].append(record)
    return grouped


async def _plan_invites(plan: Plan, data: LegacyData, repos: Repositories, now: datetime) -> None:
    for guild_id, cached in _by_guild(data.invites).items():
        stored = await repos.invites.existing_codes(guild_id, [c.code for c in cached])
        state = await repos.invite_guilds.get(guild_id)
        status = LIVE if state.snapshot_at is None else REMOVED
        new = [StoredInvite(c.code, c.uses, 0, c.inviter_id, c.inviter_name, None, None, None)
               for c in cached if c.code not in stored]
        plan.invites[(guild_id, status)] = new
        plan.tally["invites_new"] += len(new)
        plan.tally["invites_old"] += len(cached) - len(new)


def _attribution(join: HistoryJoin) -> Attribution:
    if join.code == VANITY:
        return Attribution("vanity")
    if join.inviter_id is not None or join.code:
        return Attribution("invite", join.code, join.inviter_id, join.inviter_name)
    return Attribution("unknown")


async def _plan_joins(plan: Plan, joins: list[HistoryJoin], repos: Repositories, now: datetime) -> None:
    """A member's earliest imported join counts as first unless the bot already recorded the member
    itself (then imported joins are history only); earlier stays are closed."""
    for guild_id, records in _by_guild(joins).items():
        known = await repos.joins.known_members(guild_id, sorted({j.member_id for j in records}))
        ordered = sorted(records, key=lambda j: (j.member_id, j.joined_at))
        for member_id, group in groupby(ordered, key=lambda j: j.member_id):
            history = list(group)
            status = known.get(member_id) or ("left" if history[-1].left_at else "present")
            for index, join in enumerate(history):
                counted = FIRST if index == 0 and member_id not in known else REJOIN
                fake = "self_invite" if join.inviter_id == member_id else ""
                record = JoinRecord(guild_id, member_id, join.member_name or str(member_id), join.joined_at,
                                    None, _attribution(join), counted, fake, now)  # type: ignore[arg-type]
                closed = join.left_at is not None or index < len(history) - 1
                plan.joins[record.key] = {
                    **record.document(), "stay": "closed" if closed else "open",
                    "left_ms": to_ms(join.left_at) if join.left_at else None,
                    "member_status": status, "imported": "legacy",
                }
    existing = await repos.joins.existing_keys(list(plan.joins))
    plan.new_join_guilds = {doc["guild_id"] for key, doc in plan.joins.items() if key not in existing}
    plan.tally["joins_old"] = len(existing)
    plan.tally["joins_new"] = len(plan.joins) - len(existing)


def _history_totals(plan: Plan) -> Counter[tuple[int, int]]:
    """Per (guild, inviter): what the planned joins add to the inviter's total (regular - fake - left)."""
    totals: Counter[tuple[int, int]] = Counter()
    for doc in plan.joins.values():
        if doc["credit_to"]:
            fake = doc["fake_reason"] in FAKE_REASONS
            left = not doc["fake_reason"] and doc["member_status"] == "left"
            totals[(doc["guild_id"], doc["credit_to"])] += 1 - int(fake) - int(left)
    return totals


async def _plan_bonuses(plan: Plan, data: LegacyData, repos: Repositories) -> None:
    credited = _history_totals(plan)
    for guild_id, counts in _by_guild(data.counts).items():
        ops = {c.member_id: f"legacy-invites:{guild_id}:{c.member_id}" for c in counts}
        done = await repos.invite_bonus.imported(guild_id, list(ops.values()))
        for c in counts:
            amount = c.total - credited[(guild_id, c.member_id)]
            if amount == 0:
                plan.tally["bonus_zero"] += 1
            elif ops[c.member_id] in done:
                plan.tally["bonus_old"] += 1
            else:
                plan.tally["bonus_new"] += 1
                plan.bonuses.append((guild_id, c.member_id, amount, ops[c.member_id]))


async def _plan_activity(plan: Plan, activity: list[ActivityTotals], repos: Repositories) -> None:
    for guild_id, records in _by_guild(activity).items():
        ops = {r.member_id: f"legacy-activity:{guild_id}:{r.member_id}" for r in records}
        keys = [total_key(guild_id, r.member_id) for r in records]
        done = await repos.activity.imported(keys, list(ops.values()))
        for record in records:
            if total_key(guild_id, record.member_id) in done:
                plan.tally["activity_old"] += 1
            else:
                plan.tally["activity_new"] += 1
                plan.activity.append((record, ops[record.member_id]))


async def _check_pairs(plan: Plan, data: LegacyData, repos: Repositories) -> None:
    """Invite counts are matched against the join history of the same run: importing one of the two
    files of a guild after the other was imported alone would count the history twice."""
    history = {j.guild_id for j in data.joins}
    counts = {c.guild_id for c in data.counts}
    for guild_id in sorted(counts - history):
        if any(b[0] == guild_id for b in plan.bonuses) and await repos.joins.has_imports(guild_id):
            raise ImportConflict(f"guild {guild_id}: its join history was imported before without "
                                 "invites.json; import both together in one run")
    for guild_id in sorted((history - counts) & plan.new_join_guilds):
        if await repos.invite_bonus.has_imports(guild_id):
            raise ImportConflict(f"guild {guild_id}: its invites.json was imported before without "
                                 "join-history.json; import both together in one run")


async def _write(plan: Plan, repos: Repositories, now: datetime) -> None:
    for (guild_id, status), invites in plan.invites.items():
        if invites:
            await repos.invites.import_missing(guild_id, invites, status, now)
    await repos.joins.import_legacy(plan.joins)
    for guild_id, member_id, amount, op_id in plan.bonuses:
        await repos.invite_bonus.import_bonus(guild_id, member_id, amount, op_id)
    for record, op_id in plan.activity:
        await repos.activity.import_totals(record.guild_id, record.member_id, record.amounts(), op_id)
