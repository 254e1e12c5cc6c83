"""Join and leave announcements through the real bot: the inviter named, late joins after a
downtime, names that try to ping, and a missing channel shown in /invites-admin debug."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tests.botharness import Harness

ADA = 101
OLD = "2023-01-01T00:00:00Z"


def posted(tracker: Harness, since: int = 0) -> list[dict[str, Any]]:
    return [m for m in tracker.emu.bot_messages[since:] if int(m["channel_id"]) == 11]


def announcement_requests(tracker: Harness) -> list[Any]:
    return [r for r in tracker.emu.requests if r.method == "POST" and r.path == "/channels/11/messages"]


async def enable(tracker: Harness, **options: Any) -> None:
    await tracker.emu.command(ADA, "settings set", {"announcement_channel": 11, **options})


async def test_join_and_leave_name_the_inviter_and_never_ping(tracker: Harness) -> None:
    await enable(tracker)
    emu = tracker.emu
    emu.join({"id": 201, "name": "@everyone", "created": OLD}, via="abc")
    await tracker.settle()
    emu.leave(201)
    await tracker.settle()
    texts = [m["content"] for m in posted(tracker)]
    assert texts == ["@\u200beveryone joined; invited by ada (invite, code abc; 1 invite)",
                     "@\u200beveryone left; they were invited by ada (0 invites)"]
    for request in announcement_requests(tracker):
        assert request.json["allowed_mentions"]["parse"] == []


async def test_the_member_may_be_mentioned_when_the_guild_allows_it(tracker: Harness) -> None:
    await enable(tracker, mention_member=True, join_template="welcome {member}, thanks {inviter}!")
    tracker.emu.join({"id": 202, "name": "**x**", "created": OLD}, via="bobs")
    await tracker.settle()
    member_id = tracker.emu.user_id(202)
    assert [m["content"] for m in posted(tracker)] == [f"welcome <@{member_id}>, thanks bob!"]
    (request,) = announcement_requests(tracker)
    assert request.json["allowed_mentions"] == {"parse": [], "users": [member_id]}


async def test_joins_during_a_downtime_are_announced_late_in_one_batch(make_tracker: Any) -> None:
    tracker: Harness = await make_tracker(start=False)
    tracker.clock.set(datetime.now(UTC))  # the emulator stamps join times with the real time
    await tracker.start()
    await enable(tracker)
    since = len(tracker.emu.bot_messages)

    async def joins_while_down() -> None:
        for uid in range(210, 215):
            tracker.emu.join({"id": uid, "name": f"n{uid}", "created": OLD}, via="abc")

    await tracker.restart(crash=True, between=joins_while_down)
    message = await tracker.emu.wait_for_message(11, since=since, timeout=15)
    assert message["content"].startswith("(late) 5 members joined while the bot was offline:")
    assert "- n210: ada" in message["content"]
    assert len(posted(tracker, since)) == 1


async def test_a_missing_channel_is_logged_once_and_shown_in_debug(tracker: Harness, caplog) -> None:
    await enable(tracker)
    assert tracker.bot is not None
    await tracker.bot.repos.guild_settings.set_fields(1, announcement_channel=999)
    with caplog.at_level(logging.ERROR):
        for uid in (220, 221):
            tracker.emu.join({"id": uid, "name": f"n{uid}", "created": OLD}, via="abc")
            await tracker.settle()
    lines = [r for r in caplog.records if "announcements in guild 1 cannot be posted" in r.getMessage()]
    assert len(lines) == 1
    debug = await tracker.emu.command(ADA, "invites-admin debug")
    fields = {f["name"]: f["value"] for f in debug.embed["fields"]}
    assert fields["Announcements"] == ("the announcement channel <#999> is missing or not a text channel: "
                                       "pick another with `/settings set`")
