"""The `/server stats` chart and its per-day figures: the documented size, axes and legend drawn,
day labels, bars where the figures are, readable at Discord's 400 px preview; days in the guild's
time zone, midnight and DST included."""

from __future__ import annotations

import io
import struct
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image, ImageStat

from app.tracking.card import PREVIEW_WIDTH, WIDTH, TextItem
from app.tracking.server_chart import (
    HEIGHT,
    JOINS,
    LEAVES,
    VOICE,
    ServerChart,
    draw_server_chart,
    render_server_chart,
)
from app.tracking.server_stats import (
    Figures,
    ServerDay,
    ServerStats,
    assemble,
    by_local_day,
    period_days,
    time_range_ms,
)
from app.wiring.clock import to_ms
from repositories.activity import Counters
from tests.app.tracking.test_card import tick_sizes_at_preview

TODAY = date(2026, 3, 11)  # a Wednesday


def stats(period: str = "7d", figures: dict[int, Figures] | None = None,
          tz: str = "Europe/Berlin") -> ServerStats:
    """`figures` by days back from TODAY (0: today); other days are empty."""
    n = {"7d": 7, "30d": 30}[period]
    if figures is None:
        figures = {0: Figures(2, 1, 40, 5400), 2: Figures(1, 0, 12, 600), 4: Figures(0, 3, 7, 0),
                   n - 1: Figures(5, 0, 3, 9000)}
    days = tuple(ServerDay(TODAY - timedelta(days=back), figures.get(back, Figures()))
                 for back in range(n - 1, -1, -1))
    return ServerStats(722057822208000001, period, tz, days, "memory")


def chart(period: str = "7d", **kw: object) -> ServerChart:
    return ServerChart("Study Hall 📚", stats(period, **kw))  # type: ignore[arg-type]


def labels(texts: list[TextItem]) -> list[str]:
    return [t.text for t in texts]


def test_the_chart_is_a_small_dark_png_of_the_documented_size() -> None:
    png = render_server_chart(chart())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)
    assert 10_000 < len(png) < 200_000
    image = Image.open(io.BytesIO(png)).convert("L")
    assert ImageStat.Stat(image).mean[0] < 80  # dark, like the member card


def test_axes_legend_totals_and_the_time_zone_are_drawn() -> None:
    _, texts = draw_server_chart(chart())
    drawn = labels(texts)
    assert drawn[0] == "SH" and "Study Hall 📚" in drawn  # initials on the disc, then the name
    assert "Server stats · last 7 days" in drawn
    assert "Per day, last 7 days, server time (Europe/Berlin)" in drawn  # the x axis
    assert {"Joins and leaves (members)", "Messages", "Voice (hours)"} <= set(drawn)  # the y axes
    assert {"joins", "leaves"} <= set(drawn)  # the legend
    # totals: 8 joins, 4 leaves, net +4, 62 messages, 4h 10m of voice
    for label, value in (("Joins", "8"), ("Leaves", "4"), ("Net growth", "+4"), ("Messages", "62"),
                         ("Voice", "4h 10m")):
        assert drawn[drawn.index(label) + 1] == value, label
    ticks = [t for t in drawn if t.replace(",", "").isdigit()]
    assert len(ticks) >= 6 and all("." not in t for t in ticks)  # whole numbers, 2+ per panel


