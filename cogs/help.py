"""`/help`: every command the tree registers, what it does, the admin ones marked.

Built from the command tree itself (names, options, descriptions), so a command added later is
listed without anyone remembering to: a command is an admin one when its top-level command carries
Manage Server as its default permission (the same flag that makes the Discord client hide it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.wiring.reply_limits import DESCRIPTION, fit_embed, more_lines

log = logging.getLogger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()
ADMIN_SUFFIX = " (Manage Server)"
MEMBER_HEADING = "**For everyone**"
ADMIN_HEADING = "**For admins** (need **Manage Server**; Discord shows them only to admins)"
MAX_OPTIONAL = 3
FOOTER = "<option> is required, [option] optional. Most replies to admin commands are visible only to you."

Leaf = app_commands.Command[Any, ..., Any]


def leaf_commands(tree: app_commands.CommandTree) -> Iterator[Leaf]:
    """Every runnable slash command (subcommands of groups included), in the tree's order."""

    def walk(item: Any) -> Iterator[Leaf]:
        if isinstance(item, app_commands.Group):
            for child in item.commands:
                yield from walk(child)
        elif isinstance(item, app_commands.Command):
            yield item

    for command in tree.get_commands(type=discord.AppCommandType.chat_input):
        yield from walk(command)


def is_admin(command: Leaf) -> bool:
    """Its top-level command defaults to Manage Server (Discord takes the flag only there)."""
    root: Any = command.root_parent or command
    permissions = root.default_permissions
    return bool(permissions is not None and permissions.manage_guild)


def usage(command: Leaf) -> str:
    """`/invites-admin staff add <member> <code>`: the name, then required and optional options
    (more than `MAX_OPTIONAL` optional ones read `[option ...]`)."""
    required = [f"<{p.display_name}>" for p in command.parameters if p.required]
    optional = [f"[{p.display_name}]" for p in command.parameters if not p.required]
    if len(optional) > MAX_OPTIONAL:
        optional = ["[option ...]"]
    return " ".join([f"/{command.qualified_name}", *required, *optional])


def help_line(command: Leaf) -> str:
    what = command.description.removesuffix(ADMIN_SUFFIX)
    return f"`{usage(command)}` - {what}"


def help_embed(tree: app_commands.CommandTree) -> discord.Embed:
    """The `/help` embed: member commands first, then the admin ones under their own heading."""
    commands_ = sorted(leaf_commands(tree), key=lambda c: c.qualified_name)
    member = [help_line(c) for c in commands_ if not is_admin(c)]
    admin = [help_line(c) for c in commands_ if is_admin(c)]
    half = DESCRIPTION // 2 - len(ADMIN_HEADING) - 4
    sections = [f"{MEMBER_HEADING}\n{more_lines(member, half, what='more commands')}"]
    if admin:
        sections.append(f"{ADMIN_HEADING}\n{more_lines(admin, half, what='more commands')}")
    embed = discord.Embed(title="Commands", description="\n\n".join(sections),
                          colour=discord.Colour.blurple())
    embed.set_footer(text=FOOTER)
    return embed


class HelpCog(commands.Cog, name="Help"):
    def __init__(self, bot: Any) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What each command does; admin ones are marked",
                          extras={"needs_database": False})
    async def help(self, interaction: discord.Interaction) -> None:
        embed = help_embed(self.bot.tree)
        await interaction.response.send_message(embed=fit_embed(embed), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
