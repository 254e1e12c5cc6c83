"""Messages sent while the bot was not listening, counted from channel history exactly once.

No Discord here: the cog hands the backfill a `HistoryAccess` (which channels of a guild can be
read, and pages of a channel's history) and tells the `Ledger` what it counts live.

**The partition.** Every message id of a channel is counted by exactly one of two paths. Per
channel, `mark` is the highest id accounted for (stored `$max`, written in the same bulk write as
the live counts). A *gap* opens for every channel at start, at every gateway disconnect and when
a guild becomes unavailable; it becomes a *range* `lo < id < hi` where `lo` is the mark when the
gap opened and `hi` the first message the bot then sees live (or, if none arrives before the
backfill reaches the end of the history, one past the newest message in it). Live counting takes
ids `>= hi`, and leaves ids inside any open range to the backfill; the backfill takes only ids
inside its range, whatever arrives live meanwhile.

**Exactly once across crashes.** A range is a document (`repositories.activity.FillRange`) written
in the same bulk write as the counts that move it: the live write that fixes `hi` carries it,
and every backfill page carries its counts with the range's new `at` (how far it has counted),
guarded by its own operation sequence. So after a SIGKILL the stored `at` says exactly which
pages are in MongoDB (or in the outbox, replayed before the ranges are read), and the backfill
resumes after it. Live counts lost in memory by a crash never moved the mark either: the next
start's range covers them, and they are counted from history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.tracking.voice import day_of, zone
from repositories.activity import ChannelCount, ChannelMark, Credit, FillRange
from repositories.guild_settings import GuildConfig

log = logging.getLogger(__name__)
PAGE = 100  # Discord's largest page of channel history
DISCORD_EPOCH_MS = 1420070400000
PARALLEL_CHANNELS = 4
HISTORY_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)  # a page Discord did not answer is asked again after these
KEEP_FINISHED = 2  # finished ranges kept per channel to refuse late gateway events of their messages


def snowflake_ms(snowflake: int) -> int:
    """The creation time (ms since the Unix epoch) encoded in a Discord id."""
    return (snowflake >> 22) + DISCORD_EPOCH_MS


def snowflake_at(ms: int) -> int:
    """The lowest Discord id created at `ms`."""
    return max(0, ms - DISCORD_EPOCH_MS) << 22


@dataclass(frozen=True)
class HistoryMessage:
    """A message from channel history: `author_id` None when live counting would not count it
    (bot, webhook, system message)."""

    id: int
    author_id: int | None


@dataclass(frozen=True)
class ReadableChannel:
    id: int
    parent_id: int | None
    can_read: bool  # View Channel and Read Message History


class HistoryForbidden(Exception):
    """The bot may not read this channel's history (any more)."""


class HistoryUnavailable(Exception):
    """Discord did not answer a history read this time (5xx, a timeout): worth asking again."""


class HistoryAccess(Protocol):
    def channels(self, guild_id: int) -> list[ReadableChannel]: ...

    async def history(self, channel_id: int, after: int, limit: int) -> list[HistoryMessage]: ...


@dataclass
class Gap:
    key: str
    guild_id: int
    channel_id: int
    lo: int
    hi: int | None = None
    at: int = 0
    synced: bool = False  # the live counts that set `lo` are written (or durable in the outbox)
    claimed: int = 0  # the backfill has taken every id up to here (set before its page is written)
    done: bool = False

    def holds(self, message_id: int) -> bool:
        """The backfill counts (or counted) this id: live counting must not."""
        return self.lo < message_id and (message_id <= self.claimed
                                          or (self.hi is not None and message_id < self.hi))

    def snapshot(self, at: int | None = None, done: bool = False) -> FillRange:
        return FillRange(self.key, self.guild_id, self.channel_id, self.lo, self.hi,
                         max(self.at, self.lo) if at is None else at, done)


@dataclass
class _Channel:
    mark: int = 0
    tick: int = 0
    gaps: list[Gap] = field(default_factory=list)


