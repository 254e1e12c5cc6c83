"""The Discord emulator against a real, unmodified discord.py bot running in this process."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import Route

from scripts.emulator import (
    CallbackType,
    Emulator,
    discord_pointed_at,
    snowflake_from_time,
    time_from_snowflake,
)
from scripts.emulator.constants import Perm

from .botapp import tiny_png
from .conftest import GUILD, Running

ADA, BOB, CY = 101, 102, 103
GENERAL, STAFF, FOCUS, AFK = 10, 11, 20, 30
VIP, BOOSTER = 50, 51
ROOT = Path(__file__).resolve().parents[2]


def real(emu: Emulator, alias: int) -> int:
    return emu.user_id(alias)


# ---- startup: login, READY, GUILD_CREATE ---------------------------------------------------------


async def test_login_ready_and_guild_create_fill_the_cache(running: Running) -> None:
    emu, bot = running.emu, running.bot
    assert bot.user is not None and bot.user.id == emu.bot_id
    assert bot.application_id == emu.bot_id
    guild = bot.get_guild(1)
    assert guild is not None and guild.name == "Study Hall"
    assert guild.chunked and guild.member_count == 4  # three people and the bot
    assert {m.name for m in guild.members} == {"ada", "bob", "cy", "Tracker"}
    assert guild.me is not None and guild.me.guild_permissions.manage_guild
    assert {c.id: c.type for c in guild.channels} == {
        GENERAL: discord.ChannelType.text,
        STAFF: discord.ChannelType.text,
        FOCUS: discord.ChannelType.voice,
        AFK: discord.ChannelType.voice,
    }
    assert guild.afk_channel is not None and guild.afk_channel.id == AFK
    assert guild.vanity_url_code == "study"
    assert guild.get_role(VIP) is not None and guild.default_role.id == guild.id

    ada = guild.get_member(real(emu, ADA))
    bob = guild.get_member(real(emu, BOB))
    assert ada is not None and bob is not None
    assert ada.created_at == datetime(2020, 1, 1, tzinfo=UTC)
    assert ada.guild_permissions.administrator and not bob.guild_permissions.manage_guild
    assert [r.id for r in bob.roles if not r.is_default()] == [VIP]
    cy = guild.get_member(real(emu, CY))
    assert cy is not None and cy.voice is not None
    assert cy.voice.channel is not None and cy.voice.channel.id == FOCUS and cy.voice.self_video
    assert len(emu.identifies) == 1 and emu.identifies[0]["intents"] == bot.intents.value
    assert [r.path for r in emu.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]
    synced = await emu.wait_commands_synced()
    assert {c["name"] for c in synced.json} == {"stats", "invites", "panel", "chart", "reset"}


async def test_alias_ids_follow_the_creation_time_and_real_ids_are_kept() -> None:
    emu = Emulator()
    emu.add_guild(
        {
            "id": 7,
            "members": [
                {"id": 5, "created": "2020-01-01T00:00:00Z"},
                {"id": 661720242585600999, "created": "2020-01-01T00:00:00Z"},
                {"id": 6},
            ],
        }
    )
    alias = emu.user_id(5)
    assert alias == snowflake_from_time(datetime(2020, 1, 1, tzinfo=UTC), 5)
    assert time_from_snowflake(alias) == datetime(2020, 1, 1, tzinfo=UTC)
    assert emu.user_id(661720242585600999) == 661720242585600999
    assert emu.user_id(6) == 6
    ids = [emu.ids.next() for _ in range(1000)]
    assert ids == sorted(set(ids))
    assert abs((time_from_snowflake(ids[0]) - datetime.now(UTC)).total_seconds()) < 5


# ---- dispatches reach the right listener as the right object -------------------------------------


async def test_message_create(running: Running) -> None:
    emu, log = running.emu, running.log
    emu.message(ADA, GENERAL, "hello")
    emu.message(BOB, GENERAL, f"<@{emu.bot_id}> hi", mentions=[emu.bot_id])
    first, second = [args[0] for args in await log.wait("message", 2)]
    assert isinstance(first.author, discord.Member) and first.author.id == real(emu, ADA)
    assert first.channel.id == GENERAL and first.guild is not None and first.guild.id == 1
    assert first.content == ""  # no MESSAGE_CONTENT intent, as on Discord
    assert second.content.endswith("hi")  # ...unless the bot is mentioned


async def test_voice_state_updates_carry_camera_and_stream(running: Running) -> None:
    emu, log = running.emu, running.log
    # discord.py applies each update to the cached VoiceState in place before listeners run, so
    # the next change is sent only after the listener saw the previous one.
    changes: list[dict[str, Any]] = [
        {"channel": FOCUS},
        {"channel": FOCUS, "camera": True},
        {"channel": FOCUS, "camera": True, "stream": True},
        {"channel": AFK},
        {"channel": None},
    ]
    for count, change in enumerate(changes, start=1):
        emu.voice(ADA, **change)
        events = await log.wait("voice", count)
    member, before, after = events[0]
    assert isinstance(member, discord.Member) and member.id == real(emu, ADA)
    assert before.channel is None and after.channel is not None and after.channel.id == FOCUS
    assert not after.self_video and not after.self_stream
    _, before, after = events[1]
    assert not before.self_video and after.self_video
    _, before, after = events[2]
    assert before.self_video and not before.self_stream and after.self_stream
    _, before, after = events[3]
    assert before.channel is not None and before.channel.id == FOCUS
    assert after.channel is not None and after.channel.id == AFK
    _, before, after = events[4]
    assert before.channel is not None and before.channel.id == AFK and after.channel is None
    assert running.bot.get_guild(1).get_member(real(emu, ADA)).voice is None  # type: ignore[union-attr]


async def test_member_join_and_leave(running: Running) -> None:
    emu, log = running.emu, running.log
    emu.voice(BOB, FOCUS)
    emu.join({"id": 104, "name": "dee", "created": "2023-05-05T00:00:00Z"}, via="abc")
    (member,) = (await log.wait("member_join"))[0]
    assert isinstance(member, discord.Member) and member.name == "dee"
    assert member.created_at == datetime(2023, 5, 5, tzinfo=UTC)
    assert emu.invite("abc").uses == 4
    emu.leave(BOB)
    (gone,) = (await log.wait("member_remove"))[0]
    assert gone.id == real(emu, BOB)
    # leaving while in voice: the voice state is cleared first, as Discord does
    assert log.names().index("voice") < log.names().index("member_remove")
    assert running.bot.get_guild(1).member_count == 4  # type: ignore[union-attr]
    emu.join(BOB, via="vanity")  # a rejoin keeps the user id
    (back,) = (await log.wait("member_join", 2))[1]
    assert back.id == real(emu, BOB) and emu.guild(1).vanity_uses == 5
    with pytest.raises(ValueError, match="already a member"):
        emu.join(BOB)


async def test_member_update_roles(running: Running) -> None:
    emu, log = running.emu, running.log
    emu.role_add(ADA, VIP)
    before, after = (await log.wait("member_update"))[0]
    assert VIP not in [r.id for r in before.roles] and VIP in [r.id for r in after.roles]
    assert emu.role_add(ADA, VIP) is None  # no change, no event
    emu.role_remove(ADA, VIP)
    before, after = (await log.wait("member_update", 2))[1]
    assert VIP in [r.id for r in before.roles] and VIP not in [r.id for r in after.roles]


@pytest.mark.parametrize("guild_spec", [{**GUILD, "roles": [
    {"id": VIP, "name": "VIP"}, {"id": BOOSTER, "name": "Booster", "managed": True}]}])
async def test_rest_role_changes_follow_discords_hierarchy_and_permission(running: Running) -> None:
    emu, bot = running.emu, running.bot
    guild, http = emu.guild(1), bot.http
    me, cy = guild.bot_role_id, real(emu, CY)
    assert guild.roles[BOOSTER].managed and bot.get_guild(1).get_role(BOOSTER).managed  # type: ignore[union-attr]

    async def refused(role: int, *, add: bool = True) -> bool:
        try:
            await (http.add_role if add else http.remove_role)(1, cy, role)
        except discord.Forbidden as exc:
            assert (exc.status, exc.code, exc.text) == (403, 50013, "Missing Permissions")
            return True
        return False

    assert not await refused(VIP) and VIP in guild.members[cy].roles  # below the bot's role: done
    assert await refused(BOOSTER)  # managed
    assert await refused(me)  # the bot's own role: managed, and not below itself
    emu.update_role(1, VIP, position=guild.roles[me].position + 1)  # moved above the bot's role
    assert await refused(VIP, add=False) and VIP in guild.members[cy].roles
    emu.update_role(1, VIP, position=guild.roles[me].position)  # same position: the lower id is above
    assert me > VIP and await refused(VIP, add=False)
    emu.update_role(1, VIP, position=1)
    emu.update_role(1, me, permissions=guild.roles[me].permissions & ~Perm.MANAGE_ROLES)
    assert await refused(VIP, add=False)  # no Manage Roles
    emu.update_role(1, me, permissions=Perm.ADMIN)  # Administrator includes it
    assert not await refused(VIP, add=False) and VIP not in guild.members[cy].roles
    with pytest.raises(ValueError, match="no 'colour'"):
        emu.update_role(1, VIP, colour=1)


async def test_invite_create_and_delete(running: Running) -> None:
    emu, log = running.emu, running.log
    emu.invite_create("staff1", BOB, max_uses=5, channel=STAFF)
    (invite,) = (await log.wait("invite_create"))[0]
    assert isinstance(invite, discord.Invite) and invite.code == "staff1"
    assert invite.uses == 0 and invite.max_uses == 5
    assert invite.inviter is not None and invite.inviter.id == real(emu, BOB)
    assert invite.channel is not None and invite.channel.id == STAFF
    emu.invite_delete("staff1")
    (deleted,) = (await log.wait("invite_delete"))[0]
    assert deleted.code == "staff1"
    assert "staff1" not in emu.guild(1).invites


async def test_max_uses_invite_is_deleted_after_the_member_add(running: Running) -> None:
    emu, log = running.emu, running.log
    emu.join({"id": 105, "name": "eve"}, via="once")
    await log.wait("invite_delete")
    names = [n for n in log.names() if n in ("member_join", "invite_delete")]
    assert names == ["member_join", "invite_delete"]
    assert [e.name for e in emu.events[-2:]] == ["GUILD_MEMBER_ADD", "INVITE_DELETE"]
    assert "once" not in emu.guild(1).invites


# ---- REST ----------------------------------------------------------------------------------------


async def test_invites_and_vanity_over_rest_and_403_when_forbidden(running: Running) -> None:
    emu, bot = running.emu, running.bot
    guild = bot.get_guild(1)
    assert guild is not None
    invites = {i.code: i for i in await guild.invites()}
    assert set(invites) == {"abc", "once"}
    abc = invites["abc"]
    assert abc.uses == 3 and abc.max_uses == 0 and abc.max_age == 0 and not abc.temporary
    assert abc.inviter is not None and abc.inviter.id == real(emu, ADA)
    assert abc.channel is not None and abc.channel.id == GENERAL and abc.created_at is not None
    assert invites["once"].max_uses == 1 and invites["once"].expires_at is not None
    vanity = await guild.vanity_invite()
    assert vanity is not None and vanity.code == "study" and vanity.uses == 4

    emu.set_invites_forbidden(1, True)
    await running.log.wait("role_update")
    assert not guild.me.guild_permissions.manage_guild
    with pytest.raises(discord.Forbidden) as denied:
        await guild.invites()
    assert denied.value.status == 403 and denied.value.code == 50013
    with pytest.raises(discord.Forbidden):
        await guild.vanity_invite()
    emu.set_invites_forbidden(1, False)
    assert len(await guild.invites()) == 2


async def test_rest_basics_exact_content_type_and_unknown_routes(running: Running) -> None:
    emu, bot = running.emu, running.bot
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.api_base}/users/@me", headers={"Authorization": "Bot test-token"}) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        async with http.get(f"{emu.api_base}/users/@me", headers={"Authorization": "Bot wrong"}) as resp:
            assert resp.status == 401
        async with http.get(
            f"{emu.api_base}/guilds/1/bans", headers={"Authorization": "Bot test-token"}
        ) as resp:
            assert resp.status == 404 and await resp.json() == {"message": "404: Not Found", "code": 0}
    assert any(r.path == "/guilds/1/bans" for r in emu.unknown_requests)

    member = await bot.get_guild(1).fetch_member(real(emu, BOB))  # type: ignore[union-attr]
    assert member.name == "bob"
    assert len([m async for m in bot.get_guild(1).fetch_members(limit=None)]) == 4  # type: ignore[union-attr]
    channel = bot.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("hello", file=discord.File(__import__("io").BytesIO(tiny_png()), "a.png"))
    assert sent.attachments[0].filename == "a.png" and sent.attachments[0].size == len(tiny_png())
    assert await sent.attachments[0].read() == tiny_png()
    history = [m async for m in channel.history(limit=10)]
    assert history[0].id == sent.id
    assert (await running.log.wait("message"))[0][0].id == sent.id  # Discord echoes the bot's own message
    with pytest.raises(discord.NotFound):
        await bot.http.request(Route("GET", "/guilds/{guild_id}/integrations", guild_id=1))


async def test_channel_history_pages_like_discord_behind_the_route_rate_limit(running: Running) -> None:
    """Issue 19: `after` (oldest after it, newest first on the wire), `before`, `around`, `limit`
    <= 100, a per-channel bucket announced in headers (discord.py waits, no 429 needed) and a 429
    with `retry_after` for a client that does not wait; 403 where the history is not readable."""
    emu, bot = running.emu, running.bot
    emu.route_limits.limits = {k: (3, 0.3) for k in emu.route_limits.limits}
    ids = [int(emu.message(ADA if i % 2 else BOB, GENERAL, f"m{i}")["id"]) for i in range(250)]
    channel = bot.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    since = len(emu.requests)
    after = [m async for m in channel.history(limit=None, after=discord.Object(ids[9]), oldest_first=True)]
    assert [m.id for m in after] == ids[10:]
    at = discord.Object(ids[100])
    assert [m.id async for m in channel.history(limit=5, before=at)] == ids[95:100][::-1]
    assert sorted([m.id async for m in channel.history(limit=5, around=at)]) == ids[98:103]
    assert {m.author.id for m in after} == {real(emu, ADA), real(emu, BOB)}
    history_gets = [r for r in emu.requests[since:] if r.path == f"/channels/{GENERAL}/messages"]
    assert len(history_gets) >= 5 and emu.route_limits.hits == 0
    headers = {"Authorization": "Bot test-token"}
    url = f"{emu.api_base}/channels/{GENERAL}/messages"
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(4):
            async with http.get(url, params={"limit": "100", "after": str(ids[0])}, headers=headers) as resp:
                statuses.append(resp.status)
                body = await resp.json()
        assert statuses[-1] == 429 and 0 < body["retry_after"] <= 0.3 and resp.headers["Via"]
        await asyncio.sleep(0.35)
        async with http.get(url, params={"limit": "101"}, headers=headers) as resp:
            assert resp.status == 400
        emu.history_denied.add(GENERAL)
        async with http.get(url, params={"limit": "1"}, headers=headers) as resp:
            assert resp.status == 403 and (await resp.json())["code"] == 50001


# ---- interactions --------------------------------------------------------------------------------


async def test_slash_command_returns_the_embed(running: Running) -> None:
    emu = running.emu
    response = await emu.command(ADA, "stats", {"member": BOB, "days": 30})
    assert response.callback_type is CallbackType.CHANNEL_MESSAGE
    embed = response.embed
    assert embed is not None and embed["title"] == "Stats for bob" and embed["description"] == "last 30 days"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"account created": "2021", "asked by": str(real(emu, ADA)), "is member": "True"}
    assert not response.ephemeral
    option = response.payload["data"]["options"][0]
    assert option == {"type": 6, "name": "member", "value": str(real(emu, BOB))}
    assert str(real(emu, BOB)) in response.payload["data"]["resolved"]["members"]
    with pytest.raises(ValueError, match="unknown option"):
        await emu.command(ADA, "stats", {"member": BOB, "weeks": 2})
    with pytest.raises(ValueError, match="required"):
        await emu.command(ADA, "stats", {})


async def test_subcommand_group_command(running: Running) -> None:
    emu = running.emu
    response = await emu.command(ADA, "invites staff add", {"code": "abc", "member": CY, "limit": 5})
    assert response.content == f"added abc for {real(emu, CY)} limit 5" and response.ephemeral
    group = response.payload["data"]["options"][0]
    assert (group["type"], group["name"]) == (2, "staff")
    sub = group["options"][0]
    assert (sub["type"], sub["name"]) == (1, "add")
    assert [o["name"] for o in sub["options"]] == ["code", "member", "limit"]

    listed = await emu.command(BOB, "invites list")
    assert listed.content == "abc=3, once=0"
    emu.set_invites_forbidden(1, True)
    denied = await emu.command(BOB, "invites list")
    assert denied.content == "forbidden 50013"


async def test_default_member_permissions_are_enforced_like_the_client(running: Running) -> None:
    emu = running.emu
    with pytest.raises(PermissionError):
        await emu.command(BOB, "reset")
    assert (await emu.command(ADA, "reset")).content == "reset done"


async def test_button_click(running: Running) -> None:
    emu = running.emu
    panel = await emu.command(BOB, "panel")
    assert panel.custom_ids == ["panel:refresh", "panel:off"]
    with pytest.raises(ValueError, match="disabled"):
        await emu.click(panel, "panel:off", BOB)
    clicked = await emu.click(panel, "panel:refresh", CY)
    assert clicked.callback_type is CallbackType.UPDATE_MESSAGE
    assert clicked.message is not None and clicked.message["id"] == panel.message["id"]  # type: ignore[index]
    assert panel.content == f"refreshed by {real(emu, CY)}" and panel.components == []


async def test_deferred_answer_with_a_png(running: Running) -> None:
    emu = running.emu
    response = await emu.command(ADA, "chart")
    assert response.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE and response.finalized
    (attachment,) = response.attachments
    assert attachment["filename"] == "chart.png" and attachment["size"] == len(tiny_png(3, 2))
    assert (attachment["width"], attachment["height"]) == (3, 2)
    assert emu.attachment_bytes(attachment) == tiny_png(3, 2)
    assert response.embed is not None and response.embed["title"] == "Chart"
    assert response.followups == []  # the first follow-up after "thinking" becomes the response
    assert not response.flags & 128  # no longer loading


# ---- gateway: resume, re-identify, restart -------------------------------------------------------


async def test_forced_disconnect_resumes_and_replays_without_loss_or_duplicates(running: Running) -> None:
    emu, log = running.emu, running.log
    emu.message(ADA, GENERAL)
    await log.wait("message", 1)
    emu.disconnect(4000)
    assert not emu.connected
    for _ in range(5):
        emu.message(BOB, GENERAL)
    emu.voice(ADA, FOCUS, stream=True)
    await emu.wait_resumed(timeout=15)
    emu.message(CY, GENERAL)
    messages = [args[0] for args in await log.wait("message", 7)]
    await log.wait("voice", 1)
    await log.wait("resumed", 1)
    sent = [int(e.data["id"]) for e in emu.events if e.name == "MESSAGE_CREATE"]
    assert [m.id for m in messages] == sent  # every message once, in order
    assert len(emu.identifies) == 1 and len(emu.resumes) == 1
    assert emu.resumes[0]["session_id"] == running.bot.ws.session_id

    emu.request_reconnect()  # op 7: the bot closes and resumes by itself
    await emu.wait_resumed(timeout=15, count=2)
    emu.message(ADA, GENERAL)
    assert len(await log.wait("message", 8)) == 8 and len(emu.identifies) == 1


async def test_invalid_session_re_identifies_and_guild_create_reflects_the_changes(running: Running) -> None:
    emu, bot = running.emu, running.bot
    emu.invalidate_session(resumable=False)
    emu.join({"id": 106, "name": "fay"})  # no session exists now: only the next GUILD_CREATE shows it
    emu.role_remove(BOB, VIP)
    assert emu.events[-1].delivered == 0
    await emu.wait_ready(timeout=15, count=2)
    await running.log.wait("ready", 2)
    guild = bot.get_guild(1)
    assert guild is not None and guild.get_member(real(emu, 106)) is not None
    assert VIP not in [r.id for r in guild.get_member(real(emu, BOB)).roles]  # type: ignore[union-attr]
    assert len(emu.identifies) == 2


async def test_a_restarted_bot_sees_the_state_changed_while_it_was_down(
    running: Running, start_bot: Any
) -> None:
    emu = running.emu
    await running.bot.close()
    await emu.wait_disconnected()
    emu.join({"id": 107, "name": "gus"}, via="abc")
    emu.voice(ADA, FOCUS, camera=True)
    second: Running = await start_bot()
    guild = second.bot.get_guild(1)
    assert guild is not None and guild.get_member(real(emu, 107)) is not None
    ada = guild.get_member(real(emu, ADA))
    assert ada is not None and ada.voice is not None and ada.voice.self_video
    assert len(emu.identifies) == 2
    assert {i.code: i.uses for i in await guild.invites()}["abc"] == 4


async def test_a_held_member_list_comes_in_chunks_only_when_released(
    running: Running, start_bot: Any
) -> None:
    """A restart while a large guild's member list is still loading: GUILD_CREATE has only the
    bot and the members in voice, discord.py's op 8 waits, and release sends the chunks."""
    emu = running.emu
    await running.bot.close()
    await emu.wait_disconnected()
    emu.hold_member_list(1)
    emu.join({"id": 107, "name": "gus"}, via="abc")
    second: Running = await start_bot()  # discord.py gives up waiting for the chunks after 5 s
    guild = second.bot.get_guild(1)
    assert guild is not None and not guild.chunked and guild.member_count == 5
    assert {m.id for m in guild.members} == {emu.bot_id, real(emu, 103)}  # the bot, cy in voice
    emu.hold_member_list(1, held=False)
    async with asyncio.timeout(5):
        members = await guild.chunk()  # discord.py's pending request, answered now
    assert guild.chunked and real(emu, 107) in {m.id for m in members}


