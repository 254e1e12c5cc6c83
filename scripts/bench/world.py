"""Real discord.py objects for the benchmark, built from Discord payloads.

The payloads come from the emulator's builders (`scripts.emulator.payloads`, the shapes the
emulator sends over its gateway); they are parsed by the bot's own discord.py `ConnectionState`
(`bot._connection`), as GUILD_CREATE would be, so `bot.get_guild`, members and voice states are
the real objects the cogs see. No gateway connection is made.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import discord

from app.wiring.gateway import SteppedGatewaySocket, use_stepped_guild_create
from scripts.emulator import payloads
from scripts.emulator.snowflake import SnowflakeGenerator
from scripts.emulator.state import Guild, User, World

TEXT, VOICE, AFK = 10, 20, 30
JOINED = "2026-01-01T00:00:00Z"  # every member joined long before any snapshot
MEMBER_BASE = 1 << 40  # member i has id MEMBER_BASE + i (a valid snowflake-sized int)


def member_id(index: int) -> int:
    return MEMBER_BASE + index


class BenchWorld:
    """Emulator-side guild models plus their discord.py objects in one bot's connection state."""

    def __init__(self) -> None:
        self.ids = SnowflakeGenerator()
        self.bot_user = User(id=self.ids.next(), username="tracker", bot=True)
        self.world = World(self.bot_user, self.ids)

    def guild_spec(self, guild_id: int, members: int, *, in_voice: int = 0,
                   invites: int = 0) -> dict[str, Any]:
        return {
            "id": guild_id,
            "name": f"bench {guild_id}",
            "afk_channel": AFK,
            "channels": [
                {"id": TEXT, "type": "text", "name": "general"},
                {"id": VOICE, "type": "voice", "name": "Focus"},
                {"id": AFK, "type": "voice", "name": "AFK"},
            ],
            "members": [{"id": member_id(i), "name": f"member{i}", "joined": JOINED} for i in range(members)],
            "voice_states": [{"user": member_id(i), "channel": VOICE} for i in range(in_voice)],
            "invites": [
                {"code": f"inv{i:05d}", "inviter": member_id(i % members), "uses": i % 50}
                for i in range(invites)
            ],
        }

    def add(self, spec: dict[str, Any]) -> Guild:
        """Add a guild to the emulator's model of Discord."""
        return self.world.load_guild(spec)

    def attach(self, bot: discord.Client, guild_id: int) -> discord.Guild:
        """Parse the guild's GUILD_CREATE into `bot`'s connection state, as the gateway would."""
        return bot._connection._add_guild_from_data(self.guild_create(guild_id))  # type: ignore[arg-type]

    def guild_create(self, guild_id: int) -> dict[str, Any]:
        return payloads.guild_create(self.model(guild_id), members=True, voice_states=True,
                                     bot_id=self.bot_user.id)

    def guild_create_message(self, guild_id: int) -> str:
        """The guild's GUILD_CREATE as the gateway sends it (a JSON text message)."""
        return json.dumps({"op": 0, "t": "GUILD_CREATE", "s": 1, "d": self.guild_create(guild_id)})

    @staticmethod
    async def receive(bot: discord.Client, guild_id: int, message: str) -> discord.Guild:
        """A GUILD_CREATE message received as the bot's gateway socket receives it (decoded, then a
        large one parsed in steps: `app.wiring.gateway`), its dispatch dropped (the case runs the
        handlers itself)."""
        use_stepped_guild_create()  # as `run_bot` does
        state = bot._connection
        socket = SteppedGatewaySocket(None, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
        socket._connection, socket.shard_id = state, None
        socket._discord_parsers = state.parsers
        dispatch, state.dispatch = state.dispatch, lambda *args: None  # type: ignore[method-assign]
        try:
            await socket.received_message(message)
        finally:
            state.dispatch = dispatch  # type: ignore[method-assign]
        guild = bot.get_guild(guild_id)
        assert guild is not None
        return guild

    def model(self, guild_id: int) -> Guild:
        return self.world.guild(guild_id)

    def invite_payloads(self, guild_id: int) -> list[dict[str, Any]]:
        """What `GET /guilds/{id}/invites` answers for the guild."""
        model = self.model(guild_id)
        return [payloads.invite(model, inv, self.world.users) for inv in model.invites.values()]

    def messages(self, bot: discord.Client, guild: discord.Guild,
                 authors: list[int]) -> list[discord.Message]:
        """One MESSAGE_CREATE per author id (in order), parsed into discord.Message objects."""
        model = self.model(guild.id)
        channel_model = model.channels[TEXT]
        channel = guild.get_channel(TEXT)
        state = bot._connection
        out = []
        for author in authors:
            member = model.members[author]
            data = payloads.message(message_id=self.ids.next(), channel=channel_model, author=member.user,
                                    author_member=member)
            out.append(discord.Message(state=state, channel=channel, data=data))  # type: ignore[arg-type]
        return out


def stub_invite_fetch(bot: discord.Client, invites: list[dict[str, Any]]) -> None:
    """Answer the bot's `GET /guilds/{id}/invites` with `invites`, without any network."""

    async def invites_from(guild_id: int) -> list[dict[str, Any]]:
        return invites

    bot.http.invites_from = invites_from  # type: ignore[method-assign]