class Ledger:
    """Which path counts which message id, per channel (in memory; see the module docstring)."""

    def __init__(self, new_nonce: Callable[[], int]) -> None:
        self._nonce = new_nonce
        self._channels: dict[tuple[int, int], _Channel] = {}
        self._tick = 1
        self._opened_all = 1  # the start is a gap for every channel
        self._opened: dict[int, int] = {}
        self._early: dict[tuple[int, int], int] = {}  # before `load`: first live id per channel
        self._marks: dict[tuple[int, int], int] = {}  # to write with the next live batch
        self._ranges: dict[str, Gap] = {}  # ranges whose `hi` the next live batch fixes
        self.loaded = asyncio.Event()

    # ---- gaps ---------------------------------------------------------------------------------
    def open_gaps(self, guild_id: int | None = None) -> None:
        """The bot stopped seeing live messages (of one guild, or of all): a gap opens."""
        self._tick += 1
        if guild_id is None:
            self._opened_all = self._tick
        else:
            self._opened[guild_id] = self._tick

    def reload(self) -> None:
        """The lease came back to this running process: another process counted meanwhile, so
        every channel has a gap and the stored marks are to be read again (`load`)."""
        self.loaded.clear()
        self.open_gaps()

    def load(self, marks: dict[tuple[int, int], int], ranges: Iterable[FillRange]) -> None:
        """Take the stored marks and unfinished ranges (read after the outbox backlog is replayed)."""
        for (guild_id, channel_id), mark in marks.items():
            state = self._channel(guild_id, channel_id)
            state.mark = max(state.mark, mark)
        for r in sorted(ranges, key=lambda r: (r.hi is None, r.lo)):
            gaps = self._channel(r.guild_id, r.channel_id).gaps
            if any(g.key == r.key for g in gaps):
                continue  # read again after a take-over: this process has it already
            gaps.append(Gap(r.key, r.guild_id, r.channel_id, r.lo, r.hi, r.at, synced=True, claimed=r.at))
        for (guild_id, channel_id), first in self._early.items():
            state = self._current(guild_id, channel_id)
            gap = state.gaps[-1] if state.gaps and state.gaps[-1].hi is None else None
            if gap is not None:
                gap.hi = first
                self._ranges[gap.key] = gap
            state.mark = max(state.mark, self._marks.get((guild_id, channel_id), 0))
        self._early.clear()
        self.loaded.set()

    def _channel(self, guild_id: int, channel_id: int) -> _Channel:
        return self._channels.setdefault((guild_id, channel_id), _Channel())

    def _current(self, guild_id: int, channel_id: int) -> _Channel:
        """The channel's state, with a gap open if one opened since it was last looked at."""
        state = self._channel(guild_id, channel_id)
        opened = max(self._opened_all, self._opened.get(guild_id, 0))
        if state.tick < opened:
            state.tick = self._tick
            if not (state.gaps and state.gaps[-1].hi is None):
                key = f"f:{guild_id}:{channel_id}:{state.mark}:{self._nonce()}"
                state.gaps.append(Gap(key, guild_id, channel_id, state.mark, None, state.mark))
        return state

    # ---- live -----------------------------------------------------------------------------------
    def claim_live(self, guild_id: int, channel_id: int, message_id: int) -> bool:
        """True when live counting counts this message (False: a backfill range holds it)."""
        key = (guild_id, channel_id)
        if not self.loaded.is_set():
            first = self._early.get(key)
            self._early[key] = message_id if first is None else min(first, message_id)
            self._marks[key] = max(self._marks.get(key, 0), message_id)
            return True
        state = self._current(guild_id, channel_id)
        if any(g.holds(message_id) for g in state.gaps):
            return False  # a late event of a message the backfill read (REST shows it first)
        gap = state.gaps[-1] if state.gaps and state.gaps[-1].hi is None else None
        if gap is not None:
            gap.hi = message_id
            self._ranges[gap.key] = gap
        state.mark = max(state.mark, message_id)
        self._marks[key] = max(self._marks.get(key, 0), message_id)
        return True

    def take(self) -> tuple[list[ChannelMark], list[FillRange]]:
        """What the next live write carries beside its counts (marks, and ranges it fixed)."""
        marks = [ChannelMark(g, c, m) for (g, c), m in self._marks.items()]
        ranges = [gap.snapshot() for gap in self._ranges.values()]
        self._marks, self._ranges = {}, {}
        return marks, ranges

    # ---- backfill -------------------------------------------------------------------------------
    def ranges_of(self, guild_id: int, channel_id: int) -> list[Gap]:
        """The channel's ranges still to count (a gap opened since it was last looked at included)."""
        return [g for g in self._current(guild_id, channel_id).gaps if not g.done]

    def fix_end(self, gap: Gap, last_seen: int) -> None:
        """The backfill reached the end of the history with no live message yet: from here on,
        everything after `last_seen` is live counting's."""
        if gap.hi is None:
            gap.hi = last_seen + 1

    def finished(self, gap: Gap) -> None:
        """Kept a while: a late gateway event of a message it counted must still be refused."""
        state = self._channel(gap.guild_id, gap.channel_id)
        gap.done = True
        done = [g for g in state.gaps if g.done]
        for old in done[:-KEEP_FINISHED]:
            state.gaps.remove(old)
        if gap.hi is not None:
            state.mark = max(state.mark, gap.hi - 1)


