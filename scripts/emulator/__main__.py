"""Run the Discord emulator on its own: ``python -m scripts.emulator --guild guild.json``.

Prints the two settings a bot needs (DISCORD_API_BASE, DISCORD_GATEWAY_URL) and serves until
SIGINT or SIGTERM. A fixture file holds one guild object or ``{"guilds": [...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .server import Emulator


def _guild_specs(paths: list[str]) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        specs.extend(data["guilds"] if isinstance(data, dict) and "guilds" in data else [data])
    return specs


async def _serve(args: argparse.Namespace) -> None:
    emulator = Emulator(token=args.token, bot_name=args.bot_name)
    for spec in _guild_specs(args.guild):
        emulator.add_guild(spec)
    await emulator.start(args.host, args.port)
    print(f"DISCORD_API_BASE={emulator.api_base}", flush=True)
    print(f"DISCORD_GATEWAY_URL={emulator.gateway_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--guild", action="append", default=[], help="guild fixture JSON file (repeatable)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="accept only this bot token (default: any)")
    parser.add_argument("--bot-name", default="Tracker")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except (OSError, ValueError, KeyError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
