"""A minimal discord.py bot for exercising the emulator: listeners that record what arrives and a
few slash commands shaped like the real bot's (embeds, a subcommand group, a button, a file)."""

from __future__ import annotations

import asyncio
import copy
import struct
import zlib
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

INTENTS = discord.Intents.none()
INTENTS.guilds = True
INTENTS.members = True
INTENTS.voice_states = True
INTENTS.invites = True
INTENTS.guild_messages = True


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG of the given size (all black)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class EventLog:
    """What the bot's listeners received, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()

    def add(self, name: str, *args: Any) -> None:
        self.items.append((name, args))
        self._changed.set()

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.items if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.items]

    async def wait(self, name: str, count: int = 1, timeout: float = 5.0) -> list[tuple[Any, ...]]:
        try:
            async with asyncio.timeout(timeout):
                while len(self.named(name)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{name}: {len(self.named(name))} of {count} events; log: {self.names()}"
            ) from None
        return self.named(name)


class PanelView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Refresh", custom_id="panel:refresh", style=discord.ButtonStyle.primary)
    async def refresh(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]) -> None:
        await interaction.response.edit_message(content=f"refreshed by {interaction.user.id}", view=None)

    @discord.ui.button(label="Off", custom_id="panel:off", disabled=True)
    async def off(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]) -> None:
        raise AssertionError("a disabled button cannot be clicked")


class Probe(commands.Cog):
    invites = app_commands.Group(name="invites", description="Invite tools")
    staff = app_commands.Group(name="staff", description="Staff invites", parent=invites)

    def __init__(self, log: EventLog) -> None:
        self.log = log

    # ---- listeners --------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        self.log.add("message", message)

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        # discord.py updates VoiceState objects in place: keep copies of what arrived now.
        self.log.add("voice", member, copy.copy(before), copy.copy(after))

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        self.log.add("member_join", member)

    @commands.Cog.listener()
    async def on_member_remove(self, member: discord.Member) -> None:
        self.log.add("member_remove", member)

    @commands.Cog.listener()
    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        self.log.add("member_update", before, after)

    @commands.Cog.listener()
    async def on_invite_create(self, invite: discord.Invite) -> None:
        self.log.add("invite_create", invite)

    @commands.Cog.listener()
    async def on_invite_delete(self, invite: discord.Invite) -> None:
        self.log.add("invite_delete", invite)

    @commands.Cog.listener()
    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        self.log.add("role_update", before, after)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.log.add("guild_available", guild)

    @commands.Cog.listener()
    async def on_guild_unavailable(self, guild: discord.Guild) -> None:
        self.log.add("guild_unavailable", guild)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        self.log.add("ready")

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self.log.add("resumed")

    # ---- slash commands -----------------------------------------------------------------------
    @app_commands.command(name="stats", description="A member's stats")
    async def stats(self, interaction: discord.Interaction, member: discord.Member, days: int = 7) -> None:
        embed = discord.Embed(title=f"Stats for {member.display_name}", description=f"last {days} days")
        embed.add_field(name="account created", value=str(member.created_at.year))
        embed.add_field(name="asked by", value=str(interaction.user.id))
        embed.add_field(name="is member", value=str(isinstance(member, discord.Member)))
        await interaction.response.send_message(embed=embed)

    @staff.command(name="add", description="Register a staff invite")
    async def staff_add(
        self, interaction: discord.Interaction, code: str, member: discord.Member, limit: int = 0
    ) -> None:
        await interaction.response.send_message(f"added {code} for {member.id} limit {limit}", ephemeral=True)

    @invites.command(name="list", description="Invites and their uses")
    async def invites_list(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        try:
            found = await interaction.guild.invites()
        except discord.Forbidden as exc:
            await interaction.response.send_message(f"forbidden {exc.code}", ephemeral=True)
            return
        text = ", ".join(f"{i.code}={i.uses}" for i in sorted(found, key=lambda i: i.code))
        await interaction.response.send_message(text or "none")

    @app_commands.command(name="panel", description="A message with buttons")
    async def panel(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("panel", view=PanelView())

    @app_commands.command(name="chart", description="A deferred answer with a PNG")
    async def chart(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        file = discord.File(__import__("io").BytesIO(tiny_png(3, 2)), filename="chart.png")
        embed = discord.Embed(title="Chart").set_image(url="attachment://chart.png")
        await interaction.followup.send(embed=embed, file=file)

    @app_commands.command(name="reset", description="Admins only")
    @app_commands.default_permissions(manage_guild=True)
    async def reset(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("reset done", ephemeral=True)


def make_bot(log: EventLog) -> commands.Bot:
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=INTENTS,
        guild_ready_timeout=0.1,
        help_command=None,
    )

    async def setup_hook() -> None:
        await bot.add_cog(Probe(log))
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot
