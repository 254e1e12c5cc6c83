"""Issue 19: messages sent while the bot was away, counted from history exactly once.

Each test plays one or more bot processes (a Ledger, the live group commit and the backfill over
the same test database) against a fake channel history, and compares every member's stored count
with the messages that exist.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.storage.retry import OpSequence
from app.tracking.backfill import (
    Backfill,
    HistoryForbidden,
    HistoryMessage,
    HistoryUnavailable,
    Ledger,
    ReadableChannel,
    snowflake_at,
)
from app.tracking.message_counter import MessageCounter
from repositories.activity import CHANNEL_DAY, ActivityRepository, day_key
from repositories.guild_settings import GuildConfig

G = 10
BOT = 999


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class History:
    """Channel histories (oldest first), served like Discord: `after`, at most `limit`."""

    messages: dict[int, list[HistoryMessage]] = field(default_factory=dict)
    pause: asyncio.Event | None = None  # set: history() waits for it (a request in flight)
    fetching: asyncio.Event = field(default_factory=asyncio.Event)
    forbidden: set[int] = field(default_factory=set)
    unavailable: int = 0  # the next this many reads: Discord answers 503
    requests: int = 0
    parents: dict[int, int] = field(default_factory=dict)  # thread -> its channel

    def post(self, channel_id: int, message_id: int, author_id: int) -> HistoryMessage:
        m = HistoryMessage(message_id, None if author_id == BOT else author_id)
        self.messages.setdefault(channel_id, []).append(m)
        return m

    def channels(self, guild_id: int) -> list[ReadableChannel]:
        return [ReadableChannel(c, self.parents.get(c), c not in self.forbidden)
                for c in sorted(self.messages)]

    async def history(self, channel_id: int, after: int, limit: int) -> list[HistoryMessage]:
        self.requests += 1
        if self.unavailable:
            self.unavailable -= 1
            raise HistoryUnavailable("503 Service Unavailable")
        if channel_id in self.forbidden:
            raise HistoryForbidden(channel_id)
        self.fetching.set()
        if self.pause is not None:
            await self.pause.wait()
        page = [m for m in self.messages[channel_id] if m.id > after][:limit]
        return list(reversed(page))  # newest first, as Discord answers

    def truth(self) -> Counter[int]:
        return Counter(m.author_id for ms in self.messages.values() for m in ms if m.author_id is not None)

    def channel_truth(self) -> Counter[int]:
        """Messages by people per channel they count under (a thread's: its parent's)."""
        return Counter(self.parents.get(c, c) for c, ms in self.messages.items() for m in ms
                       if m.author_id is not None)


class Process:
    """One run of the bot's message counting: ledger, live group commit, backfill."""

    def __init__(self, repo: ActivityRepository, seq: OpSequence,
                 write_page: Callable[..., Awaitable[None]] | None = None, **kwargs: Any) -> None:
        self.repo = repo
        self.ledger = Ledger(seq.next)
        self.counter = MessageCounter(repo.add_messages_marked, retry_delay=0.01, next_seq=seq.next,
                                      ledger=self.ledger)

        async def config(guild_id: int) -> GuildConfig:
            return GuildConfig(guild_id)

        self.backfill = Backfill(self.ledger, write_page or repo.add_backfill, config, now_ms, seq.next,
                                 before_write=self.counter.barrier, **kwargs)

    async def start(self) -> None:
        marks, ranges = await self.repo.channel_marks()
        self.ledger.load(marks, ranges)

    def live(self, channel_id: int, message: HistoryMessage, parent_id: int | None = None) -> None:
        """The gateway delivered `message` (the cog's on_message, after its filters)."""
        if message.author_id is not None and self.ledger.claim_live(G, channel_id, message.id):
            self.counter.add(G, message.author_id, "2026-01-01", channel_id=parent_id or channel_id)


async def stored_channels(db: Any) -> Counter[int]:
    """Messages per channel, summed over the channel-day documents."""
    found: Counter[int] = Counter()
    async for d in db.activity.find({"kind": CHANNEL_DAY}):
        found[d["channel_id"]] += d["messages"]
    return found


async def stored(db: Any) -> Counter[int]:
    return Counter({d["member_id"]: d["messages"] async for d in db.activity.find({"kind": "total"})
                    if d["messages"]})


def ids(start_seconds_ago: float = 600) -> Callable[[], int]:
    base = snowflake_at(now_ms() - int(start_seconds_ago * 1000))
    n = iter(range(1, 10**9))
    return lambda: base + (next(n) << 22)  # one ms apart


