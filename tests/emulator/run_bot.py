"""Run the probe bot as its own process: ``python -m tests.emulator.run_bot``.

Reads DISCORD_API_BASE, DISCORD_GATEWAY_URL and DISCORD_TOKEN from the environment, the way the
real bot's settings point it at the emulator.
"""

from __future__ import annotations

import asyncio
import os

from scripts.emulator import discord_pointed_at

from .botapp import EventLog, make_bot


async def main() -> None:
    with discord_pointed_at(os.environ["DISCORD_API_BASE"], os.environ["DISCORD_GATEWAY_URL"]):
        bot = make_bot(EventLog())
        async with bot:
            await bot.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main())
