"""/settings: validation, effect, persistence across a restart, history, permissions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from repositories.guild_settings import GuildConfig, SettingError, check_template
from tests.botharness import Harness

ADA, BOB = 101, 102


def fields(record) -> dict[str, str]:
    """/settings show as label -> value (a group's lines read `Label: value`; a template's field is
    the template alone)."""
    shown: dict[str, str] = {}
    for field in record.embed["fields"]:
        if field["name"] in ("Join message", "Leave message"):
            shown[field["name"]] = field["value"]
            continue
        for line in field["value"].splitlines():
            label, _, value = line.partition(": ")
            shown[label] = value
    return shown


async def test_show_gives_the_defaults(tracker: Harness) -> None:
    record = await tracker.emu.command(ADA, "settings show")
    assert record.ephemeral
    assert [f["name"] for f in record.embed["fields"]] == [
        "Activity", "Fake invites", "Invites", "Announcements", "Join message", "Leave message"]
    shown = fields(record)
    assert shown["Time zone (day boundaries)"] == "UTC" and shown["Account younger than"] == "3 days"
    assert shown["Voice credited across a bot downtime"] == "at most 10m (default)"
    assert shown["Channel"] == "not set" and shown["Members may see others' numbers"] == "yes"


async def test_the_streak_minimums_are_shown_set_validated_and_recorded(tracker: Harness) -> None:
    shown = fields(await tracker.emu.command(ADA, "settings show"))
    assert shown["Streak day needs messages"] == "at least 1 message"
    assert shown["Streak day needs voice"] == "not used"
    record = await tracker.emu.command(ADA, "settings set", {"streak_min_messages": 5,
                                                             "streak_min_voice_minutes": 90})
    assert record.content.splitlines() == [
        "Changed:", "Streak day needs messages: at least 1 message -> at least 5 messages",
        "Streak day needs voice: not used -> at least 1h 30m"]
    assert tracker.bot is not None
    config = await tracker.bot.repos.guild_settings.get(1)
    assert (config.streak_min_messages, config.streak_min_voice_minutes) == (5, 90)
    history = await tracker.bot.repos.guild_settings.changes(1)
    assert {(h["setting"], h["old"], h["new"]) for h in history} == {
        ("streak_min_messages", 1, 5), ("streak_min_voice_minutes", 0, 90)}
    with pytest.raises(SettingError, match="streak_min_messages: must be between 0 and 1000"):
        await tracker.bot.repos.guild_settings.set_fields(1, streak_min_messages=1001)
    too_long = await tracker.emu.command(ADA, "settings set", {"streak_min_voice_minutes": 1441})
    assert too_long.content == "The value of `streak_min_voice_minutes` is not valid for this command."
    assert (await tracker.bot.repos.guild_settings.get(1)).streak_min_voice_minutes == 90


async def test_a_change_is_stored_recorded_and_survives_a_restart(tracker: Harness) -> None:
    record = await tracker.emu.command(ADA, "settings set", {"time_zone": "Europe/Berlin",
                                                             "fake_account_days": 7})
    assert record.content == ("Changed:\nTime zone (day boundaries): UTC -> Europe/Berlin\n"
                              "Account younger than: 3 days -> 7 days")
    assert record.embed is None  # only what changed, not every setting
    await tracker.restart(crash=True)
    shown = fields(await tracker.emu.command(ADA, "settings show"))
    assert (shown["Time zone (day boundaries)"], shown["Account younger than"]) == ("Europe/Berlin", "7 days")
    again = await tracker.emu.command(ADA, "settings set", {"time_zone": "Europe/Berlin"})
    assert again.content == "Nothing changed: the settings already had these values."
    assert tracker.bot is not None
    history = await tracker.bot.repos.guild_settings.changes(1)
    assert {(h["setting"], h["old"], h["new"]) for h in history} == {
        ("time_zone", "UTC", "Europe/Berlin"), ("fake_account_days", 3, 7)}
    assert all(h["by"] == tracker.emu.user_id(ADA) for h in history)


@pytest.mark.parametrize(("options", "message"), [
    ({"time_zone": "Mars/Olympus"}, "Not changed: time_zone: 'Mars/Olympus' is not an IANA time zone"),
    ({"join_template": "hi {member} {secret}"}, "Not changed: join_template: unknown placeholder {secret}"),
    ({"leave_template": "bye {member"}, "Not changed: leave_template: unbalanced braces"),
    ({"join_template": "{member.__class__}"}, "Not changed: join_template: unknown placeholder"),
])
async def test_bad_values_name_the_setting_and_change_nothing(tracker: Harness, options, message) -> None:
    record = await tracker.emu.command(ADA, "settings set", options)
    assert record.content.startswith(message)
    assert tracker.bot is not None
    assert await tracker.db.guild_settings.count_documents({}) == 0


async def test_members_without_manage_server_are_refused_even_when_re_granted(tracker: Harness) -> None:
    with pytest.raises(PermissionError):
        await tracker.emu.command(BOB, "settings show")  # the client hides it by default
    # A server override can re-grant the command; the runtime check still refuses.
    record = await tracker.emu.command(BOB, "settings set", {"time_zone": "UTC"}, check_permissions=False)
    assert record.ephemeral and "Manage Server" in record.content


async def test_an_ignored_channel_stops_counting_and_unignoring_resumes(tracker: Harness) -> None:
    emu = tracker.emu
    emu.message(BOB, 10)
    await tracker.settle()
    await emu.command(ADA, "settings set", {"ignore_channel": 10})
    emu.message(BOB, 10)
    emu.message(BOB, 11)
    await tracker.settle()
    await emu.command(ADA, "settings set", {"unignore_channel": 10})
    emu.message(BOB, 10)
    await tracker.settle()
    assert tracker.bot is not None
    counters = await tracker.bot.repos.activity.member_counters(1, emu.user_id(BOB), None)
    assert counters.messages == 3


async def test_the_time_zone_moves_the_day_boundary_of_new_activity(tracker: Harness) -> None:
    tracker.clock.set(datetime(2026, 3, 10, 23, 30, tzinfo=UTC))
    tracker.emu.message(BOB, 10)
    await tracker.settle()
    await tracker.emu.command(ADA, "settings set", {"time_zone": "Asia/Tokyo"})
    tracker.emu.message(BOB, 10)
    await tracker.settle()
    bob = tracker.emu.user_id(BOB)
    cursor = tracker.db.activity.find({"kind": "day", "member_id": bob})
    days = {d["day"]: d["messages"] async for d in cursor}
    assert days == {"2026-03-10": 1, "2026-03-11": 1}


def test_template_validation_accepts_every_placeholder_and_literal_braces() -> None:
    template = "{member} {member_name} {inviter} {inviter_name} {code} {invites} {source} {account_age} {{x}}"
    assert check_template("join_template", template) == template
    with pytest.raises(SettingError):
        GuildConfig(1, fake_account_days=400).validate()