async def test_downtime_messages_are_counted_and_live_ones_are_not_counted_again(db, policy) -> None:
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    first = Process(repo, seq)
    await first.start()
    for i in range(30):  # counted live by the first run
        first.live(1, history.post(1, new_id(), 100 + i % 3))
    await first.counter.wait_idle()
    for i in range(250):  # the bot is down: only in the history (bots' messages never count)
        history.post(1 + i % 2, new_id(), BOT if i % 10 == 0 else 100 + i % 4)
    second = Process(repo, seq)
    for _ in range(5):  # live before the stored marks are read: they fix the ranges' ends
        for channel in (1, 2):
            second.live(channel, history.post(channel, new_id(), 105))
    await second.start()
    await second.backfill.run_guild(G, history)
    for channel in (1, 2):  # live after the backfill
        second.live(channel, history.post(channel, new_id(), 106))
    await second.counter.wait_idle()
    assert await stored(db) == history.truth()
    assert second.backfill.progress.messages == 225 and not second.backfill.progress.running


async def test_a_message_seen_live_while_its_page_is_fetched_is_counted_once(db, policy) -> None:
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    for _ in range(40):
        history.post(1, new_id(), 100)
    proc = Process(repo, seq)
    await proc.start()
    history.pause = asyncio.Event()
    run = asyncio.create_task(proc.backfill.run_guild(G, history))
    await history.fetching.wait()  # the request is on its way: the messages below are in its answer
    for author in (101, 102, 103):
        proc.live(1, history.post(1, new_id(), author))
    history.pause.set()
    await run
    await proc.counter.wait_idle()
    assert await stored(db) == history.truth() == Counter({100: 40, 101: 1, 102: 1, 103: 1})


async def test_with_no_live_message_the_backfill_ends_the_range_and_live_takes_over(db, policy) -> None:
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    for _ in range(7):
        history.post(1, new_id(), 100)
    proc = Process(repo, seq)
    await proc.start()
    await proc.backfill.run_guild(G, history)
    late = history.post(1, new_id(), 100)
    proc.live(1, late)
    await proc.counter.wait_idle()
    assert await stored(db) == Counter({100: 8})
    again = Process(repo, seq)  # a restart: the next range starts after the live message
    await again.start()
    await again.backfill.run_guild(G, history)
    assert await stored(db) == Counter({100: 8})


async def test_a_backfill_killed_halfway_resumes_without_double_or_gap(db, policy) -> None:
    """5,000 missed messages; the process dies after the 20th page was applied but before its
    reply (SIGKILL), with a second gap's range open too; the next start ends exact."""
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids(3000)
    first = Process(repo, seq)
    await first.start()
    first.live(1, history.post(1, new_id(), 100))
    await first.counter.wait_idle()
    for i in range(5000):
        history.post(1, new_id(), 100 + i % 9)
    writes = 0
    killed = asyncio.Event()

    async def page_then_die(*args: Any) -> None:
        nonlocal writes
        writes += 1
        if writes == 20:
            await repo.add_backfill(*args)  # applied; the reply never arrives
            killed.set()
            await asyncio.Event().wait()
        await repo.add_backfill(*args)

    second = Process(repo, seq, page_then_die)
    second.live(1, history.post(1, new_id(), 200))  # closes the range at its first live message
    await second.start()
    await second.counter.wait_idle()
    run = asyncio.create_task(second.backfill.run_guild(G, history))
    await killed.wait()
    run.cancel()
    for _ in range(3):  # missed again: the second process is gone
        history.post(1, new_id(), 300)
    third = Process(repo, seq)
    await third.start()
    await third.backfill.run_guild(G, history)
    await third.backfill.run_guild(G, history)  # nothing left to count
    assert await stored(db) == history.truth()
    assert third.backfill.progress.messages == 5000 - 19 * 100 + 3


async def test_live_counts_lost_in_a_crash_are_counted_from_history(db, policy) -> None:
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    first = Process(repo, seq)
    await first.start()
    first.live(1, history.post(1, new_id(), 100))
    await first.counter.wait_idle()
    gate = asyncio.Event()

    async def never(*args: Any, **kwargs: Any) -> None:  # (a batch with channel counts has kwargs)
        await gate.wait()

    first.counter._write = never  # the next batch never reaches MongoDB (SIGKILL)
    for _ in range(4):
        first.live(1, history.post(1, new_id(), 101))
    await asyncio.sleep(0.01)
    second = Process(repo, seq)
    await second.start()
    await second.backfill.run_guild(G, history)
    assert await stored(db) == Counter({100: 1, 101: 4})


