"""Abuse limits: one gate that every interaction passes through, and one running job per guild.

The rule (numbers in `Settings`, documented in docs/security.md, "Abuse limits"):
- every command, button, select and autocomplete of a member passes `Gate.admit` (commands and
  autocomplete in `TrackerTree.interaction_check`, components in `GatedView.interaction_check`):
  at most `limit_in_flight` of a member's interactions run at once in a guild, buttons and selects
  at most `limit_clicks` per `limit_clicks_seconds`, autocomplete `limit_autocomplete` per
  `limit_autocomplete_seconds`; heavy commands add their own window (`cooldown`);
- every read that may aggregate in MongoDB goes through `app.wiring.commands.read_or_defer`, which
  holds the guild's heavy-read slot (`Gate.heavy`: one at a time per guild; a second waits up to
  `heavy_read_wait_seconds`, then is told to retry) and defers the interaction past 0.8 s.

Windows run on the bot's clock (`bot.clock`), so tests move time with the ManualClock. A
command that is cooling down fails its check with `app_commands.CommandOnCooldown`; the command
tree answers it ephemerally with "try again in Ns" (see `app.wiring.commands.TrackerTree.on_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import discord
from discord import app_commands

log = logging.getLogger(__name__)
T = TypeVar("T")

# (runs, seconds): at most `runs` runs of a heavy command by one member (per guild) in `seconds`.
UD_CHART_LIMIT = (2, 60.0)
SERVER_STATS_LIMIT = (2, 60.0)  # /server stats draws a chart too
LEADERBOARD_LIMIT = (3, 30.0)
BACKUP_LIMIT = (2, 300.0)
EXPORT_LIMIT = (3, 60.0)


class Cooldowns:
    """Recent runs per (command, guild, user), kept as the time each one leaves its window."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._expiries: dict[tuple[str, int, int], list[float]] = {}

    def hit(self, key: str, guild_id: int, user_id: int, limit: tuple[int, float]) -> float:
        """0 when the user may go (the run is counted), else the seconds until they may."""
        runs, seconds = limit
        now = self._now().timestamp()
        self._expiries = {k: kept for k, v in self._expiries.items() if (kept := [t for t in v if t > now])}
        recent = self._expiries.setdefault((key, guild_id, user_id), [])
        if len(recent) >= runs:
            return recent[0] - now
        recent.append(now + seconds)
        return 0.0


def retry_text(retry_after: float) -> str:
    seconds = max(1, math.ceil(retry_after))
    return f"You are going too fast: try again in {seconds}s."


IN_FLIGHT_RETRY_SECONDS = 3.0  # what a member is told when their earlier interactions still run
BUSY_RETRY_SECONDS = 5.0  # what a member is told when the guild's heavy-read slot stays taken


def busy_text(retry_after: float) -> str:
    seconds = max(1, math.ceil(retry_after))
    return f"The bot is busy reading this server's numbers: try again in {seconds}s."


class Busy(app_commands.AppCommandError):
    """The guild's heavy-read slot stayed taken past the wait: the member is told to retry."""

    def __init__(self, retry_after: float = BUSY_RETRY_SECONDS) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


@dataclass(frozen=True)
class GateLimits:
    in_flight: int = 2
    clicks: tuple[int, float] = (10, 20.0)
    autocomplete: tuple[int, float] = (20, 10.0)
    heavy_wait: float = 2.0

    @classmethod
    def of(cls, settings: Any) -> GateLimits:
        return cls(settings.limit_in_flight, (settings.limit_clicks, settings.limit_clicks_seconds),
                   (settings.limit_autocomplete, settings.limit_autocomplete_seconds),
                   settings.heavy_read_wait_seconds)


class Gate:
    """The one rule every interaction passes (see the module's docstring)."""

    def __init__(self, cooldowns: Cooldowns, limits: GateLimits | None = None) -> None:
        self.cooldowns = cooldowns
        self.limits = limits or GateLimits()
        self._in_flight: dict[tuple[int, int], set[int]] = {}
        self._heavy: dict[int, asyncio.Lock] = {}

    def admit(self, interaction: discord.Interaction) -> float:
        """0 when the interaction may run, else the seconds after which the member may try again.

        An admitted command, button or select counts as in flight until the task handling it ends
        (discord.py runs each interaction in a task of its own), errors and refusals included."""
        key = (interaction.guild_id or 0, interaction.user.id)
        kind = interaction.type
        if kind is discord.InteractionType.autocomplete:
            return self.cooldowns.hit("autocomplete", *key, self.limits.autocomplete)
        running = self._in_flight.setdefault(key, set())
        if len(running) >= self.limits.in_flight:
            return IN_FLIGHT_RETRY_SECONDS
        if kind is discord.InteractionType.component:
            left = self.cooldowns.hit("click", *key, self.limits.clicks)
            if left > 0:
                return left
        running.add(interaction.id)
        task = asyncio.current_task()
        if task is not None:  # the task that handles the interaction: in flight until it ends
            task.add_done_callback(lambda _: self.release(interaction))
        return 0.0

    def release(self, interaction: discord.Interaction) -> None:
        key = (interaction.guild_id or 0, interaction.user.id)
        running = self._in_flight.get(key)
        if running is not None:
            running.discard(interaction.id)
            if not running:
                del self._in_flight[key]

    def in_flight(self, guild_id: int, user_id: int) -> int:
        return len(self._in_flight.get((guild_id, user_id), ()))

    @contextlib.asynccontextmanager
    async def heavy(self, guild_id: int) -> AsyncIterator[None]:
        """Hold the guild's heavy-read slot; raises `Busy` when it stays taken past the wait."""
        lock = self._heavy.setdefault(guild_id, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), self.limits.heavy_wait)
        except TimeoutError:
            log.info("guild %s: heavy-read slot still taken after %.1fs; asked to retry",
                     guild_id, self.limits.heavy_wait)
            raise Busy() from None
        try:
            yield
        finally:
            lock.release()


def cooldown(key: str, limit: tuple[int, float], *,
             when: Callable[[discord.Interaction], bool] | None = None) -> Callable[[T], T]:
    """A check: at most `limit` = (runs, seconds) runs per member (only counted when `when` says so)."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if when is not None and not when(interaction):
            return True
        cooldowns: Cooldowns | None = getattr(interaction.client, "cooldowns", None)
        if cooldowns is None:
            return True
        left = cooldowns.hit(key, interaction.guild_id or 0, interaction.user.id, limit)
        if left > 0:
            log.info("/%s by %s in guild %s: cooling down, %.0fs left", key, interaction.user.id,
                     interaction.guild_id, left)
            raise app_commands.CommandOnCooldown(app_commands.Cooldown(*limit), left)
        return True

    return app_commands.check(predicate)


def wants_chart(interaction: discord.Interaction) -> bool:
    return bool(getattr(interaction.namespace, "chart", False))


class SingleFlight:
    """At most one job per key (a guild) at a time; a second caller is refused, not queued."""

    def __init__(self) -> None:
        self._running: dict[Any, str] = {}

    def running(self, key: Any) -> str | None:
        """What is running for `key` (None: nothing)."""
        return self._running.get(key)

    @contextlib.contextmanager
    def hold(self, key: Any, what: str) -> Iterator[bool]:
        """Yields True when this caller holds `key` until the block ends, False when it is busy."""
        if key in self._running:
            yield False
            return
        self._running[key] = what
        try:
            yield True
        finally:
            self._running.pop(key, None)
