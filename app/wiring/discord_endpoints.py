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


INVITE_URL = ("https://discord.com/oauth2/authorize?client_id={app_id}&scope=bot+applications.commands"
              "&permissions={permissions}")


def bot_permissions() -> discord.Permissions:
    """The server permissions the tracker uses, and no more (the invite URL asks for these)."""
    return discord.Permissions(
        manage_guild=True,  # read the invites and the vanity URL's uses: invite attribution
        view_audit_log=True,  # make certain which used-up invite a join came through
        view_channel=True,  # see the channels whose messages are counted
        read_message_history=True,  # count the messages sent while the bot was down
        send_messages=True,  # the join and leave announcements
        manage_roles=True,  # give and take the activity roles (/rewards)
    )


def invite_url(app_id: int | str = "<APP_ID>") -> str:
    """The link that adds the bot to a server with its slash commands and `bot_permissions`."""
    return INVITE_URL.format(app_id=app_id, permissions=bot_permissions().value)
