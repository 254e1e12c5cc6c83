"""The invite tracker driven directly, with Discord's timing simulated (the emulator answers in
milliseconds and delivers events at once, which hides the races that matter here)."""

from __future__ import annotations

from app.wiring.container import Repositories
from scripts.bench.joins import burst

# ---- join bursts through the real worker loop (simulated Discord timing: scripts/bench/joins.py) ----


async def test_joins_100_to_300_ms_apart_with_slow_fetches_never_get_the_wrong_inviter(db, clock, policy):
    """Issue 14, failure 1: events 30-100 ms after the join, the invite list 160-200 ms to read."""
    repos = Repositories.create(db, policy)
    mine, _, world = await burst(repos, clock, guild_id=7, rate=5.0, joins=30, codes=3, baseline=False)
    assert (mine.wrong, mine.missing) == (0, 0), mine.text()
    assert mine.exact + mine.ambiguous + mine.unknown == 30
    assert len(world.announced) == 30


async def test_a_join_without_an_invite_use_never_takes_the_next_joiners_code(db, clock, policy):
    """Discovery / OAuth joins (no use) mixed into a burst: never credited with someone else's code."""
    repos = Repositories.create(db, policy)
    mine, _, world = await burst(repos, clock, guild_id=8, rate=5.0, joins=30, codes=3, seed=3,
                                 no_invite=0.3, baseline=False)
    assert None in world.truth.values()
    assert (mine.wrong, mine.missing) == (0, 0), mine.text()
