"""A local Discord emulator (REST API v10 + gateway) for end-to-end tests of an unmodified
discord.py bot. See docs/emulator.md."""

from .constants import CallbackType, CloseCode, Intent, InteractionType, OptionType, Perm
from .interactions import InteractionRecord
from .latency import NO_LATENCY, REALISTIC_LATENCY, Latency
from .pointing import discord_pointed_at
from .rest import RecordedRequest
from .server import DEFAULT_BOT_ID, DispatchedEvent, Emulator
from .snowflake import SnowflakeGenerator, snowflake_from_time, time_from_snowflake

__all__ = [
    "DEFAULT_BOT_ID",
    "NO_LATENCY",
    "REALISTIC_LATENCY",
    "CallbackType",
    "CloseCode",
    "DispatchedEvent",
    "Emulator",
    "Intent",
    "InteractionRecord",
    "InteractionType",
    "Latency",
    "OptionType",
    "Perm",
    "RecordedRequest",
    "SnowflakeGenerator",
    "discord_pointed_at",
    "snowflake_from_time",
    "time_from_snowflake",
]
