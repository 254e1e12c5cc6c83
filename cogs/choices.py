"""Autocomplete suggestions: what the member typed matched against a list of known values.

Discord shows at most 25 suggestions, each name and value at most 100 characters; a suggestion is
only a help: the command still checks the value it gets (a member may type anything).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from zoneinfo import available_timezones

from discord import app_commands

MAX_CHOICES = 25
MAX_TEXT = 100
# Offered first when nothing is typed yet.
COMMON_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
                "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney")


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def matching(current: str, items: Iterable[tuple[str, str]]) -> list[app_commands.Choice[str]]:
    """(name, value) pairs whose name or value contains `current` (case-insensitive), those that
    start with it first, in their given order; at most 25."""
    typed = current.strip().lower()
    starts: list[tuple[str, str]] = []
    contains: list[tuple[str, str]] = []
    for name, value in items:
        texts = (name.lower(), value.lower())
        if any(t.startswith(typed) for t in texts):
            starts.append((name, value))
        elif any(typed in t for t in texts):
            contains.append((name, value))
    return [app_commands.Choice(name=clip(name), value=value[:MAX_TEXT])
            for name, value in (starts + contains)[:MAX_CHOICES]]


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The IANA zones this system knows (what `/settings set time_zone` accepts), common ones first."""
    known = available_timezones()
    common = tuple(z for z in COMMON_ZONES if z in known)
    return common + tuple(sorted(known - set(common)))


def time_zone_choices(current: str) -> list[app_commands.Choice[str]]:
    return matching(current, ((zone, zone) for zone in time_zones()))
