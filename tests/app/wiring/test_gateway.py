"""A large GUILD_CREATE parsed in steps: the same guild discord.py builds in one call, never seen
half-built, the loop running between steps, and the gateway's order kept."""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

import discord
import pytest

from app.wiring.discord_endpoints import bot_intents
from app.wiring.gateway import (
    LARGE_MESSAGE,
    STEP,
    SteppedGatewaySocket,
    decode_in_steps,
    heavy_entries,
    parse_guild_create_in_steps,
    use_stepped_guild_create,
)
from scripts.emulator import payloads
from scripts.emulator.snowflake import SnowflakeGenerator
from scripts.emulator.state import User, World

GUILD, TEXT, FOCUS, LOUNGE, AFK = 7, 10, 20, 21, 30
MEMBERS, IN_VOICE = 2_600, 2_200
CACHED = MEMBERS + 1  # and the bot itself


def world() -> tuple[World, User]:
    ids = SnowflakeGenerator()
    me = User(id=ids.next(), username="tracker", bot=True)
    model = World(me, ids)
    model.load_guild({
        "id": GUILD, "name": "Big Study Hall", "afk_channel": AFK,
        "channels": [{"id": TEXT, "type": "text", "name": "general"},
                     {"id": FOCUS, "type": "voice", "name": "Focus"},
                     {"id": LOUNGE, "type": "voice", "name": "Lounge"},
                     {"id": AFK, "type": "voice", "name": "AFK"}],
        "roles": [{"id": 50, "name": "VIP"}],
        "members": [{"id": 1000 + i, "name": f"m{i}", "joined": "2026-01-01T00:00:00Z",
                     **({"roles": [50]} if i % 7 == 0 else {})} for i in range(MEMBERS)],
        "voice_states": [{"user": 1000 + i, "channel": (FOCUS, LOUNGE, AFK)[i % 3],
                          "camera": i % 5 == 0, "stream": i % 11 == 0} for i in range(IN_VOICE)],
    })
    return model, me


def payload() -> tuple[str, int]:
    model, me = world()
    data = payloads.guild_create(model.guild(GUILD), members=True, voice_states=True, bot_id=me.id)
    return json.dumps(data), me.id


PAYLOAD, ME = payload()


def guild_create(*, unavailable: bool | None = None, presences: int = 300) -> dict[str, Any]:
    """The same GUILD_CREATE each time, as plain JSON (what the gateway hands the parser)."""
    data = json.loads(PAYLOAD)
    data["presences"] = [{"user": {"id": str(1000 + i)}, "status": "online", "activities": [],
                          "client_status": {"desktop": "online"}} for i in range(presences)]
    data.pop("unavailable", None)
    if unavailable is not None:
        data["unavailable"] = unavailable
    return data


def connection() -> tuple[discord.Client, list[tuple[str, Any]]]:
    client = discord.Client(intents=bot_intents())
    seen: list[tuple[str, Any]] = []
    client._connection.dispatch = lambda event, *args: seen.append((event, args))  # type: ignore[method-assign]
    return client, seen


def snapshot(guild: discord.Guild) -> dict[str, Any]:
    return {
        "guild": (guild.id, guild.name, guild.member_count, guild.large, guild.chunked, guild.unavailable),
        "channels": sorted(c.id for c in guild.channels), "roles": sorted(r.id for r in guild.roles),
        "members": sorted((m.id, m.name, tuple(r.id for r in m.roles), str(m.status)) for m in guild.members),
        "voice": sorted((uid, v.channel.id if v.channel else None, v.self_video, v.self_stream, v.self_mute)
                        for uid, v in guild._voice_states.items()),
        "afk": guild.afk_channel.id if guild.afk_channel else None,
    }


def test_the_payload_is_large_enough_to_be_parsed_in_steps() -> None:
    assert heavy_entries(guild_create()) > 4 * STEP


async def test_a_large_guild_create_built_in_steps_is_the_guild_discord_py_builds_at_once() -> None:
    for unavailable in (None, False):  # a guild joined, a guild back from READY or an outage
        at_once, at_once_seen = connection()
        at_once._connection.parse_guild_create(guild_create(unavailable=unavailable))  # type: ignore[arg-type]
        stepped, stepped_seen = connection()
        await parse_guild_create_in_steps(stepped._connection, guild_create(unavailable=unavailable))

        expected, built = at_once.get_guild(GUILD), stepped.get_guild(GUILD)
        assert expected is not None and built is not None
        assert snapshot(built) == snapshot(expected)
        assert len(built.members) == CACHED and len(built._voice_states) == IN_VOICE
        assert sum(1 for m in built.members if m.status is discord.Status.online) == 300
        assert [e for e, _ in stepped_seen] == [e for e, _ in at_once_seen] == [
            "guild_available" if unavailable is False else "guild_join"]
        assert stepped_seen[0][1] == (built,)


