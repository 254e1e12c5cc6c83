"""Settings from the environment and `.env`; every one is documented in `.env.example`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    discord_token: SecretStr | None = None
    mongodb_uri: SecretStr | None = None
    mongodb_db: str = Field(default="tracker", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    data_dir: Path = Path("data")

    voice_flush_seconds: float = Field(default=120, gt=0, le=3600)
    voice_downtime_cap_seconds: float = Field(default=600, ge=0, le=86400)
    backfill_max_age_seconds: float = Field(default=86400, ge=0, le=14 * 86400)
    backfill_max_messages: int = Field(default=10_000, ge=0, le=1_000_000)
    rewards_seconds: float = Field(default=300, ge=10, le=86400)  # activity roles evaluated this often
    # the activity roles of members whose counts changed are checked this long after the change
    # (the changes of that time checked together)
    rewards_change_seconds: float = Field(default=5, ge=0.05, le=300)

    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    # HTTP(S) proxy for every connection to Discord (REST and gateway); may hold user:password@.
    discord_proxy: SecretStr | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    outbox_alarm_entries: int = Field(default=100_000, ge=1, le=100_000_000)

    probe_timeout_seconds: float = Field(default=30, gt=0, le=600)
    write_retry_attempts: int = Field(default=5, ge=1, le=20)
    write_retry_max_seconds: float = Field(default=10, gt=0, le=300)
    lease_ttl_seconds: float = Field(default=15, ge=2, le=15)

    # Abuse limits (app/wiring/limits.py, docs/security.md "Abuse limits").
    limit_in_flight: int = Field(default=2, ge=1, le=20)  # a member's interactions running at once
    limit_clicks: int = Field(default=10, ge=1, le=1000)  # button / select uses per member...
    limit_clicks_seconds: float = Field(default=20, gt=0, le=3600)  # ...in this window
    limit_autocomplete: int = Field(default=20, ge=1, le=1000)
    limit_autocomplete_seconds: float = Field(default=10, gt=0, le=3600)
    heavy_read_wait_seconds: float = Field(default=2.0, ge=0, le=10)  # then "busy, try again"
    erase_limit: int = Field(default=10, ge=1, le=1000)  # erases that write a backup, per guild...
    erase_limit_seconds: float = Field(default=3600, gt=0, le=86400)  # ...in this window
    backup_keep_per_guild: int = Field(default=10, ge=1, le=1000)  # /backup-data backups kept
    erase_backup_keep_per_guild: int = Field(default=100, ge=1, le=100_000)  # erase backups kept
    backup_quota_mb: int = Field(default=2048, ge=1, le=10_000_000)  # all of DATA_DIR/backups

    health_port: int | None = Field(default=None, ge=1, le=65535)
    health_host: str = "127.0.0.1"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("discord_api_base", "discord_gateway_url", "health_port", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("discord_api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("mongodb_uri", "discord_token", "discord_proxy", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("mongodb_uri")
    @classmethod
    def _mongo_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("discord_proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        try:
            parts = urlsplit(value.get_secret_value())
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            raise ValueError("must be a URL like http://host:3128") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. http://host:3128")
        return value

    @property
    def embedded(self) -> bool:
        """True when no MONGODB_URI is set and the bot runs its own embedded server."""
        return self.mongodb_uri is None


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise SettingsError naming the first bad setting in one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        raise SettingsError(f"setting {name} is invalid: {error['msg']}") from None
