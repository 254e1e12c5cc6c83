"""A large gateway message decoded, and a large GUILD_CREATE built, in steps, so the event loop keeps
running meanwhile.

discord.py decodes each gateway message with one `json.loads`: a message of `LARGE_MESSAGE` or
more is decoded here instead by `decode_in_steps` (the long lists of its `d` an item at a time),
and discord.py's own `received_message` handles the decoded object (its `utils._from_json` hands
it over, `use_stepped_guild_create`), with the automatic collections paused throughout.

discord.py parses GUILD_CREATE in one synchronous call: at 10,000 members in voice that is about
200 ms in which no other task runs (no command reply, no write acknowledged). Here the guild is
built as discord.py builds it (`Guild._from_data`), but the voice states, members and presences are
added a step of `STEP` at a time with a yield between steps; `guild_available` / `guild_join` (or
the startup's ready queue, or member chunking) follow only once it is whole. A new guild is built
off to the side and cached when complete; a cached one (READY's placeholder, a guild back from an
outage) is updated in place, as discord.py does, and stays marked unavailable until complete.

Order is kept: the gateway reader awaits `received_message` before it reads the next event, so no
later event of the guild (a voice change, a member update) is parsed before the guild is complete.
A GUILD_CREATE of `STEP` entries or fewer takes discord.py's own path, unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any

import discord.client
from discord.gateway import DiscordWebSocket
from discord.guild import Guild
from discord.member import Member
from discord.presences import RawPresenceUpdateEvent
from discord.state import ConnectionState

from app.wiring.heap import building, collect_young_if_due

log = logging.getLogger(__name__)

STEP = 1_000  # entries (voice states, members, presences) per step: about 20 ms of parsing
# A gateway message this long (characters of JSON) is decoded in steps (`decode_in_steps`), with
# the automatic collections paused while it is decoded and parsed: at 10,000 members in voice
# (8 MB of JSON) one `json.loads` took 40-135 ms, collections during it doubling it.
LARGE_MESSAGE = 512 * 1024
HEAVY = ("voice_states", "members", "presences")
_chunking: set[asyncio.Task[None]] = set()  # discord.py's chunk-then-dispatch tasks, kept until done


def heavy_entries(data: dict[str, Any]) -> int:
    return sum(len(data.get(key) or ()) for key in HEAVY)


def chunks(items: list[Any], size: int = STEP) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def fill_in_steps(guild: Guild, state: ConnectionState, data: dict[str, Any]) -> None:
    """The loops of discord.py's `Guild._from_data` over voice states, members and presences, a
    step of `STEP` entries at a time."""
    for part in chunks(data.get("voice_states") or []):
        await _step()
        for voice in part:
            guild._update_voice_state(voice, int(voice["channel_id"]))
    cache = state.member_cache_flags
    for part in chunks(data.get("members") or []):
        await _step()
        for member_data in part:
            member = Member(data=member_data, guild=guild, state=state)
            in_voice = member.id in guild._voice_states
            if cache.joined or member.id == state.self_id or (cache.voice and in_voice):
                guild._add_member(member)
    for part in chunks(data.get("presences") or []):
        await _step()
        for presence in part:
            raw = RawPresenceUpdateEvent(data=presence, state=state)
            member = guild.get_member(raw.user_id)
            if member is not None:
                member._presence_update(raw, ())
    await _step()


async def _step() -> None:
    """Between two steps: the loop's other tasks, and the young objects collected once due (inside
    `building`; outside it the automatic collections run as usual)."""
    collect_young_if_due("a step of a large GUILD_CREATE")
    await asyncio.sleep(0)


def light(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in HEAVY}


async def guild_in_steps(state: ConnectionState, data: dict[str, Any]) -> Guild:
    """discord.py's `_get_create_guild`, in steps. `unavailable: false` for a cached guild (READY's
    placeholder, a guild back from an outage) updates that object in place, marked unavailable
    until it is whole; otherwise a new guild is built off to the side and cached once complete."""
    cached = state._get_guild(int(data["id"])) if data.get("unavailable") is False else None
    if cached is not None:
        cached._from_data(light(data))  # type: ignore[arg-type]
        cached.unavailable = True
        await fill_in_steps(cached, state, data)
        cached.unavailable = False
        return cached
    guild = Guild(data=light(data), state=state)  # type: ignore[arg-type]
    await fill_in_steps(guild, state, data)
    state._add_guild(guild)
    return guild


async def parse_guild_create_in_steps(state: ConnectionState, data: dict[str, Any]) -> Guild | None:
    """What discord.py's `ConnectionState.parse_guild_create` does, the guild built in steps."""
    unavailable = data.get("unavailable")
    if unavailable is True:
        return None
    guild = await guild_in_steps(state, data)
    if state._add_ready_state(guild):
        return guild  # startup: discord.py dispatches it once READY's guilds are all in
    if state._guild_needs_chunking(guild):
        task = asyncio.create_task(state._chunk_and_dispatch(guild, unavailable))
        _chunking.add(task)
        task.add_done_callback(_chunking.discard)
        return guild
    state.dispatch("guild_available" if unavailable is False else "guild_join", guild)
    return guild


