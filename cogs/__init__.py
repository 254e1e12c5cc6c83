"""Discord-facing code: listeners and slash commands. Cogs get repositories from the bot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def all_cog_factories() -> list[Callable[[Any], Any]]:
    """Every cog the bot loads, in order."""
    return []