@dataclass
class Progress:
    running: bool = False
    channels_total: int = 0
    channels_done: int = 0
    messages: int = 0
    no_access: set[int] = field(default_factory=set)

    def line(self) -> str:
        state = "backfilling" if self.running else "backfilled"
        text = (f"{state}: {self.channels_done} of {self.channels_total} channels, "
                f"{self.messages:,} messages counted")
        if self.no_access:
            text += f"; {len(self.no_access)} channel(s) without Read Message History"
        return text


# (member counts, op id, range, mark, channel counts): one guarded bulk write (`add_backfill`)
BackfillWrite = Callable[[Sequence[Credit], int, FillRange, ChannelMark | None, Sequence[ChannelCount]],
                         Awaitable[None]]
ConfigOf = Callable[[int], Awaitable[GuildConfig]]


class Backfill:
    """Counts each channel's open ranges from history, one page (<= 100 messages) per guarded write."""

    def __init__(self, ledger: Ledger, write: BackfillWrite, config_of: ConfigOf, now_ms: Callable[[], int],
                 next_seq: Callable[[], int], *, max_age_seconds: float = 86400,
                 max_messages: int = 10_000, before_write: Callable[[], Awaitable[None]] | None = None,
                 parallel: int = PARALLEL_CHANNELS,
                 retry_delays: tuple[float, ...] = HISTORY_RETRY_DELAYS) -> None:
        self.ledger = ledger
        self.retry_delays = retry_delays
        self._write = write
        self._config_of = config_of
        self._now_ms = now_ms
        self._next_seq = next_seq
        self.max_age_seconds = max_age_seconds
        self.max_messages = max_messages
        self._before_write = before_write
        self._write_lock = asyncio.Lock()  # one backfill write in flight: its sequence guard needs it
        self._slots = asyncio.Semaphore(parallel)
        self._busy: set[tuple[int, int]] = set()
        self.progress = Progress()  # the whole bot's: logs
        self._guilds: dict[int, Progress] = {}  # each guild's: its `/data-status`

    def progress_of(self, guild_id: int) -> Progress:
        """One guild's backfill progress (nothing counted yet: an empty one)."""
        return self._guilds.get(guild_id) or Progress()

    def _both(self, guild_id: int) -> tuple[Progress, Progress]:
        return self.progress, self._guilds.setdefault(guild_id, Progress())

    async def run_guild(self, guild_id: int, access: HistoryAccess) -> None:
        """Count every open range of every readable channel of the guild."""
        await self.ledger.loaded.wait()
        config = await self._config_of(guild_id)
        channels = [c for c in access.channels(guild_id)
                    if c.id not in config.ignored_channels and c.parent_id not in config.ignored_channels]
        todo: list[ReadableChannel] = []
        for channel in channels:
            if not channel.can_read or channel.id in self.progress.no_access:
                self._no_access(guild_id, channel.id)
                continue
            if (guild_id, channel.id) not in self._busy and self.ledger.ranges_of(guild_id, channel.id):
                todo.append(channel)
        if not todo:
            return
        for progress in self._both(guild_id):
            progress.running = True
            progress.channels_total += len(todo)
        try:
            await asyncio.gather(*(self._run_channel(guild_id, c, access, config) for c in todo))
        finally:
            self.progress.running = bool(self._busy)
            self._guilds[guild_id].running = any(busy[0] == guild_id for busy in self._busy)

    def _no_access(self, guild_id: int, channel_id: int) -> None:
        self._both(guild_id)[1].no_access.add(channel_id)
        if channel_id not in self.progress.no_access:
            self.progress.no_access.add(channel_id)
            log.warning("guild %s channel %s: no Read Message History; messages sent there while the bot "
                        "was away are not counted", guild_id, channel_id)

    async def _run_channel(self, guild_id: int, channel: ReadableChannel, access: HistoryAccess,
                           config: GuildConfig) -> None:
        channel_id = channel.id
        count_as = channel.parent_id or channel.id  # a thread's messages count under its parent channel
        key = (guild_id, channel_id)
        self._busy.add(key)
        try:
            async with self._slots:
                for gap in self.ledger.ranges_of(guild_id, channel_id):
                    await self._run_range(gap, access, config, count_as)
        except HistoryForbidden:
            self._no_access(guild_id, channel_id)
        except HistoryUnavailable as exc:
            log.warning("backfill of guild %s channel %s paused: Discord did not answer %d times (%s); "
                        "the next gap or start resumes it", guild_id, channel_id, len(self.retry_delays) + 1,
                        exc)
        except Exception:
            log.exception("backfill of guild %s channel %s stopped; the next start resumes it",
                          guild_id, channel_id)
        finally:
            self._busy.discard(key)
            for progress in self._both(guild_id):
                progress.channels_done += 1

    async def _run_range(self, gap: Gap, access: HistoryAccess, config: GuildConfig, count_as: int) -> None:
        oldest = snowflake_at(self._now_ms() - int(self.max_age_seconds * 1000)) - 1
        cursor = max(gap.lo, gap.at, oldest)
        counted = 0
        tz = zone(config.time_zone)
        while True:
            raw = sorted(await self._read_page(access, gap.channel_id, cursor), key=lambda m: m.id)
            raw = [m for m in raw if m.id > cursor]
            inside = [m for m in raw if gap.hi is None or m.id < gap.hi]
            capped = counted + len(inside) >= self.max_messages
            if capped:
                inside = inside[: max(0, self.max_messages - counted)]
            end = capped or len(raw) < PAGE or len(inside) < len(raw)
            if end:
                self.ledger.fix_end(gap, inside[-1].id if inside else cursor)
            page_at = inside[-1].id if inside else cursor
            gap.claimed = max(gap.claimed, page_at)  # before any await: live counting now leaves these
            credits, channels = self._credits(gap.guild_id, count_as, inside, tz)
            await self._commit(gap, credits, page_at, end, channels)
            counted += len(inside)
            for progress in self._both(gap.guild_id):
                progress.messages += sum(c.amounts["messages"] for c in credits)
            cursor = page_at
            if end:
                if capped:
                    log.warning("guild %s channel %s: backfill stopped at %d messages (cap)",
                                gap.guild_id, gap.channel_id, self.max_messages)
                self.ledger.finished(gap)
                return

    async def _read_page(self, access: HistoryAccess, channel_id: int, after: int) -> list[HistoryMessage]:
        """One page of history; Discord's passing trouble (5xx, a timeout) is waited out a few
        times (a read changes nothing, so asking again is safe)."""
        for delay in self.retry_delays:
            try:
                return await access.history(channel_id, after, PAGE)
            except HistoryUnavailable as exc:
                log.info("history of channel %s: %s; asking again in %.0fs", channel_id, exc, delay)
                await asyncio.sleep(delay)
        return await access.history(channel_id, after, PAGE)

    @staticmethod
    def _credits(guild_id: int, channel_id: int, messages: Iterable[HistoryMessage],
                 tz: object) -> tuple[list[Credit], list[ChannelCount]]:
        """The page's counts per member and day, and the channel's per day (`channel_id`: the
        channel they count under)."""
        sums: dict[tuple[int, str], int] = {}
        days: dict[str, int] = {}
        for m in messages:
            if m.author_id is None:
                continue
            day = day_of(snowflake_ms(m.id), tz)  # type: ignore[arg-type]
            sums[(m.author_id, day)] = sums.get((m.author_id, day), 0) + 1
            days[day] = days.get(day, 0) + 1
        return ([Credit(guild_id, member, day, {"messages": n}) for (member, day), n in sums.items()],
                [ChannelCount(guild_id, channel_id, day, n) for day, n in days.items()])

    async def _commit(self, gap: Gap, credits: list[Credit], page_at: int, end: bool,
                      channels: list[ChannelCount]) -> None:
        """The page's counts and the range's progress as one guarded write (in the outbox when
        MongoDB is away: `submit` returns once the unit is durable)."""
        async with self._write_lock:
            if not gap.synced and self._before_write is not None:
                await self._before_write()  # the live batches that set `lo` are written first
            gap.synced = True
            last = gap.hi - 1 if end and gap.hi is not None else None
            at = page_at if last is None else last
            mark = None if last is None else ChannelMark(gap.guild_id, gap.channel_id, last)
            await self._write(credits, self._next_seq(), gap.snapshot(at=at, done=end), mark, channels)
            gap.at = max(gap.at, at)