async def decode_in_steps(text: str) -> dict[str, Any]:
    """`json.loads(text)` of a gateway message, the `HEAVY` lists of its `d` decoded `STEP` items at
    a time with a yield between steps (each item and every other value by the standard library's
    C decoder). A message of another shape is decoded whole."""
    walk = _walk_message(text)
    try:
        while True:
            next(walk)
            await _step()
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except _NotAMessage:
        return json.loads(text)  # type: ignore[no-any-return]


class _NotAMessage(ValueError):
    """The text is not an object whose `d` is an object (decoded whole instead)."""


_SPACE = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()


def _walk_message(text: str) -> Generator[None, None, dict[str, Any]]:
    parsed, _ = yield from _walk_object(text, 0, top=True)
    return parsed


def _walk_object(text: str, at: int, *, top: bool) -> Generator[None, None, tuple[dict[str, Any], int]]:
    at = _skip(text, at, "{")
    out: dict[str, Any] = {}
    if text.startswith("}", at):
        return out, at + 1
    while True:
        key, at = _decoder.raw_decode(text, at)
        at = _skip(text, at, ":")
        if top and key == "d" and text.startswith("{", at):
            out[key], at = yield from _walk_object(text, at, top=False)
        elif not top and key in HEAVY and text.startswith("[", at):
            out[key], at = yield from _walk_list(text, at)
        else:
            out[key], at = _decoder.raw_decode(text, at)
        at, more = _after_item(text, at, "}")
        if not more:
            return out, at


def _walk_list(text: str, at: int) -> Generator[None, None, tuple[list[Any], int]]:
    at = _skip(text, at, "[")
    items: list[Any] = []
    if text.startswith("]", at):
        return items, at + 1
    while True:
        item, at = _decoder.raw_decode(text, at)
        items.append(item)
        if len(items) % STEP == 0:
            yield
        at, more = _after_item(text, at, "]")
        if not more:
            return items, at


def _after_item(text: str, at: int, close: str) -> tuple[int, bool]:
    """Past the comma after an item (True: another follows), or past `close` (False)."""
    at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
    if text.startswith(",", at):
        return _SPACE.match(text, at + 1).end(), True  # type: ignore[union-attr]
    return _skip(text, at, close), False


def _skip(text: str, at: int, expected: str) -> int:
    """Past `expected` (after any whitespace) and the whitespace after it."""
    at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
    if not text.startswith(expected, at):
        raise _NotAMessage(f"expected {expected!r} at {at}")
    return _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]


class SteppedGatewaySocket(DiscordWebSocket):
    """discord.py's gateway socket, a large GUILD_CREATE parsed by `parse_guild_create_in_steps`
    after the message's bookkeeping (sequence, heartbeat tick) and before the next message is read."""

    _pending: dict[str, Any] | None = None

    @property  # type: ignore[override]
    def _discord_parsers(self) -> dict[str, Callable[..., Any]]:
        return self._parsers

    @_discord_parsers.setter
    def _discord_parsers(self, parsers: dict[str, Callable[..., Any]]) -> None:
        # `from_client` hands the socket the connection's parsers; GUILD_CREATE goes through here.
        self._parse_at_once = parsers["GUILD_CREATE"]
        self._parsers = {**parsers, "GUILD_CREATE": self._guild_create}

    def _guild_create(self, data: dict[str, Any]) -> None:
        if data.get("unavailable") is True or heavy_entries(data) <= STEP:
            self._parse_at_once(data)
        else:
            self._pending = data  # parsed in received_message, before the next message is read

    async def received_message(self, msg: Any, /) -> None:
        if type(msg) is bytes:
            msg = self._decompressor.decompress(msg)
            if msg is None:
                return  # part of a message: discord.py waits for the rest the same way
        large = len(msg) >= LARGE_MESSAGE
        with building("a large gateway message", large=large):
            self._pending = None
            if large:
                _Decoded.text, _Decoded.parsed = msg, await decode_in_steps(msg)
            try:
                await super().received_message(msg)
            finally:
                _Decoded.text = _Decoded.parsed = None
            data, self._pending = self._pending, None
            if data is not None:
                log.info("GUILD_CREATE of guild %s: %d members, voice states and presences, parsed in steps",
                         data.get("id"), heavy_entries(data))
                await parse_guild_create_in_steps(self._connection, data)


class _Decoded:
    """The message whose JSON `decode_in_steps` decoded, while discord.py's `received_message`
    handles it (up to its parser, one synchronous stretch): its `utils._from_json` then returns
    the decoded object for that very text instead of decoding it again."""

    text: str | None = None
    parsed: Any = None


_from_json = discord.utils._from_json


def _from_json_or_decoded(text: Any) -> Any:
    if text is _Decoded.text and text is not None:
        return _Decoded.parsed
    return _from_json(text)


def use_stepped_guild_create() -> None:
    """Make discord.py's client connect with `SteppedGatewaySocket` (the class `Client.connect`
    looks up in its module when it opens the gateway), and its decoder take the JSON of a message
    decoded in steps as decoded (any other text is decoded as before)."""
    discord.client.DiscordWebSocket = SteppedGatewaySocket  # type: ignore[misc]
    discord.utils._from_json = _from_json_or_decoded
