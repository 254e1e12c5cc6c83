"""What every operator command line shares: settings from the environment, quiet redacted logging."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from app.wiring.logs import secrets_of, setup_logging
from app.wiring.settings import Settings, SettingsError, load_settings


def tool_settings() -> Settings | None:
    """The settings, with logging at WARNING and secrets redacted; None (after one line on stderr
    naming the bad setting) when they do not load."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    setup_logging("WARNING", settings.log_format, secrets_of(settings))
    return settings


def run_tool(work: Callable[[Settings], object], failure: str,
             errors: tuple[type[BaseException], ...]) -> int:
    """A tool's main: 2 when the settings do not load, 1 (after "error: {failure}: ..." on stderr)
    when `work` raises one of `errors`, else 0."""
    settings = tool_settings()
    if settings is None:
        return 2
    try:
        work(settings)
    except errors as exc:
        print(f"error: {failure}: {exc}", file=sys.stderr)
        return 1
    return 0


def guild_id(value: str) -> int:
    """An argparse type: a guild id, a positive 64-bit integer."""
    number = int(value)
    if not 0 < number < 2**63:
        raise argparse.ArgumentTypeError("a guild id is a positive 64-bit integer")
    return number