async def test_a_gap_after_a_disconnect_in_the_same_process(db, policy) -> None:
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    proc = Process(repo, seq)
    await proc.start()
    await proc.backfill.run_guild(G, history)
    proc.live(1, history.post(1, new_id(), 100))
    proc.ledger.open_gaps()  # disconnected: the session is not resumed
    for _ in range(6):
        history.post(1, new_id(), 101)
    proc.live(1, history.post(1, new_id(), 102))  # after the re-IDENTIFY, before guild_available
    await proc.backfill.run_guild(G, history)
    await proc.counter.wait_idle()
    assert await stored(db) == Counter({100: 1, 101: 6, 102: 1})


async def test_days_caps_and_unreadable_channels(db, policy, caplog) -> None:
    repo, seq, history = ActivityRepository(db, policy), OpSequence(1), History()
    old, recent = ids(2 * 86400), ids(3600)
    history.post(1, old(), 100)  # older than the cap: not counted
    for _ in range(3):
        history.post(1, recent(), 100)
    history.post(2, recent(), 100)
    history.forbidden.add(2)
    for _ in range(5):
        history.post(3, recent(), 101)
    proc = Process(repo, seq, max_messages=4)
    await proc.start()
    await proc.backfill.run_guild(G, history)
    await proc.backfill.run_guild(G, history)
    assert await stored(db) == Counter({100: 3, 101: 4})
    day = time.strftime("%Y-%m-%d", time.gmtime(now_ms() / 1000 - 3600))
    assert (await db.activity.find_one({"_id": day_key(G, 100, day)}))["messages"] == 3
    assert proc.backfill.progress.no_access == {2}
    assert sum("no Read Message History" in r.getMessage() for r in caplog.records) == 1
    assert "without Read Message History" in proc.backfill.progress.line()


async def test_a_late_live_event_older_than_the_first_one_is_left_to_the_backfill(db, policy) -> None:
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    proc = Process(repo, seq)
    await proc.start()
    await proc.backfill.run_guild(G, history)
    proc.ledger.open_gaps()
    older, newer = history.post(1, new_id(), 100), history.post(1, new_id(), 101)
    proc.live(1, newer)  # the gateway delivers the newer message first ...
    proc.live(1, older)  # ... and the older one later: inside the range, counted by the backfill
    await proc.backfill.run_guild(G, history)
    await proc.counter.wait_idle()
    assert await stored(db) == Counter({100: 1, 101: 1})


async def test_a_disconnect_during_a_backfill_leaves_nothing_behind(db, policy) -> None:
    """The connection drops while a range is being counted and messages are sent after its last
    page was read: the range ends at its history, and the gap the disconnect opened takes the rest."""
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    for _ in range(3):
        history.post(1, new_id(), 100)
    proc = Process(repo, seq)
    await proc.start()
    history.pause = asyncio.Event()
    run = asyncio.create_task(proc.backfill.run_guild(G, history))
    await history.fetching.wait()
    proc.ledger.open_gaps()  # disconnected while the page is being read
    history.pause.set()
    await run
    for _ in range(2):  # still disconnected: never delivered
        history.post(1, new_id(), 101)
    proc.live(1, history.post(1, new_id(), 102))  # the new session
    await proc.backfill.run_guild(G, history)  # its guild_available
    await proc.counter.wait_idle()
    assert await stored(db) == Counter({100: 3, 101: 2, 102: 1})


async def test_a_gateway_event_after_the_history_page_that_held_it_is_not_counted_again(db, policy) -> None:
    """Discord shows a message over REST before its MESSAGE_CREATE arrives: the backfill can count a
    message from a page, and its live event come after that page was written, or after the whole
    range was finished. Found by the 20-SIGKILL campaign (one message counted twice)."""
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    for _ in range(150):
        history.post(1, new_id(), 100)
    proc = Process(repo, seq)
    await proc.start()
    pages = 0
    first_page_written = asyncio.Event()
    go_on = asyncio.Event()

    async def write(*args: Any) -> None:
        nonlocal pages
        await repo.add_backfill(*args)
        pages += 1
        if pages == 1:
            first_page_written.set()
            await go_on.wait()

    proc.backfill._write = write
    run = asyncio.create_task(proc.backfill.run_guild(G, history))
    await first_page_written.wait()
    read_first = history.messages[1][50]  # in the first page, counted already
    proc.live(1, read_first)  # its gateway event only now
    go_on.set()
    await run
    proc.live(1, history.messages[1][-1])  # the newest one, after the range was finished
    proc.live(1, history.post(1, new_id(), 101))  # a new message: live counting's
    await proc.counter.wait_idle()
    assert await stored(db) == Counter({100: 150, 101: 1})


