"""Run the bot (or, without a token, just prove the database works) with the right database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord

from app.storage.database import EmbeddedServer, EmbeddedServerError, host_of, make_client
from app.storage.lease import DataDirInUse, DataDirLock
from app.storage.private_files import make_private
from app.storage.probe import ProbeFailed, ProbeResult, run_probe
from app.wiring.bot import TrackerBot, install_signal_handlers
from app.wiring.clock import SystemClock
from app.wiring.discord_endpoints import configure_endpoints
from app.wiring.gateway import use_stepped_guild_create
from app.wiring.settings import Settings
from repositories.probe import ProbeRepository

log = logging.getLogger(__name__)
CLIENT_CLOSE_SECONDS = 1.0

class DiscordUnreachable(RuntimeError):
    """The Discord API (or the configured proxy) could not be reached."""


# Startup failures that end in one clear line and a non-zero exit, never a traceback.
FATAL_STARTUP_ERRORS: tuple[type[BaseException], ...] = (
    ProbeFailed,
    EmbeddedServerError,
    discord.LoginFailure,
    discord.PrivilegedIntentsRequired,
    DiscordUnreachable,
    DataDirInUse,
)


class Database:
    """The client, the database and where it lives."""

    def __init__(self, client: Any, name: str, host: str, kind: str, location: str) -> None:
        self.client = client
        self.db = client[name]
        self.host = host
        self.kind = kind
        self.location = location


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The external MongoDB when MONGODB_URI is set, else the embedded server, stopped on exit."""
    server: EmbeddedServer | None = None
    make_private(settings.data_dir)  # before the embedded server (a child: it inherits the umask)
    if settings.mongodb_uri is not None:
        uri = settings.mongodb_uri.get_secret_value()
        kind, location = "external", host_of(uri)
    else:
        server = EmbeddedServer(settings.data_dir)
        uri = server.start()
        kind, location = "embedded", str(server.db_dir.resolve())
        log.warning(
            "MONGODB_URI is not set: using the embedded database in %s. It is for trying the bot "
            "and small servers; set MONGODB_URI to a MongoDB replica set for production.",
            location,
        )
    client = make_client(uri)
    try:
        yield Database(client, settings.mongodb_db, host_of(uri), kind, location)
    finally:
        # Closing ends the driver's server sessions, which waits for server selection when MongoDB
        # is away: bounded, so a SIGTERM during an outage still exits in time.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.close(), CLIENT_CLOSE_SECONDS)
        if server is not None:
            server.stop()


async def check_database(settings: Settings) -> tuple[Database, ProbeResult]:
    """The no-token mode: start the database, prove a write lands, report where data lives."""
    async with open_database(settings) as database:
        probe = ProbeRepository(database.db)
        result = await run_probe(probe, database.host, SystemClock(), settings.probe_timeout_seconds)
        return database, result


async def run_bot(settings: Settings) -> None:
    if settings.discord_token is None:
        raise ValueError("run_bot needs DISCORD_TOKEN")
    configure_endpoints(settings.discord_api_base, settings.discord_gateway_url)
    use_stepped_guild_create()
    make_private(settings.data_dir)  # before the first file of this run is created there
    lock = DataDirLock(settings.data_dir)
    lock.acquire()  # this process's outbox and lease identity: never shared with another process
    try:
        await _run_bot_with_lock(settings)
    finally:
        lock.release()


async def _run_bot_with_lock(settings: Settings) -> None:
    async with open_database(settings) as database:
        clock = SystemClock()
        # The probe runs before logging in to Discord: no gateway session is opened for a bot
        # that could not store what it receives.
        probe = await run_probe(
            ProbeRepository(database.db), database.host, clock, settings.probe_timeout_seconds
        )
        bot = TrackerBot(
            settings, database.db, database.host, clock=clock, probe_result=probe, server_kind=database.kind
        )
        install_signal_handlers(bot)
        async with bot:
            try:
                await bot.start(settings.discord_token.get_secret_value())
            except (aiohttp.ClientConnectionError, OSError) as exc:
                where = settings.discord_api_base or "discord.com"
                raise DiscordUnreachable(f"cannot reach Discord at {where}: {exc}") from None
