"""Point discord.py at a REST/gateway proxy or the local emulator.

discord.py has no constructor option for this; these two class attributes are what it reads
(REST, webhooks and interaction callbacks use Route.BASE; commands.Bot connects to
DEFAULT_GATEWAY without asking GET /gateway/bot).
"""

from __future__ import annotations

import logging

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

log = logging.getLogger(__name__)


def configure_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    if api_base:
        Route.BASE = api_base
        log.info("Discord REST API base: %s", api_base)
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        log.info("Discord gateway: %s", gateway_url)


def bot_intents() -> discord.Intents:
    """What the tracker needs, and no message content (counting needs none)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    intents.voice_states = True
    intents.invites = True
    intents.guild_messages = True
    return intents
