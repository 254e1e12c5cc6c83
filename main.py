"""Entry point: settings, logging, then the bot (a database check without a token; --demo: offline demo)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from app.wiring.discord_endpoints import invite_url
from app.wiring.logs import secrets_of, setup_logging
from app.wiring.runtime import FATAL_STARTUP_ERRORS, check_database, run_bot
from app.wiring.settings import SettingsError, load_settings

log = logging.getLogger("main")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Discord activity and invite tracker on MongoDB")
    parser.add_argument("--demo", action="store_true",
                        help="run a built-in scenario offline (local Discord emulator, embedded database) "
                             "and print tracked vs. true numbers")
    return parser.parse_args(argv)


async def _check_only(settings: object) -> None:
    database, probe = await check_database(settings)  # type: ignore[arg-type]
    print(f"MongoDB ({database.kind}) at {database.host} is live: probe write read back in "
          f"{probe.round_trip_ms:.1f} ms.")
    print(f"Data lives in: {database.location} (database '{settings.mongodb_db}').")  # type: ignore[attr-defined]
    print("DISCORD_TOKEN is not set, so the bot did not connect to Discord.")
    print("To run it: copy .env.example to .env, set DISCORD_TOKEN (and MONGODB_URI for a real "
          "MongoDB), then run: .venv/bin/python main.py")
    print(f"Add it to a server with (your application id from the developer portal): {invite_url()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.demo:
        from scripts.scenario.demo import run_demo

        setup_logging("WARNING")
        return run_demo()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"fatal: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format, secrets_of(settings))
    try:
        if settings.discord_token is None:
            asyncio.run(_check_only(settings))
        else:
            asyncio.run(run_bot(settings))
    except FATAL_STARTUP_ERRORS as exc:
        log.critical("fatal: %s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