def test_seven_days_are_labelled_by_weekday_and_thirty_a_week_apart() -> None:
    _, texts = draw_server_chart(chart("7d"))
    for day in ("Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "today"):
        assert labels(texts).count(day) == 3, day  # under each of the three panels
    _, texts = draw_server_chart(chart("30d"))
    assert {"today", "Mar 4", "Feb 25", "Feb 18", "Feb 11"} <= set(labels(texts))
    assert "Per day, last 30 days, server time (Europe/Berlin)" in labels(texts)


def test_voice_is_in_minutes_while_the_busiest_day_is_under_an_hour() -> None:
    _, texts = draw_server_chart(chart(figures={0: Figures(voice_s=3599), 1: Figures(voice_s=60)}))
    assert "Voice (minutes)" in labels(texts) and "60" in labels(texts)  # 59.98 minutes: a tick of 60


def test_a_shrinking_server_shows_a_negative_net_growth() -> None:
    _, texts = draw_server_chart(chart(figures={1: Figures(joins=1, leaves=3)}))
    drawn = labels(texts)
    assert drawn[drawn.index("Net growth") + 1] == "-2"
    _, texts = draw_server_chart(chart(figures={}))  # nothing at all: zeros, no error
    drawn = labels(texts)
    assert drawn[drawn.index("Net growth") + 1] == "0" and drawn[drawn.index("Voice") + 1] == "—"


def colour_columns(image: Image.Image, colour: str, top: int, bottom: int) -> list[int]:
    """The x of every pixel column between `top` and `bottom` holding `colour`."""
    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    pixels = image.load()
    assert pixels is not None
    return [x for x in range(image.width) if any(pixels[x, y] == rgb for y in range(top, bottom))]


def test_bars_stand_on_the_days_they_belong_to_joins_beside_leaves() -> None:
    figures = {0: Figures(joins=2, leaves=1), 4: Figures(leaves=3), 6: Figures(voice_s=7200)}
    image, texts = draw_server_chart(chart(figures=figures))
    title = {t.text: t for t in texts}
    joins_top = title["Joins and leaves (members)"].box[3]
    joins_bottom = title["Messages"].box[1]
    day_labels = [t for t in texts if t.text in ("Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "today")][:7]
    centres = {t.text: (t.box[0] + t.box[2]) / 2 for t in day_labels}

    def days_of(columns: list[int]) -> set[str]:
        return {min(centres, key=lambda d: abs(centres[d] - x)) for x in columns}

    joins = colour_columns(image, JOINS, joins_top + 4, joins_bottom)
    leaves = colour_columns(image, LEAVES, joins_top + 4, joins_bottom)
    assert days_of(joins) == {"today"} and days_of(leaves) == {"today", "Sat"}
    today_leaves = [x for x in leaves if days_of([x]) == {"today"}]
    assert max(joins) < min(today_leaves)  # side by side: joins on the left, leaves on the right
    voice_top = title["Voice (hours)"].box[3]
    assert days_of(colour_columns(image, VOICE, voice_top + 4, HEIGHT)) == {"Thu"}  # 6 days back


def test_every_text_is_legible_at_the_preview_width() -> None:
    """As `test_card`: shrink the chart as Discord's preview does and measure the ink of the
    smallest digits (the y-axis ticks) through Noto Sans' cap height (digits are cap-height tall)."""
    image, texts = draw_server_chart(chart("30d"))
    scale = PREVIEW_WIDTH / WIDTH
    smallest = min(t.size for t in texts)
    assert smallest * scale >= 12
    measured = tick_sizes_at_preview(image, texts)
    assert len(measured) >= 6
    # A "1" at some sub-pixel positions loses its top row of ink to the resampling (the member
    # card's 30-day card measures the same 11.2): one row, never more, and the rest at 12 or over.
    assert min(measured) >= 11, measured
    assert sorted(measured)[len(measured) // 4] >= 12, measured


# ---- the figures per guild-local day ----------------------------------------------------------
def test_the_period_ends_today_in_the_guilds_time_zone() -> None:
    late = datetime(2026, 3, 11, 23, 30, tzinfo=UTC)  # already the 12th in Berlin
    assert period_days("7d", late, ZoneInfo("UTC"))[-1] == date(2026, 3, 11)
    berlin = period_days("7d", late, ZoneInfo("Europe/Berlin"))
    assert berlin == [date(2026, 3, 6) + timedelta(days=i) for i in range(7)]
    assert len(period_days("30d", late, ZoneInfo("UTC"))) == 30


def test_the_time_range_runs_from_local_midnight_to_local_midnight_across_a_dst_change() -> None:
    new_york = ZoneInfo("America/New_York")  # DST began on 2026-03-08: that day has 23 hours
    days = [date(2026, 3, 7), date(2026, 3, 8)]
    start, end = time_range_ms(days, new_york)
    assert start == to_ms(datetime(2026, 3, 7, 5, 0, tzinfo=UTC))  # 00:00 EST
    assert end == to_ms(datetime(2026, 3, 9, 4, 0, tzinfo=UTC))  # 00:00 EDT
    assert end - start == 47 * 3600 * 1000


def test_times_are_counted_on_their_local_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    times = [to_ms(datetime(2026, 3, 10, 22, 59, tzinfo=UTC)),  # 23:59 on the 10th in Berlin
             to_ms(datetime(2026, 3, 10, 23, 0, tzinfo=UTC)),  # 00:00 on the 11th
             to_ms(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))]
    assert by_local_day(times, berlin) == {date(2026, 3, 10): 1, date(2026, 3, 11): 2}
    assert by_local_day(times, ZoneInfo("UTC")) == {date(2026, 3, 10): 2, date(2026, 3, 11): 1}


def test_assemble_gives_every_day_of_the_period_zeros_included() -> None:
    days = [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)]
    activity = {"2026-03-09": Counters(messages=4, voice_s=60), "2026-03-11": Counters(messages=1),
                "2026-03-12": Counters(messages=99)}  # not a day of the period
    found = assemble(days, activity, {date(2026, 3, 10): 2}, {date(2026, 3, 11): 3})
    assert [d.day for d in found] == days
    assert [d.figures for d in found] == [Figures(0, 0, 4, 60), Figures(2, 0, 0, 0), Figures(0, 3, 1, 0)]
    total = ServerStats(1, "7d", "UTC", found, "database").totals
    assert total == Figures(2, 3, 5, 60) and total.net == -1