async def test_a_large_guild_sends_its_offline_members_in_chunks(running: Running, start_bot: Any) -> None:
    """At 250 members and more (discord.py's large_threshold) GUILD_CREATE leaves the offline
    members out, as Discord does (no presences here: everyone but the bot and the members in voice),
    and discord.py asks for them with op 8: 1,000 members per GUILD_MEMBERS_CHUNK."""
    emu = running.emu
    assert emu.gateway.member_chunks_sent == 0  # a small guild: all its members in GUILD_CREATE
    small = len(emu.guild(1).members)
    await running.bot.close()
    await emu.wait_disconnected()
    for i in range(1200):
        emu.join({"id": 5000 + i, "name": f"m{i}"})
    second: Running = await start_bot()
    assert emu.identifies[-1]["large_threshold"] == 250
    guild = second.bot.get_guild(1)
    assert guild is not None and guild.chunked and guild.large
    assert guild.member_count == len(guild.members) == small + 1200
    assert emu.gateway.member_chunks_sent == 2


# ---- the bot as a separate process ------------------------------------------------------------------


async def test_a_bot_process_killed_with_sigkill_comes_back_with_a_new_session(emu: Emulator) -> None:
    env = {
        **os.environ,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "DISCORD_TOKEN": "test-token",
        "PYTHONPATH": str(ROOT),
    }

    async def spawn() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.emulator.run_bot",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    process = await spawn()
    try:
        await emu.wait_ready(timeout=30)
        await emu.wait_commands_synced(timeout=30)
        assert (await emu.command(ADA, "invites list")).content == "abc=3, once=0"

        process.kill()  # no close frame, no cleanup: the socket just drops
        await process.wait()
        await emu.wait_disconnected(timeout=10)
        emu.join({"id": 108, "name": "hal"}, "abc")  # happens while the bot is down

        since = len(emu.requests)
        process = await spawn()
        await emu.wait_ready(timeout=30, count=2)
        await emu.wait_commands_synced(timeout=30, since=since)
        assert len(emu.identifies) == 2 and emu.resumes == []
        assert (await emu.command(ADA, "invites list")).content == "abc=4, once=0"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# ---- failures the bot must survive -------------------------------------------------------------------