async def test_a_take_over_reads_the_marks_the_other_holder_wrote(db, policy) -> None:
    """A counts, then loses the lease; B counts live meanwhile; the lease comes back to A, which
    kept running. Without reading B's marks again, A's backfill would start at its own old mark
    and count B's messages a second time."""
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    a = Process(repo, seq)
    await a.start()
    await a.backfill.run_guild(G, history)
    a.live(1, history.post(1, new_id(), 100))
    await a.counter.wait_idle()
    b = Process(repo, seq)  # A is a standby now: it sees nothing
    await b.start()
    await b.backfill.run_guild(G, history)
    for _ in range(5):
        b.live(1, history.post(1, new_id(), 101))
    await b.counter.wait_idle()
    for _ in range(3):  # B is gone, A has not taken over yet: only in the history
        history.post(1, new_id(), 102)
    a.ledger.reload()  # the take-over (cogs/activity.py on_lease_acquired)
    a.live(1, history.post(1, new_id(), 103))  # live before the marks are read again
    await a.start()
    await a.backfill.run_guild(G, history)
    await a.counter.wait_idle()
    assert await stored(db) == history.truth() == Counter({100: 1, 101: 5, 102: 3, 103: 1})


async def test_discord_not_answering_a_history_read_is_waited_out(db, policy) -> None:
    """Found by the fault campaign (long run, seed 22: a 503 on the history route): the channel's
    backfill stopped until the next start, and the messages it had not read yet stayed uncounted."""
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    for i in range(150):
        history.post(1 + i % 2, new_id(), 100 + i % 3)
    proc = Process(repo, seq, retry_delays=(0.01, 0.02, 0.04))
    await proc.start()
    history.unavailable = 3  # three 503s in a row, then Discord answers again
    await proc.backfill.run_guild(G, history)
    await proc.counter.wait_idle()
    assert await stored(db) == history.truth()
    history.unavailable = 10  # longer than the retries: paused, one warning, nothing counted twice
    for _ in range(5):
        history.post(1, new_id(), 101)
    proc.ledger.open_gaps()
    await proc.backfill.run_guild(G, history)
    proc.live(1, history.post(1, new_id(), 102))
    await proc.counter.wait_idle()
    history.unavailable = 0
    await proc.backfill.run_guild(G, history)  # the next gap's run resumes it
    await proc.counter.wait_idle()
    assert await stored(db) == history.truth()


async def test_channel_counts_from_live_and_history_equal_the_messages_a_thread_under_its_channel(
        db, policy) -> None:
    """Messages missed while away are counted per channel from history (a thread's under its parent
    channel), every page applied twice (a reply lost, the same operation sent again): the
    channel-day documents equal the messages, and each page's day is its message's UTC day."""
    repo, seq, history, new_id = ActivityRepository(db, policy), OpSequence(1), History(), ids()
    history.parents[3] = 1  # channel 3 is a thread of channel 1
    first = Process(repo, seq)
    await first.start()
    for i in range(20):
        first.live(1 + i % 3, history.post(1 + i % 3, new_id(), 100 + i % 4), history.parents.get(1 + i % 3))
    await first.counter.wait_idle()
    for i in range(330):  # away: in the history only
        history.post(1 + i % 3, new_id(), BOT if i % 7 == 0 else 100 + i % 5)

    async def twice(*args: Any) -> None:
        await repo.add_backfill(*args)
        await repo.add_backfill(*args)

    second = Process(repo, seq, write_page=twice)
    await second.start()
    await second.backfill.run_guild(G, history)
    second.live(3, history.post(3, new_id(), 101), 1)
    await second.counter.wait_idle()
    assert await stored_channels(db) == history.channel_truth()
    assert set(history.channel_truth()) == {1, 2}  # nothing under the thread's own id
    assert await stored(db) == history.truth()
    days = {d["day"] async for d in db.activity.find({"kind": CHANNEL_DAY}) if d["day"] != "2026-01-01"}
    assert days <= {time.strftime("%Y-%m-%d", time.gmtime(now_ms() / 1000 - s)) for s in (0, 600)}
