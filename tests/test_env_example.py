"""`.env.example` documents every setting, each with a comment, and loads as valid settings."""

from __future__ import annotations

import re
from pathlib import Path

from app.wiring.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"
COMPOSE_ONLY = {"MONGO_ROOT_USER", "MONGO_ROOT_PASSWORD", "MONGO_APP_USER", "MONGO_APP_PASSWORD",
                "COMPOSE_PROFILES", "MONGO_MEMORY_LIMIT", "BOT_MEMORY_LIMIT", "BACKUP_KEEP_DAYS",
                "BACKUP_KEEP_MIN"}


def example_entries() -> dict[str, tuple[str, str]]:
    """NAME -> (value, the comment line right above it)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    entries: dict[str, tuple[str, str]] = {}
    for index, line in enumerate(lines):
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            assert match.group(1) not in entries, f"{match.group(1)} is listed twice"
            above = lines[index - 1] if index else ""
            entries[match.group(1)] = (match.group(2), above)
    return entries


def test_every_setting_is_documented_with_a_comment() -> None:
    entries = example_entries()
    settings = {name.upper() for name in Settings.model_fields}
    missing = settings - set(entries)
    assert not missing, f".env.example lacks {sorted(missing)}"
    assert set(entries) - settings == COMPOSE_ONLY, "only the compose variables are not bot settings"
    for name, (_, comment) in entries.items():
        assert comment.startswith("# ") and len(comment) > 10, f"{name} has no comment line above it"


def test_token_and_passwords_are_empty() -> None:
    entries = example_entries()
    for name in ("DISCORD_TOKEN", "MONGODB_URI", "MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD"):
        assert entries[name][0] == "", f"{name} must be empty in the example"


def test_the_example_loads_and_its_values_are_the_defaults() -> None:
    loaded = Settings(_env_file=EXAMPLE)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert loaded.model_dump() == defaults.model_dump()
    assert loaded.discord_token is None and loaded.health_port is None