async def test_a_cached_guild_is_filled_in_place_as_by_discord_py_and_unavailable_until_whole() -> None:
    """READY's placeholder (or a guild back from an outage) is the object discord.py's startup
    queue and every holder of it keep: it is filled in, not replaced."""
    at_once, _ = connection()
    stepped, seen = connection()
    for client in (at_once, stepped):
        client._connection._add_guild(discord.Guild._create_unavailable(
            state=client._connection, guild_id=GUILD, data=None))
    at_once._connection.parse_guild_create(guild_create(unavailable=False))  # type: ignore[arg-type]
    placeholder = stepped.get_guild(GUILD)
    assert placeholder is not None
    during: list[bool] = []

    async def watch() -> None:
        while placeholder.unavailable or not during:
            during.append(placeholder.unavailable)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await parse_guild_create_in_steps(stepped._connection, guild_create(unavailable=False))
    await watcher
    assert stepped.get_guild(GUILD) is placeholder
    assert snapshot(placeholder) == snapshot(at_once.get_guild(GUILD))  # type: ignore[arg-type]
    assert len(during) > 2 and all(during[1:-1])  # unavailable while it was being filled in
    assert seen == [("guild_available", (placeholder,))]


async def test_the_loop_runs_between_steps_and_never_sees_the_guild_half_built() -> None:
    client, seen = connection()
    data = guild_create()
    turns, half_built = 0, []
    done = asyncio.Event()

    async def other_task() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            guild = client.get_guild(GUILD)
            if guild is not None and len(guild.members) < CACHED:
                half_built.append(len(guild.members))
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    await parse_guild_create_in_steps(client._connection, data)
    done.set()
    await ticker
    assert turns >= heavy_entries(data) // STEP  # a turn for others after every step
    assert half_built == [] and [e for e, _ in seen] == ["guild_join"]


async def test_startup_hands_the_complete_guild_to_discord_pys_ready_queue() -> None:
    client, seen = connection()
    state = client._connection
    state._ready_state = asyncio.Queue()
    await parse_guild_create_in_steps(state, guild_create(unavailable=False))
    queued = state._ready_state.get_nowait()
    assert queued is client.get_guild(GUILD) and len(queued.members) == CACHED
    assert seen == []  # discord.py dispatches it when READY's guilds are all in


