"""Exactness checks shared by the cases: counts in MongoDB against what was sent."""

from __future__ import annotations

from collections import Counter
from typing import Any

from scripts.bench.measure import Check


def _diff(expected: Counter[int], found: dict[int, int]) -> str:
    wrong = [m for m in set(expected) | set(found) if expected.get(m, 0) != found.get(m, 0)]
    sample = ", ".join(f"{m}: sent {expected.get(m, 0)}, stored {found.get(m, 0)}" for m in sorted(wrong)[:3])
    return f"{len(wrong)} member(s) wrong ({sample})" if wrong else ""


def compare(name: str, expected: Counter[int], found: dict[int, int]) -> Check:
    """Every member's stored count equals the events sent for them (and no other member has one)."""
    problem = _diff(expected, found)
    total = sum(found.values())
    detail = problem or f"{len(found)} members, {total} events, each exact"
    return Check(name, not problem, detail)


async def activity_counts(db: Any, guild_id: int, kind: str, field: str = "messages") -> dict[int, int]:
    """member -> sum of `field` over the guild's activity documents of `kind` (total or day)."""
    found: dict[int, int] = {}
    async for doc in db.activity.find({"guild_id": guild_id, "kind": kind}, {"member_id": 1, field: 1}):
        found[int(doc["member_id"])] = found.get(int(doc["member_id"]), 0) + int(doc.get(field) or 0)
    return {m: v for m, v in found.items() if v}


async def raw_counts(collection: Any, field: str = "messages") -> dict[int, int]:
    """member -> `field` of a baseline collection keyed `t:{guild}:{member}`."""
    return {int(doc["_id"].rsplit(":", 1)[1]): int(doc[field]) async for doc in collection.find({})}


async def message_checks(db: Any, label: str, guild_id: int, expected: Counter[int]) -> list[Check]:
    return [
        compare(f"{label}: member totals", expected, await activity_counts(db, guild_id, "total")),
        compare(f"{label}: member day documents", expected, await activity_counts(db, guild_id, "day")),
    ]
