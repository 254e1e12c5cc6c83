"""`/server stats`: a guild's joins, leaves, net growth, messages and voice time per guild-local day.

No member's numbers: sums over the whole guild. Where each figure comes from (docs/server-stats.md):

- messages and voice time per day: the ranks' mirror in memory (`Ranks.day_sums`: the sum of the
  mirrored day documents) when the guild's ranks are built and cover the period, else one
  aggregation over the guild's day documents of the period (`ActivityRepository.guild_days`). Both
  read the day documents, which are already bucketed by the guild's time zone when counted;
- joins and leaves per day: one read of the guild's join documents that joined or left in the
  period (`JoinRepository.moves`), each time put on its guild-local day with the time zone now set.
  The invite boards in memory keep no leave times, so they cannot answer this;
- messages per channel (the top channels): the channel table in memory (`ChannelStats.totals`)
  when the guild's is built and covers the period, else one aggregation over the guild's
  channel-day documents of the period (`ActivityRepository.channel_totals`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.tracking.channel_stats import ChannelStats
from app.tracking.ranks import Ranks
from app.tracking.voice import zone
from app.wiring.clock import from_ms, to_ms
from repositories.activity import ActivityRepository, Counters
from repositories.joins import JoinRepository

log = logging.getLogger(__name__)
PERIODS = {"7d": 7, "30d": 30}
TOP_CHANNELS = 10
MEMORY, DATABASE = "memory", "database"


@dataclass(frozen=True)
class Figures:
    """One day's (or a period's) figures for the whole guild."""

    joins: int = 0
    leaves: int = 0
    messages: int = 0
    voice_s: int = 0

    @property
    def net(self) -> int:
        """Net growth: joins minus leaves."""
        return self.joins - self.leaves

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.joins + other.joins, self.leaves + other.leaves,
                       self.messages + other.messages, self.voice_s + other.voice_s)


@dataclass(frozen=True)
class ServerDay:
    day: date
    figures: Figures


@dataclass(frozen=True)
class ServerStats:
    guild_id: int
    period: str  # a key of PERIODS
    time_zone: str  # the IANA name the days are in
    days: tuple[ServerDay, ...]  # oldest first, the last one today
    activity_from: str  # MEMORY or DATABASE: where messages and voice were read
    channels: tuple[tuple[int, int], ...] = ()  # the top listed channels: (channel id, messages), most first
    channel_messages: int = 0  # every channel's messages of the period, listed or not (the shares' whole)
    channels_from: str = DATABASE  # where the channels were read

    @property
    def totals(self) -> Figures:
        return sum((d.figures for d in self.days), Figures())


def period_days(period: str, now: datetime, tz: ZoneInfo) -> list[date]:
    """The guild-local days of `period`, oldest first, ending today. Raises KeyError on a bad period."""
    today = now.astimezone(tz).date()
    return [today - timedelta(days=back) for back in range(PERIODS[period] - 1, -1, -1)]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of `day` in `tz` (where midnight is skipped or repeated, the earliest
    instant of the day: the offset before the change applies, as `fold=0` reads it)."""
    return datetime.combine(day, time(0), tzinfo=tz)


def time_range_ms(days: Sequence[date], tz: ZoneInfo) -> tuple[int, int]:
    """Epoch ms from the start of the first day to the start of the day after the last one."""
    return (to_ms(local_midnight(days[0], tz)),
            to_ms(local_midnight(days[-1] + timedelta(days=1), tz)))


def by_local_day(times_ms: Iterable[int], tz: ZoneInfo) -> Counter[date]:
    """How many of `times_ms` fall on each guild-local day."""
    return Counter(from_ms(ms).astimezone(tz).date() for ms in times_ms)


def assemble(days: Sequence[date], activity: Mapping[str, Counters], joins: Mapping[date, int],
             leaves: Mapping[date, int]) -> tuple[ServerDay, ...]:
    """One `ServerDay` per day of `days` (a day without anything has zeros)."""
    found = []
    for day in days:
        counters = activity.get(day.isoformat(), Counters())
        found.append(ServerDay(day, Figures(joins.get(day, 0), leaves.get(day, 0), counters.messages,
                                            counters.voice_s)))
    return tuple(found)


def top_channels(totals: Mapping[int, int], limit: int = TOP_CHANNELS) -> tuple[tuple[int, int], ...]:
    """The `limit` channels with the most messages (ties: the lower channel id first)."""
    ranked = sorted(((c, n) for c, n in totals.items() if n > 0), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:limit])


class ServerStatsReader:
    """Reads a guild's figures per day for `/server stats` (see the module's docstring)."""

    def __init__(self, activity: ActivityRepository, joins: JoinRepository,
                 ranks: Ranks | None = None, channel_stats: ChannelStats | None = None) -> None:
        self.activity = activity
        self.joins = joins
        self.ranks = ranks
        self.channel_stats = channel_stats

    async def read(self, guild_id: int, period: str, now: datetime, time_zone: str,
                   listed: Callable[[int], bool] | None = None) -> ServerStats:
        """The period's figures; `listed(channel_id)` False keeps a channel out of the top channels
        (its messages stay in their whole)."""
        tz = zone(time_zone)
        days = period_days(period, now, tz)
        activity, source = await self.activity_days(guild_id, days[0].isoformat(), days[-1].isoformat())
        joined, left = await self.joins.moves(guild_id, *time_range_ms(days, tz))
        joins = by_local_day(joined, tz)
        leaves = by_local_day((left_ms for _, left_ms in left), tz)
        channels, channels_from = await self.channel_totals(guild_id, days[0].isoformat(),
                                                            days[-1].isoformat())
        shown = {c: n for c, n in channels.items() if listed is None or listed(c)}
        return ServerStats(guild_id, period, tz.key, assemble(days, activity, joins, leaves), source,
                           top_channels(shown), sum(channels.values()), channels_from)

    async def channel_totals(self, guild_id: int, since: str, until: str) -> tuple[dict[int, int], str]:
        """Messages per channel of the period, and where they were read (MEMORY or DATABASE)."""
        table = self.channel_stats
        if table is not None and table.covers(guild_id, since):
            return table.totals(guild_id, since, until), MEMORY
        log.debug("guild %s: channel table not built, top channels from the channel-day documents", guild_id)
        return await self.activity.channel_totals(guild_id, since, until), DATABASE

    async def activity_days(self, guild_id: int, since: str, until: str) -> tuple[dict[str, Counters], str]:
        """The guild's counters per day, and where they were read (MEMORY or DATABASE)."""
        ranks = self.ranks
        if ranks is not None and ranks.covers(guild_id, since):
            return await ranks.day_sums(guild_id, since, until), MEMORY
        log.debug("guild %s: ranks not built, server stats from the day documents", guild_id)
        return await self.activity.guild_days(guild_id, since, until), DATABASE
