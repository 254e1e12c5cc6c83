"""app.wiring.heap: long-lived objects frozen out of full collections; a rebuilt guild cache freed."""

from __future__ import annotations

import gc
import weakref

from app.wiring.heap import (
    YOUNG_LIMIT,
    GuildCaches,
    building,
    collect_young_if_due,
    keep_long_lived,
    young_collections_only,
)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_frozen_objects_are_skipped_by_full_collections() -> None:
    gc.unfreeze()
    kept = [Node() for _ in range(1000)]
    keep_long_lived("test")
    assert gc.get_freeze_count() >= len(kept)
    gc.unfreeze()


def test_a_rebuilt_guild_cache_is_collected_even_though_it_was_frozen() -> None:
    gc.unfreeze()
    caches = GuildCaches()
    old_guild = Node()
    old_guild.other = Node()
    old_guild.other.other = old_guild  # a guild and its members refer to each other
    gone = weakref.ref(old_guild)
    caches.built(1, old_guild)  # frozen with the old cache
    del old_guild
    gc.collect()
    assert gone() is not None  # cyclic garbage among frozen objects is not collected...
    caches.built(1, Node())  # ...until the guild's cache is rebuilt (a re-IDENTIFY)
    assert gone() is None
    gc.unfreeze()


def test_the_same_guild_object_again_does_not_collect_everything(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr("app.wiring.heap.collect_everything", calls.append)
    caches, guild = GuildCaches(), Node()
    caches.built(1, guild)
    caches.built(1, guild)  # available again after an outage: the same object, updated in place
    caches.built(2, Node())
    assert calls == []
    gc.unfreeze()


def test_automatic_collections_pause_inside_nested_builds_and_resume_after_the_last() -> None:
    assert gc.isenabled()
    first, second = young_collections_only(), young_collections_only()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)  # the builds may end in any order
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_failed_build_resumes_collections_and_off_stays_off() -> None:
    try:
        with young_collections_only():
            raise RuntimeError("the scan failed")
    except RuntimeError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with young_collections_only():
            pass
        assert not gc.isenabled()  # an operator who turned them off keeps them off
    finally:
        gc.enable()


def test_a_build_collects_its_young_objects_once_they_reach_the_limit() -> None:
    """What a build made is collected and frozen once the young generation holds `YOUNG_LIMIT`
    objects, not later: a collection's pause grows with the young objects it walks."""
    gc.unfreeze()
    with young_collections_only():
        gc.collect(1)
        frozen_before = gc.get_freeze_count()
        made = [[] for _ in range(YOUNG_LIMIT // 2)]
        collect_young_if_due("test")
        assert gc.get_freeze_count() == frozen_before  # not due yet
        made += [[] for _ in range(YOUNG_LIMIT)]
        collect_young_if_due("test")
        assert gc.get_count()[0] < YOUNG_LIMIT // 10
        assert gc.get_freeze_count() >= frozen_before + len(made)
    gc.unfreeze()


def test_a_build_freezes_what_it_made_before_collections_resume_and_a_small_one_is_left_alone() -> None:
    gc.unfreeze()
    with building("test"):
        assert not gc.isenabled()
        made = [Node() for _ in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() >= len(made)
    gc.unfreeze()
    with building("test", large=False):
        assert gc.isenabled()
        made = [Node() for _ in range(1000)]
    assert gc.get_freeze_count() == 0
