"""Pure voice arithmetic: day splitting in a guild's zone, camera/stream/AFK/deafen flags."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.tracking.voice import (
    VoiceFlags,
    credit,
    day_of,
    day_segments,
    format_duration,
    last_days,
    period_start_day,
    voice_flags,
    zone,
)
from app.wiring.clock import to_ms

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def ms(*args: int) -> int:
    return to_ms(datetime(*args, tzinfo=UTC))


def test_an_interval_across_local_midnight_is_split_in_the_guild_zone() -> None:
    # Midnight in New York on 2026-03-11 (EDT, UTC-4) is 04:00 UTC.
    start, end = ms(2026, 3, 11, 3, 30), ms(2026, 3, 11, 4, 45)
    assert day_segments(start, end, NY) == [("2026-03-10", 1800), ("2026-03-11", 2700)]
    assert day_segments(start, end, ZoneInfo("UTC")) == [("2026-03-11", 4500)]


def test_a_long_interval_covers_every_day_and_dst_days_have_their_real_length() -> None:
    # 2026-03-08 is 23 hours long in New York (clocks go forward).
    start, end = ms(2026, 3, 7, 5, 0), ms(2026, 3, 9, 4, 0)  # local midnight 03-07 .. midnight 03-09
    assert day_segments(start, end, NY) == [("2026-03-07", 86400), ("2026-03-08", 82800)]


def test_fractions_of_a_second_telescope_over_consecutive_intervals() -> None:
    points = [1_000_400, 1_001_900, 1_002_100, 1_010_999, 1_011_000]
    total = sum(s for a, b in itertools.pairwise(points) for _, s in day_segments(a, b, BERLIN))
    assert total == 1_011 - 1_000
    assert day_segments(5_000, 5_000, BERLIN) == [] and day_segments(6_000, 5_000, BERLIN) == []


def test_camera_and_stream_split_the_counters() -> None:
    start, end = ms(2026, 3, 10, 10, 0), ms(2026, 3, 10, 10, 10)
    assert credit(start, end, VoiceFlags(), BERLIN) == {
        "2026-03-10": {"voice_s": 600, "cam_on_s": 0, "cam_off_s": 600, "stream_s": 0}}
    assert credit(start, end, VoiceFlags(camera=True, stream=True), BERLIN) == {
        "2026-03-10": {"voice_s": 600, "cam_on_s": 600, "cam_off_s": 0, "stream_s": 600}}


def test_afk_and_excluded_deafen_count_nothing() -> None:
    start, end = ms(2026, 3, 10, 10, 0), ms(2026, 3, 10, 11, 0)
    assert credit(start, end, VoiceFlags(camera=True, afk=True), BERLIN) == {}
    assert credit(start, end, VoiceFlags(deaf_excluded=True), BERLIN) == {}


def test_voice_flags_from_a_voice_state() -> None:
    afk = voice_flags(channel_id=30, self_video=False, self_stream=False, self_deaf=False,
                      afk_channel_id=30, count_self_deafened=True)
    assert afk.afk and not afk.counted
    deaf = dict(channel_id=20, self_video=True, self_stream=False, self_deaf=True, afk_channel_id=30)
    assert voice_flags(**deaf, count_self_deafened=True).counted
    excluded = voice_flags(**deaf, count_self_deafened=False)
    assert excluded.deaf_excluded and not excluded.counted and excluded.camera
    assert VoiceFlags.from_document(excluded.to_document()) == excluded
    assert VoiceFlags.from_document({"camera": 1, "stream": 0}) == VoiceFlags(camera=True)


def test_periods_days_and_formatting() -> None:
    now = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 2026-03-10 23:00 in New York
    assert day_of(to_ms(now), NY) == "2026-03-10"
    assert period_start_day("today", now, NY) == "2026-03-10"
    assert period_start_day("7d", now, NY) == "2026-03-04"
    assert period_start_day("30d", now, ZoneInfo("UTC")) == "2026-02-10"
    assert period_start_day("all", now, NY) is None
    with pytest.raises(KeyError):
        period_start_day("year", now, NY)
    assert last_days(now, NY, 3) == ["2026-03-08", "2026-03-09", "2026-03-10"]
    assert format_duration(43500) == "12h 05m" and format_duration(59) == "0h 00m"
    assert format_duration(360000) == "100h 00m"
    assert zone("Not/AZone") == ZoneInfo("UTC") and zone("Europe/Berlin") == BERLIN


def test_flags_round_trip_through_a_document_with_every_field() -> None:
    from dataclasses import fields

    every = {f.name for f in fields(VoiceFlags)}
    for flags in (VoiceFlags(), VoiceFlags(camera=True, stream=True, afk=True, deaf_excluded=True),
                  VoiceFlags(stream=True, deaf_excluded=True)):
        doc = flags.to_document()
        assert set(doc) == every and all(v in (0, 1) for v in doc.values())
        assert VoiceFlags.from_document(doc) == flags