async def test_injected_rate_limit_is_retried_by_discord_py(running: Running) -> None:
    emu = running.emu
    emu.fail("GET", r"/guilds/1/invites", status=429, retry_after=0.05)
    since = len(emu.requests)
    invites = await running.bot.get_guild(1).invites()  # type: ignore[union-attr]
    assert len(invites) == 2
    assert [r.status for r in emu.requests[since:]] == [429, 200]


async def test_wrong_token_and_missing_privileged_intents_fail_like_discord(
    guild_spec: dict[str, Any],
) -> None:
    from .botapp import EventLog, make_bot

    async with Emulator(token="right", privileged_intents=0) as emu:
        emu.add_guild(guild_spec)
        with discord_pointed_at(emu.api_base, emu.gateway_url):
            bot = make_bot(EventLog())
            with pytest.raises(discord.LoginFailure):
                await bot.login("wrong")
            await bot.close()
            bot = make_bot(EventLog())
            await bot.login("right")
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(bot.connect(reconnect=True), timeout=15)
            await bot.close()


async def test_audit_log_invite_entries_and_guild_features(running: Running) -> None:
    emu, bot = running.emu, running.bot
    guild = bot.get_guild(1)
    assert guild is not None
    emu.invite_create("aud1", BOB, max_uses=1, max_age=600)
    emu.invite_create("aud2", CY)
    emu.invite_delete("aud2")  # revoked: action 42
    emu.join({"id": 301, "name": "zed", "created": "2020-01-01T00:00:00Z"}, via="aud1")  # used up: no entry
    created = [e async for e in guild.audit_logs(action=discord.AuditLogAction.invite_create)]
    assert [e.changes.after.code for e in created] == ["aud2", "aud1"]  # newest first
    aud1 = created[1]
    assert (aud1.changes.after.max_uses, aud1.changes.after.max_age, aud1.changes.after.uses) == (1, 600, 0)
    assert aud1.changes.after.inviter.id == real(emu, BOB) and aud1.user.id == real(emu, BOB)
    revoked = [e async for e in guild.audit_logs(action=discord.AuditLogAction.invite_delete)]
    assert [e.changes.before.code for e in revoked] == ["aud2"]
    emu.set_features(1, ["DISCOVERABLE"], widget=True)
    await emu.drain()
    for _ in range(50):  # GUILD_UPDATE handled by the client
        if guild.widget_enabled:
            break
        await asyncio.sleep(0.02)
    assert "DISCOVERABLE" in guild.features and guild.widget_enabled
