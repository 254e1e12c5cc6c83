"""Seasons: a guild's named ranges of days, each from its start day to the next season's start.

A season starts at 00:00 of a guild-local day (the guild's `time_zone`): the activity is kept per
member and guild-local day (`activity` day documents), so a season's figures are the sums of the
day documents of its days, answered by the ranks in memory (`app.tracking.ranks`, a span
`[start_day, end_day)`). Starting a season ends the one before on the day before. The seasons are
stored in `seasons` (`repositories.seasons`); nothing is deleted, earlier seasons stay readable.

No Discord here: `cogs/seasons.py` and `cogs/stats.py` translate the commands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.tracking.voice import zone
from app.wiring.clock import Clock
from repositories.guild_settings import GuildSettingsRepository
from repositories.seasons import SeasonRepository, StoredSeason, name_key

log = logging.getLogger(__name__)
MAX_NAME = 40
STARTS = {"today": 0, "tomorrow": 1}


@dataclass(frozen=True)
class Season:
    """One season: the days from `start_day` (inclusive) to `end_day` (exclusive; None: open)."""

    number: int  # 1 for the guild's first season
    name: str
    start_day: str
    end_day: str | None
    started_by: int

    @property
    def span(self) -> tuple[str, str | None]:
        return self.start_day, self.end_day

    @property
    def last_day(self) -> str | None:
        """The season's last day (inclusive; None: open)."""
        if self.end_day is None:
            return None
        return (date.fromisoformat(self.end_day) - timedelta(days=1)).isoformat()


class SeasonRefused(Exception):
    """Why a season cannot start: `reason` (one of the constants below), and the name or season it
    is about; `cogs/seasons.py` words it."""

    def __init__(self, reason: str, name: str = "", day: str = "") -> None:
        super().__init__(reason, name, day)
        self.reason, self.name, self.day = reason, name, day


TOO_LONG, UNPRINTABLE, TAKEN, NOT_AFTER, NEXT_WAITING, RACE = (
    "too long", "unprintable", "taken", "not after", "next waiting", "race")


def with_ends(stored: list[StoredSeason]) -> list[Season]:
    """The seasons oldest first, each ending where the next starts."""
    ordered = sorted(stored, key=lambda s: s.start_day)
    ends: list[str | None] = [*(s.start_day for s in ordered[1:]), None][:len(ordered)]
    return [Season(i + 1, s.name, s.start_day, end, s.started_by)
            for i, (s, end) in enumerate(zip(ordered, ends, strict=True))]


def current_of(seasons: list[Season], today: str) -> Season | None:
    """The season `today` is in (a season starting tomorrow is not current yet)."""
    started = [s for s in seasons if s.start_day <= today]
    return started[-1] if started else None


def named(seasons: list[Season], name: str) -> Season | None:
    key = name_key(name)
    return next((s for s in seasons if name_key(s.name) == key), None)


def default_name(seasons: list[Season]) -> str:
    """`Season N`, N the season's number, or the next number free."""
    n = len(seasons) + 1
    while named(seasons, f"Season {n}") is not None:
        n += 1
    return f"Season {n}"


def day_start(day: str, tz: ZoneInfo) -> datetime:
    """00:00 of the guild-local `day`, as an aware instant."""
    return datetime.combine(date.fromisoformat(day), time(0), tzinfo=tz)


class Seasons:
    """A guild's seasons: read, resolve, start."""

    def __init__(self, repo: SeasonRepository, guild_settings: GuildSettingsRepository, clock: Clock) -> None:
        self.repo = repo
        self.guild_settings = guild_settings
        self.clock = clock

    async def zone(self, guild_id: int) -> ZoneInfo:
        return zone((await self.guild_settings.get(guild_id)).time_zone)

    async def today(self, guild_id: int) -> str:
        return self.clock.now().astimezone(await self.zone(guild_id)).date().isoformat()

    async def all(self, guild_id: int) -> list[Season]:
        return with_ends(await self.repo.of_guild(guild_id))

    async def current(self, guild_id: int) -> Season | None:
        return current_of(await self.all(guild_id), await self.today(guild_id))

    async def season_range(self, guild_id: int) -> tuple[str, str | None] | None:
        """The current season's days `[since, until)` (until None: open); None: no season yet."""
        season = await self.current(guild_id)
        return season.span if season is not None else None

    async def named(self, guild_id: int, name: str) -> Season | None:
        return named(await self.all(guild_id), name)

    async def start(self, guild_id: int, name: str | None, starts: str, by: int) -> tuple[Season, ZoneInfo]:
        """Start a season at 00:00 today or tomorrow (guild time): the stored season and the guild's
        zone. Raises `SeasonRefused` (a bad or taken name, a start not after the latest season's)."""
        seasons = await self.all(guild_id)
        tz = await self.zone(guild_id)
        today = self.clock.now().astimezone(tz).date()
        start_day = (today + timedelta(days=STARTS[starts])).isoformat()
        text = (name or "").strip() or default_name(seasons)
        if len(text) > MAX_NAME:
            raise SeasonRefused(TOO_LONG)
        if not text.isprintable():
            raise SeasonRefused(UNPRINTABLE)
        if named(seasons, text) is not None:
            raise SeasonRefused(TAKEN, text)
        latest = seasons[-1] if seasons else None
        if latest is not None and start_day <= latest.start_day:
            waiting = latest.start_day > today.isoformat()
            raise SeasonRefused(NEXT_WAITING if waiting else NOT_AFTER, latest.name, latest.start_day)
        wanted = StoredSeason(guild_id, text, start_day, by, self.clock.now())
        stored = await self.repo.insert(wanted)
        if stored is None or (stored.name, stored.started_by) != (wanted.name, wanted.started_by):
            raise SeasonRefused(RACE)
        log.info("guild %s: season %r starts on %s (by %s)", guild_id, text, start_day, by)
        return (await self.all(guild_id))[-1], tz
