"""Abuse limits: per-user cooldowns on heavy commands and one running job per guild.

Cooldowns run on the bot's clock (`bot.clock`), so tests move time with the ManualClock. A
command that is cooling down fails its check with `app_commands.CommandOnCooldown`; the command
tree answers it ephemerally with "try again in Ns" (see `app.wiring.commands.TrackerTree.on_error`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import discord
from discord import app_commands

log = logging.getLogger(__name__)
T = TypeVar("T")

# (runs, seconds): at most `runs` runs of a heavy command by one member (per guild) in `seconds`.
UD_CHART_LIMIT = (2, 60.0)
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
