"""The command tree: every slash command answers within Discord's 3 seconds, also while MongoDB is away.

Before a command runs, a ping with a short deadline tells whether reads work; when they do not,
the member gets a clear answer instead of a command that times out. Commands that work without
the database (`/data-status`) say so with `extras={"needs_database": False}`. An error from MongoDB while a
command runs gets the same answer; a cooldown "try again in Ns"; an option value that does not
fit the command one plain line; any other error one plain line (never the exception text), and
one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
import discord
from discord import app_commands
from pymongo.errors import PyMongoError

from app.storage.database import ping_ms
from app.wiring.limits import Busy, Gate, busy_text, retry_text
from app.wiring.reply_limits import fit_content, fit_embed
from app.wiring.validation import valid_id

log = logging.getLogger(__name__)
PING_DEADLINE_SECONDS = 1.0
SLOW_READ_SECONDS = 0.8  # a read still running after this is answered "thinking..." first
T = TypeVar("T")
NO_MENTIONS = discord.AllowedMentions.none()
OptionType = discord.AppCommandOptionType
NUMERIC = (OptionType.integer, OptionType.number)
MAX_NUMBER = 2**53 - 1  # Discord's range for integer and number options
SNOWFLAKES = (OptionType.user, OptionType.channel, OptionType.role, OptionType.mentionable,
              OptionType.attachment)


def unavailable_text(waiting: int) -> str:
    return (f"Stats are temporarily unavailable: the database is not answering. {waiting} events are "
            "waiting to be saved; nothing is lost, try again in a minute.")


async def answer(interaction: discord.Interaction, text: str) -> None:
    """Answer ephemerally, whether or not the interaction was answered (or deferred) before."""
    text = fit_content(text) or text
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except (discord.HTTPException, aiohttp.ClientError) as exc:
        log.warning("could not answer interaction %s: %s", interaction.id, exc or type(exc).__name__)


async def show_in_place(interaction: discord.Interaction, embed: discord.Embed,
                        view: discord.ui.View | None) -> None:
    """A button's or select's answer: the message it sits on shows `embed` and `view` (through an
    edit of the original response when `read_or_defer` deferred)."""
    embed = fit_embed(embed)
    if interaction.response.is_done():
        await interaction.edit_original_response(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.edit_message(embed=embed, view=view, allowed_mentions=NO_MENTIONS)


def lost_reply(what: str, error: BaseException) -> bool:
    """The answer could not reach Discord (the connection dropped, or the bot closed its HTTP
    session at shutdown while the command still ran): one line, no traceback; nothing to answer."""
    if not isinstance(error, aiohttp.ClientError):
        return False
    log.warning("%s: its answer did not reach Discord (%s)", what, type(error).__name__)
    return True


def gate_of(interaction: discord.Interaction) -> Gate | None:
    return getattr(interaction.client, "gate", None)


async def read_or_defer(interaction: discord.Interaction, read: Awaitable[T], *,
                        ephemeral: bool = False) -> T:
    """The result of `read`, a read that may aggregate in MongoDB, run in the guild's heavy-read
    slot (`Gate.heavy`: one at a time per guild; `Busy` when it stays taken). When the wait and the
    read have not finished after `SLOW_READ_SECONDS`, the interaction is deferred first (Discord
    shows "thinking..." instead of "The application did not respond" at 3 s). A command's answer
    then goes through `followup`, a component's through an edit of the original response
    (`interaction.response.is_done()` tells which)."""
    task = asyncio.ensure_future(_in_heavy_slot(interaction, read))
    if interaction.response.is_done():  # already deferred (or answered): nothing to gain
        return await task
    try:
        return await asyncio.wait_for(asyncio.shield(task), SLOW_READ_SECONDS)
    except TimeoutError:
        if interaction.type is discord.InteractionType.component:
            await interaction.response.defer()
        else:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        return await task
    except asyncio.CancelledError:
        task.cancel()
        raise


async def _in_heavy_slot(interaction: discord.Interaction, read: Awaitable[T]) -> T:
    gate = gate_of(interaction)
    if gate is None:
        return await read
    try:
        async with gate.heavy(interaction.guild_id or 0):
            return await read
    except Busy:
        if asyncio.iscoroutine(read):
            read.close()  # never started: no "was never awaited" warning
        raise


class GatedView(discord.ui.View):
    """Every view of the bot: each button or select use passes the gate (`Gate.admit`) before
    `allowed` (the view's own check, e.g. only the member who ran the command). Views override
    `allowed`, never `interaction_check`; a test walks every view to keep it so."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        gate = gate_of(interaction)
        left = gate.admit(interaction) if gate is not None else 0.0
        if left > 0:
            what = (interaction.data or {}).get("custom_id")
            log.info("component %s by %s in guild %s: limited, %.0fs left", what, interaction.user.id,
                     interaction.guild_id, left)
            await answer(interaction, retry_text(left))
            return False
        return await self.allowed(interaction)

    async def allowed(self, interaction: discord.Interaction) -> bool:
        return True

    async def on_error(self, interaction: discord.Interaction, error: Exception,
                       item: discord.ui.Item[Any]) -> None:
        if isinstance(error, Busy):
            await answer(interaction, busy_text(error.retry_after))
            return
        what = getattr(item, "custom_id", "?")
        if lost_reply(f"component {what}", error):
            return
        if isinstance(error, PyMongoError):
            log.error("component %s: MongoDB error: %s", what, type(error).__name__)
            await answer(interaction, unavailable_text(_waiting(interaction.client)))
            return
        log.error("component %s failed: %s: %s", what, type(error).__name__, error,
                  exc_info=(type(error), error, error.__traceback__))
        await answer(interaction, "Something went wrong; the error is in the bot's log.")


def _waiting(client: Any) -> int:
    outbox = getattr(client, "outbox", None)
    return int(outbox.depth) if outbox is not None else 0


def invalid_option(command: Any, data: Any) -> str | None:
    """The name of the first option that breaks the command's declared type, choices or bounds.

    Discord enforces these in its client, discord.py does not check them on receipt; a crafted
    interaction (or a client that does not conform) is refused here before the command runs. Each
    value is checked against the type the command declares, whatever type the interaction claims:
    a number as a number (never the length of a string of digits), a string by its length.
    """
    options = (data or {}).get("options") or []
    while options and options[0].get("type") in (1, 2):  # subcommand group / subcommand
        options = options[0].get("options") or []
    params = {p.display_name: p for p in getattr(command, "parameters", [])}
    for option in options:
        name = option.get("name")
        param = params.get(name)
        if param is None:
            return "(unknown option)"
        if not option_fits(param, option):
            return name
    return None


def option_fits(param: Any, option: dict[str, Any]) -> bool:
    """True when one received option has the parameter's declared type, a choice's value and a
    value within its bounds (a string's length within min/max length)."""
    kind, value = param.type, option.get("value")
    if option.get("type") != kind.value or not _has_type(kind, value):
        return False
    if param.choices and value not in [c.value for c in param.choices]:
        return False
    measure = len(value) if kind is OptionType.string else value
    if kind in NUMERIC and not -MAX_NUMBER <= measure <= MAX_NUMBER:
        return False
    low, high = param.min_value, param.max_value
    return (low is None or measure >= low) and (high is None or measure <= high)


def _has_type(kind: OptionType, value: Any) -> bool:
    if kind is OptionType.string:
        return isinstance(value, str)
    if kind is OptionType.integer:
        return type(value) is int
    if kind is OptionType.number:
        return type(value) in (int, float) and math.isfinite(value)
    if kind is OptionType.boolean:
        return type(value) is bool
    if kind in SNOWFLAKES:
        return isinstance(value, str) and value.isascii() and value.isdigit() and valid_id(int(value))
    return False  # a type no command of the bot declares


class TrackerTree(app_commands.CommandTree):
    async def database_answers(self) -> bool:
        bot: Any = self.client
        return await ping_ms(bot.db, PING_DEADLINE_SECONDS) is not None

    def waiting_writes(self) -> int:
        return _waiting(self.client)

    async def admitted(self, interaction: discord.Interaction) -> bool:
        """The gate (`app.wiring.limits`), for commands and autocomplete alike."""
        gate = gate_of(interaction)
        left = gate.admit(interaction) if gate is not None else 0.0
        if left <= 0:
            return True
        name = interaction.command.qualified_name if interaction.command else "?"
        log.info("/%s (%s) by %s in guild %s: limited, %.0fs left", name, interaction.type.name,
                 interaction.user.id, interaction.guild_id, left)
        if interaction.type is discord.InteractionType.autocomplete:
            with contextlib.suppress(discord.HTTPException):
                await interaction.response.autocomplete([])
        else:
            await answer(interaction, retry_text(left))
        return False

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        lease = getattr(self.client, "lease", None)
        if lease is not None and not lease.active.is_set():
            # A standby leaves every interaction to the process that counts: Discord delivers it to
            # both sessions, and the second answer fails ("already acknowledged").
            return False
        if not await self.admitted(interaction):
            return False
        if interaction.type is not discord.InteractionType.application_command:
            return True
        command = interaction.command
        bad = invalid_option(command, interaction.data)
        if bad is not None:
            log.warning("/%s: rejected a value of option %r outside its type, choices or bounds",
                        command.qualified_name if command else "?", bad)
            await answer(interaction, f"The value of `{bad}` is not valid for this command.")
            return False
        if command is not None and command.extras.get("needs_database") is False:
            return True
        if await self.database_answers():
            return True
        log.warning("/%s answered 'temporarily unavailable': MongoDB does not answer",
                    interaction.command.qualified_name if interaction.command else "?")
        await answer(interaction, unavailable_text(self.waiting_writes()))
        return False

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        name = interaction.command.qualified_name if interaction.command else "?"
        if lost_reply(f"/{name}", cause):
            return
        if isinstance(cause, PyMongoError):
            log.error("/%s: MongoDB error: %s", name, type(cause).__name__)
            await answer(interaction, unavailable_text(self.waiting_writes()))
            return
        if isinstance(cause, Busy):
            await answer(interaction, busy_text(cause.retry_after))
            return
        if isinstance(cause, app_commands.CommandOnCooldown):
            await answer(interaction, retry_text(cause.retry_after))
            return
        if isinstance(cause, app_commands.CheckFailure):
            await answer(interaction, "You cannot use this command here.")
            return
        if isinstance(cause, app_commands.TransformerError | app_commands.CommandSignatureMismatch):
            # A value Discord should not have sent (out of range, unknown member...): never echoed.
            log.warning("/%s: rejected option value (%s)", name, type(cause).__name__)
            await answer(interaction, "One of the values given is not valid for this command.")
            return
        log.error("/%s failed: %s: %s", name, type(cause).__name__, cause,
                  exc_info=(type(cause), cause, cause.__traceback__))
        await answer(interaction, "Something went wrong; the error is in the bot's log.")
