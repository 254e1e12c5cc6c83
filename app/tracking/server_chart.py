"""The `/server stats` chart: a dark PNG of a guild's period, per guild-local day, in the style of
the member card (`app.tracking.card`: same width, fonts, tiles, panels; readable at Discord's 400 px
preview, no text under 13 px there).

From the top: the guild's initials and name; tiles with the period's totals (joins, leaves, net
growth, messages, voice time, with the daily average of the last two); the caption naming the days
and their time zone (the x axis); three panels with one slot per day: joins and leaves (bars side
by side), messages, and voice time (in minutes while the highest day is under an hour, else hours).
Every panel has whole-number ticks, its unit in its title, and the day labels under it.

Pure and blocking: call `render_server_chart` through `asyncio.to_thread`. It takes the lock the
member card takes (`card.DRAWING`): the cached FreeType faces are shared and not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from app.tracking import fonts
from app.tracking.card import (
    BACKGROUND,
    DRAWING,
    MESSAGES,
    MUTED,
    PAD,
    SCALE,
    TICK_PX,
    WIDTH,
    Bar,
    Canvas,
    Series,
    TextItem,
    duration,
    header,
    panel,
    period_bars,
    png,
    ticks_of,
    tile_rows,
    time_unit,
)
from app.tracking.server_stats import ServerStats
from app.tracking.voice import PERIOD_LABELS

JOINS, LEAVES, VOICE = "#3ba55c", "#ed4245", "#00a8fc"
PANEL_HEIGHT, PANEL_GAP, CAPTION = 118 * SCALE, 8 * SCALE, 24 * SCALE
HEIGHT = PAD + 68 * SCALE + 2 * 62 * SCALE + 8 * SCALE + PANEL_GAP + CAPTION + 3 * PANEL_HEIGHT \
    + 2 * PANEL_GAP + PAD


@dataclass(frozen=True)
class ServerChart:
    """What the chart shows: the guild's name and the figures read for the period."""

    guild_name: str
    stats: ServerStats


def caption(stats: ServerStats) -> str:
    """The x axis: which days, in which time zone."""
    return f"Per day, {PERIOD_LABELS[stats.period]}, server time ({stats.time_zone})"


def _tiles(canvas: Canvas, stats: ServerStats, top: int) -> int:
    totals, days = stats.totals, len(stats.days)
    net_colour = JOINS if totals.net >= 0 else LEAVES
    return tile_rows(canvas, (
        (("Joins", f"{totals.joins:,}", "rejoins included", JOINS),
         ("Leaves", f"{totals.leaves:,}", "members left", LEAVES),
         ("Net growth", f"{totals.net:+,d}" if totals.net else "0", "joins - leaves", net_colour)),
        (("Messages", f"{totals.messages:,}", f"{round(totals.messages / days):,} a day on average",
          MESSAGES),
         ("Voice", duration(totals.voice_s), f"{duration(round(totals.voice_s / days))} a day on average",
          VOICE)),
    ), top)


def _bars(stats: ServerStats) -> list[Bar]:
    """One labelled slot per day (the card's day labels: weekdays for 7 days, dates a week apart
    for 30, `today` for the last)."""
    bars, _ = period_bars(stats.period, stats.days[-1].day, {})
    return bars


def _series(stats: ServerStats) -> list[Series]:
    figures = [d.figures for d in stats.days]
    voice = [float(f.voice_s) for f in figures]
    unit_name, unit = time_unit(max(voice, default=0))
    return [
        Series("Joins and leaves (members)",
               [(JOINS, [float(f.joins) for f in figures]), (LEAVES, [float(f.leaves) for f in figures])],
               [(JOINS, "joins"), (LEAVES, "leaves")], side_by_side=True),
        Series("Messages", [(MESSAGES, [float(f.messages) for f in figures])]),
        Series(f"Voice ({unit_name})", [(VOICE, voice)], unit=unit),
    ]


def _panels(canvas: Canvas, stats: ServerStats, top: int) -> int:
    canvas.text(PAD, top + 16 * SCALE, fonts.fit(caption(stats), TICK_PX, WIDTH - 2 * PAD), TICK_PX, MUTED)
    top += CAPTION - PANEL_GAP
    bars = _bars(stats)
    panels = _series(stats)
    # one gutter for the three panels, so a day's bars line up from panel to panel
    gutter = max(fonts.width(f"{tick:,}", TICK_PX) for series in panels
                 for tick in ticks_of(series, bars)) + 8 * SCALE
    for series in panels:
        top = panel(canvas, series, bars, top + PANEL_GAP, gutter)
    return top


def draw_server_chart(chart: ServerChart) -> tuple[Image.Image, list[TextItem]]:
    """The chart as an image at `WIDTH` px, with every text drawn (for measuring)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    canvas = Canvas(image, ImageDraw.Draw(image))
    stats = chart.stats
    with DRAWING:
        top = header(canvas, chart.guild_name, stats.guild_id,
                     f"Server stats · {PERIOD_LABELS[stats.period]}")
        top = _tiles(canvas, stats, top)
        _panels(canvas, stats, top + PANEL_GAP)
    return image, canvas.texts


def render_server_chart(chart: ServerChart) -> bytes:
    """The chart as PNG bytes."""
    return png(draw_server_chart(chart)[0])