def socket_of(client: discord.Client) -> SteppedGatewaySocket:
    """The socket as discord.py's `from_client` sets it up, without a network connection."""
    state = client._connection
    me = {"id": str(ME), "username": "tracker", "discriminator": "0", "avatar": None, "bot": True}
    state.user = discord.ClientUser(state=state, data=me)  # type: ignore[arg-type]  # as READY sets it
    ws = SteppedGatewaySocket(None, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    ws._connection = client._connection
    ws._discord_parsers = client._connection.parsers
    ws._dispatch = client.dispatch
    ws.shard_id = None
    return ws


def dispatch(event: str, data: dict[str, Any], seq: int) -> str:
    return json.dumps({"op": 0, "t": event, "s": seq, "d": data})


async def test_the_socket_parses_a_large_guild_create_before_it_returns_so_the_next_event_is_on_top() -> None:
    client, seen = connection()
    ws = socket_of(client)
    await ws.received_message(dispatch("GUILD_CREATE", guild_create(), 5))
    assert ws.sequence == 5
    guild = client.get_guild(GUILD)
    assert guild is not None and len(guild.members) == CACHED  # complete when received_message returns
    mover = 1000 + 1  # in the Lounge in the payload
    assert guild._voice_states[mover].channel.id == LOUNGE  # type: ignore[union-attr]
    voice = {"guild_id": str(GUILD), "channel_id": str(FOCUS), "user_id": str(mover), "session_id": "s",
             "deaf": False, "mute": False, "self_deaf": False, "self_mute": False, "self_video": True,
             "suppress": False, "request_to_speak_timestamp": None}
    await ws.received_message(dispatch("VOICE_STATE_UPDATE", voice, 6))
    assert guild._voice_states[mover].channel.id == FOCUS  # type: ignore[union-attr]
    (member, before, after), = [args for event, args in seen if event == "voice_state_update"]
    assert member.id == mover and before.channel.id == LOUNGE and after.channel.id == FOCUS


async def test_a_small_guild_create_takes_discord_pys_own_parse_at_once() -> None:
    client, seen = connection()
    ws = socket_of(client)
    small = guild_create(presences=0)
    small["members"], small["voice_states"] = small["members"][:10], small["voice_states"][:5]
    small["member_count"] = 10  # all members sent: no chunking to wait for
    ws._discord_parsers["GUILD_CREATE"](small)  # no await: the guild is in at once
    guild = client.get_guild(GUILD)
    assert guild is not None and len(guild.members) == 10 and ws._pending is None
    assert [e for e, _ in seen] == ["guild_join"]


def message(data: Any, **dumps: Any) -> str:
    return json.dumps({"op": 0, "t": "GUILD_CREATE", "s": 9, "d": data}, **dumps)


async def test_a_message_decoded_in_steps_is_what_json_loads_gives() -> None:
    payload = guild_create()
    empty = {**payload, "members": [], "voice_states": [], "presences": []}
    texts = [message(payload), message(payload, indent=2), message(payload, separators=(" , ", " : ")),
             message(empty), message(None), message([1, {"members": [2]}]), '[{"d": {"members": []}}]',
             '{"op": 11}', '{"op": 0, "d": {"members": [{"a": "}]"}], "x": "{"}}']
    for text in texts:
        assert await decode_in_steps(text) == json.loads(text), text[:80]
    for broken in ('{"op": 0, "d": {"members": [1, 2', '{"op": 0, "d": {"members": [1,, 2]}}', '{"op"'):
        with pytest.raises(ValueError):
            json.loads(broken)
        with pytest.raises(ValueError):
            await decode_in_steps(broken)


async def test_a_large_message_is_decoded_with_the_loop_running_between_steps() -> None:
    text = message(guild_create())
    assert len(text) >= LARGE_MESSAGE
    turns = 0
    done = asyncio.Event()

    async def other_task() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    decoded = await decode_in_steps(text)
    done.set()
    await ticker
    assert decoded == json.loads(text)
    assert turns >= heavy_entries(decoded["d"]) // STEP


async def test_the_socket_decodes_a_compressed_large_guild_create_in_steps_as_discord_py_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib-stream as the gateway sends it: the socket inflates it, decodes the JSON in steps and
    hands discord.py the decoded message (through its own `utils._from_json`)."""
    monkeypatch.setattr(discord.client, "DiscordWebSocket", discord.client.DiscordWebSocket)
    monkeypatch.setattr(discord.utils, "_from_json", discord.utils._from_json)  # restored after
    use_stepped_guild_create()
    assert discord.client.DiscordWebSocket is SteppedGatewaySocket
    client, seen = connection()
    ws = socket_of(client)
    ws._decompressor = discord.utils._ZlibDecompressionContext()  # type: ignore[attr-defined]
    deflate = zlib.compressobj()
    frame = deflate.compress(message(guild_create()).encode()) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(frame) < LARGE_MESSAGE  # compressed it is small; inflated it is large
    await ws.received_message(frame)
    guild = client.get_guild(GUILD)
    assert ws.sequence == 9 and guild is not None and len(guild.members) == CACHED
    assert [e for e, _ in seen] == ["guild_join"]
    # discord.py's decoder still decodes any other text itself
    assert discord.utils._from_json('{"a": [1]}') == {"a": [1]}


async def test_a_guild_create_of_many_entries_in_a_short_message_is_parsed_in_steps_too() -> None:
    """More than `STEP` entries in under `LARGE_MESSAGE` characters (decoded at once, built in
    steps): the guild is complete when the socket returns."""
    client, seen = connection()
    ws = socket_of(client)
    data = guild_create(presences=0)
    data["members"], data["voice_states"] = data["members"][:600], data["voice_states"][:450]
    data["member_count"] = 600
    text = dispatch("GUILD_CREATE", data, 3)
    assert heavy_entries(data) > STEP and len(text) < LARGE_MESSAGE
    await ws.received_message(text)
    guild = client.get_guild(GUILD)
    assert guild is not None and len(guild.members) == 600 and len(guild._voice_states) == 450
    assert [e for e, _ in seen] == ["guild_join"]
