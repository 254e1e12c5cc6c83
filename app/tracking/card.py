"""The `/ud` member card: a dark PNG with the member's totals, ranks and the chosen period's bars.

Drawn with Pillow at `WIDTH` px and laid out for Discord's preview, which shows an embed image
400 px wide: every text is at least `SMALLEST_PX` px at that width (`WIDTH / 400` times more here).
No avatar is fetched: a disc with the member's initials stands in. Fonts: `app.tracking.fonts`.

The bars: `period_bars` turns the member's day documents into one bar per day (`today`: the last
7 days, today's bar in colour and the days before dimmed; `7d`, `30d`: each day of the period) or
per month (`all`: the last 12 months); `season_bars`: each day of the current season, at most its
last 30. Three panels: messages, voice (camera on stacked over camera
off) and streaming, each with whole-number ticks, in minutes while the highest bar is under an hour.
With the member's habits (`app.tracking.streaks.Habits`), a row under the totals shows the streak
and, when the member set one, the weekly goal's progress; the card is that row taller.

Pure and blocking: call `render_member_card` through `asyncio.to_thread`. One picture is drawn at a
time (`DRAWING`, also taken by the `/server stats` chart, which shares the header, tiles and
panels): the cached FreeType faces are shared and FreeType faces are not thread-safe.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from PIL import Image, ImageDraw

from app.tracking import fonts
from app.tracking.fonts import BOLD, REGULAR
from app.tracking.streaks import Habits, WeekProgress
from repositories.activity import Counters

PREVIEW_WIDTH = 400
SMALLEST_PX = 13  # at the preview's width
WIDTH = 800
SCALE = WIDTH // PREVIEW_WIDTH
PAD = 16 * SCALE

# px at WIDTH (divide by SCALE for the preview)
NAME_PX, SUBTITLE_PX = 26 * SCALE, 15 * SCALE
VALUE_PX, LABEL_PX = 22 * SCALE, SMALLEST_PX * SCALE
TITLE_PX, TICK_PX = 14 * SCALE, SMALLEST_PX * SCALE

BACKGROUND, PANEL, GRID = "#1e1f22", "#2b2d31", "#3f4147"
TEXT, MUTED = "#f2f3f5", "#b5bac1"
MESSAGES, CAMERA_ON, CAMERA_OFF, STREAMING = "#5865f2", "#57f287", "#949ba4", "#b380ff"
DIMMED = "#4e5058"
STREAK, GOAL = "#faa61a", "#eb459e"
DISCS = ("#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#00a8fc")
HOUR = 3600
DRAWING = threading.Lock()  # every picture drawn with the shared faces takes it


@dataclass(frozen=True)
class Bar:
    """One day (or month) of the chart."""

    label: str
    counters: Counters
    in_period: bool = True
    current: bool = False  # today, or this month


@dataclass(frozen=True)
class MemberCard:
    name: str
    member_id: int
    subtitle: str  # "server · last 7 days"
    counters: Counters  # the period's totals
    message_rank: int | None
    voice_rank: int | None
    ranked: tuple[int, int]  # members ranked on the messages and voice boards
    bars: Sequence[Bar]
    caption: str  # what the bars are: "Per day, last 7 days"
    habits: Habits | None = None  # the streak and weekly goal row (None: not drawn)


@dataclass(frozen=True)
class TextItem:
    """A text the card drew: where (left, top, right, bottom at WIDTH) and at which size."""

    text: str
    size: int
    box: tuple[int, int, int, int]


@dataclass
class Canvas:
    image: Image.Image
    draw: ImageDraw.ImageDraw
    texts: list[TextItem] = field(default_factory=list)

    def text(self, x: float, baseline: float, text: str, size: int, fill: str = TEXT,
             weight: int = REGULAR) -> float:
        end = fonts.draw(self.draw, x, baseline, text, size, fill, weight)
        top = baseline - size * 0.8
        self.texts.append(TextItem(text, size, (int(x), int(top), math.ceil(end),
                                                math.ceil(baseline + size * 0.25))))
        return end

    def right_text(self, right: float, baseline: float, text: str, size: int, fill: str = TEXT,
                   weight: int = REGULAR) -> None:
        self.text(right - fonts.width(text, size, weight), baseline, text, size, fill, weight)


# ---- the bars of a period --------------------------------------------------------------------
def _sum(counters: Sequence[Counters]) -> Counters:
    return Counters(*(sum(getattr(c, name) for c in counters) for name in
                      ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")))


def _day_bars(today: date, days: int, shown: int, stored: Mapping[str, Counters]) -> list[Bar]:
    bars = []
    for back in range(shown - 1, -1, -1):
        day = today - timedelta(days=back)
        label = "today" if back == 0 else day.strftime("%a") if shown <= 7 else f"{day:%b} {day.day}"
        bars.append(Bar(label, stored.get(day.isoformat(), Counters()), back < days, back == 0))
    return bars


def _month_bars(today: date, stored: Mapping[str, Counters]) -> list[Bar]:
    months = []
    year, month = today.year, today.month
    for _ in range(12):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    bars = []
    for key in reversed(months):
        counters = _sum([c for day, c in stored.items() if day.startswith(key)])
        label = date(int(key[:4]), int(key[5:]), 1).strftime("%b")
        bars.append(Bar(label, counters, True, key == months[0]))
    return bars


def first_bar_day(period: str, today: date) -> str:
    """The first day the bars of `period` read."""
    if period == "all":
        months = today.year * 12 + today.month - 1 - 11  # the first of the last 12 months
        return date(months // 12, months % 12 + 1, 1).isoformat()
    return (today - timedelta(days={"today": 7, "7d": 7, "30d": 30}[period] - 1)).isoformat()


def period_bars(period: str, today: date, stored: Mapping[str, Counters]) -> tuple[list[Bar], str]:
    """The bars of `period` (`today`, `7d`, `30d`, `all`) from the day documents `stored` (by
    `YYYY-MM-DD`, days without activity absent), and the caption saying what they are."""
    if period == "today":
        return _day_bars(today, 1, 7, stored), "Today, beside the 6 days before"
    if period == "7d":
        return _day_bars(today, 7, 7, stored), "Per day, last 7 days"
    if period == "30d":
        return _day_bars(today, 30, 30, stored), "Per day, last 30 days"
    return _month_bars(today, stored), "Per month, last 12 months"


SEASON_BARS = 30  # days of a season the card shows at most (its last ones)


def season_bars(start_day: str, today: date, stored: Mapping[str, Counters]) -> tuple[list[Bar], str]:
    """The bars of the current season (started on `start_day`): one per day, at most the last
    `SEASON_BARS` of them, and the caption saying which."""
    days = max(1, (today - date.fromisoformat(start_day)).days + 1)
    shown = min(days, SEASON_BARS)
    if days > SEASON_BARS:
        caption = f"Per day, the season's last {SEASON_BARS} days (it started {start_day})"
    else:
        caption = f"Per day, this season (since {start_day})"
    return _day_bars(today, shown, shown, stored), caption


# ---- axes ------------------------------------------------------------------------------------
def whole_ticks(highest: float) -> list[int]:
    """Whole-number ticks from 0 to at least `highest`, at most 5 of them, a 1-2-5 step apart."""
    if highest <= 0:
        return [0, 1]
    rough = highest / 3
    magnitude = 10 ** max(0, math.floor(math.log10(rough))) if rough >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    step = max(1, int(step))
    return list(range(0, step * math.ceil(highest / step) + 1, step))


def time_unit(highest_s: float) -> tuple[str, int]:
    """Minutes while the highest bar is under an hour, else hours: (unit name, seconds per unit)."""
    return ("minutes", 60) if highest_s < HOUR else ("hours", HOUR)


# ---- drawing ---------------------------------------------------------------------------------
def _initials(name: str) -> str:
    """Up to two initials, from the words that start with a letter or digit if there are any."""
    words = fonts.displayable(name).split()
    lettered = [word for word in words if word[0].isalnum()] or words
    return "".join(word[0] for word in lettered[:2]).upper() or "?"


def header(canvas: Canvas, name: str, ident: int, subtitle: str) -> int:
    """A disc with the initials of `name` (its colour picked by `ident`), the name and a subtitle;
    returns where the header ends."""
    disc = 56 * SCALE
    canvas.draw.ellipse((PAD, PAD, PAD + disc, PAD + disc), fill=DISCS[ident % len(DISCS)])
    initials = _initials(name)
    size = 22 * SCALE
    left = PAD + (disc - fonts.width(initials, size, BOLD)) / 2
    canvas.text(left, PAD + disc / 2 + size * 0.36, initials, size, TEXT, BOLD)
    x = PAD + disc + 12 * SCALE
    room = WIDTH - PAD - x
    canvas.text(x, PAD + 27 * SCALE, fonts.fit(name, NAME_PX, room, BOLD), NAME_PX, TEXT, BOLD)
    canvas.text(x, PAD + 49 * SCALE, fonts.fit(subtitle, SUBTITLE_PX, room), SUBTITLE_PX, MUTED)
    return PAD + disc + 12 * SCALE


def duration(seconds: int) -> str:
    """`48s`, `12m`, `3h 05m`, `—` (the reply style's durations, without importing the cogs)."""
    if seconds <= 0:
        return "—"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < HOUR:
        return f"{seconds // 60}m"
    return f"{seconds // HOUR:,}h {seconds % HOUR // 60:02d}m"


def _rank(rank: int | None, ranked: int) -> str:
    return f"rank #{rank:,} of {ranked:,}" if rank is not None else "not ranked"


Tile = tuple[str, str, str, str]  # label, value, note under it, colour of its edge
TILE_HEIGHT, TILE_GAP = 62 * SCALE, 8 * SCALE


def draw_tile(canvas: Canvas, tile: Tile, left: float, y: float, width: float) -> None:
    """One tile: a panel with a coloured edge, its label, value and the note under it."""
    label, value, note, colour = tile
    height = TILE_HEIGHT
    canvas.draw.rounded_rectangle((left, y, left + width, y + height), 6 * SCALE, fill=PANEL)
    canvas.draw.rectangle((left, y + 6 * SCALE, left + 2 * SCALE, y + height - 6 * SCALE), fill=colour)
    inner = left + 10 * SCALE
    canvas.text(inner, y + 17 * SCALE, label, LABEL_PX, MUTED)
    canvas.text(inner, y + 39 * SCALE, value, VALUE_PX, TEXT, BOLD)
    canvas.text(inner, y + 56 * SCALE, fonts.fit(note, LABEL_PX, width - 20 * SCALE), LABEL_PX, MUTED)


def tile_rows(canvas: Canvas, rows: Sequence[Sequence[Tile]], top: int) -> int:
    """Rows of tiles, each row as wide as the picture; returns where the last row ends."""
    gap, height = TILE_GAP, TILE_HEIGHT
    for r, row in enumerate(rows):
        tile_width = (WIDTH - 2 * PAD - gap * (len(row) - 1)) / len(row)
        y = top + r * (height + gap)
        for i, tile in enumerate(row):
            draw_tile(canvas, tile, PAD + i * (tile_width + gap), y, tile_width)
    return top + len(rows) * height + (len(rows) - 1) * gap


def _tiles(canvas: Canvas, card: MemberCard, top: int) -> int:
    c = card.counters
    return tile_rows(canvas, (
        (("Messages", f"{c.messages:,}", _rank(card.message_rank, card.ranked[0]), MESSAGES),
         ("Voice", duration(c.voice_s), _rank(card.voice_rank, card.ranked[1]), CAMERA_OFF)),
        (("Camera on", duration(c.cam_on_s), f"camera off {duration(c.cam_off_s)}", CAMERA_ON),
         ("Streaming", duration(c.stream_s), "screen shared", STREAMING)),
    ), top)


def _days(n: int) -> str:
    return f"{n:,} day" if n == 1 else f"{n:,} days"


def _streak_tile(habits: Habits, room: float) -> Tile:
    streak = habits.streak
    note = f"best {_days(streak.best)}"
    hint = f"{note} · not active yet today"
    if streak.current and not streak.today_active and fonts.width(hint, LABEL_PX) <= room:
        note = hint
    return "Streak", _days(streak.current) if streak.current else "—", note, STREAK


def _goal_tile(week: WeekProgress) -> Tile:
    parts = []
    if week.messages is not None:
        parts.append(f"{week.messages.done:,}/{week.messages.target:,} messages")
    if week.voice is not None:
        target = week.voice.target
        hours = f"{target // HOUR}h" if target % HOUR == 0 else duration(target)
        parts.append(f"{duration(week.voice.done) if week.voice.done else '0m'}/{hours} voice")
    return f"Weekly goal, since {week.since:%a} {week.since.day}", f"{week.percent}%", " · ".join(parts), GOAL


def _habits(canvas: Canvas, habits: Habits, top: int) -> int:
    """The streak (a third of the row beside a weekly goal, else all of it) and the weekly goal."""
    room = WIDTH - 2 * PAD
    if habits.week is None:
        draw_tile(canvas, _streak_tile(habits, room - 20 * SCALE), PAD, top, room)
        return top + TILE_HEIGHT
    streak_width = (room - TILE_GAP) / 3
    draw_tile(canvas, _streak_tile(habits, streak_width - 20 * SCALE), PAD, top, streak_width)
    left = PAD + streak_width + TILE_GAP
    draw_tile(canvas, _goal_tile(habits.week), left, top, WIDTH - PAD - left)
    return top + TILE_HEIGHT


@dataclass(frozen=True)
class Series:
    title: str
    layers: Sequence[tuple[str, Sequence[float]]]  # (colour, value per bar), stacked bottom up
    legend: Sequence[tuple[str, str]] = ()
    unit: int = 1  # seconds per unit for times
    side_by_side: bool = False  # the layers' bars next to each other in a day's slot, not stacked


def _label_positions(bars: Sequence[Bar], slot: float) -> list[int]:
    """Which bars get an x label: the current one, then every n-th to the left, without overlap."""
    widest = max(fonts.width(bar.label, TICK_PX) for bar in bars)
    every = max(1, math.ceil((widest + 6 * SCALE) / slot))
    if len(bars) > 12:  # days of a month: a week apart
        every = max(every, 7)
    return [i for i in range(len(bars) - 1, -1, -every)]


def ticks_of(series: Series, bars: Sequence[Bar]) -> list[int]:
    combine = max if series.side_by_side else sum
    return whole_ticks(max((combine(values[i] for _, values in series.layers) / series.unit
                            for i in range(len(bars))), default=0))


def _side_by_side(canvas: Canvas, series: Series, i: int, span: tuple[float, float],
                  y_of: Callable[[float], float], in_period: bool) -> None:
    """Bar `i` of each layer, next to each other within `span`, all from zero."""
    x0, x1 = span
    width = (x1 - x0) / len(series.layers)
    for k, (colour, values) in enumerate(series.layers):
        value = values[i] / series.unit
        if value > 0:
            canvas.draw.rectangle((x0 + k * width, y_of(value), x0 + (k + 1) * width - 1, y_of(0)),
                                  fill=colour if in_period else DIMMED)


def panel(canvas: Canvas, series: Series, bars: Sequence[Bar], top: int, gutter: float) -> int:
    height, plot_top, plot_height = 118 * SCALE, top + 32 * SCALE, 58 * SCALE
    canvas.draw.rounded_rectangle((PAD, top, WIDTH - PAD, top + height), 6 * SCALE, fill=PANEL)
    canvas.text(PAD + 10 * SCALE, top + 18 * SCALE, series.title, TITLE_PX, TEXT, BOLD)
    right = WIDTH - PAD - 10 * SCALE
    for colour, name in reversed(series.legend):
        canvas.right_text(right, top + 18 * SCALE, name, LABEL_PX, MUTED)
        right -= fonts.width(name, LABEL_PX) + 4 * SCALE
        canvas.draw.rectangle((right - 8 * SCALE, top + 9 * SCALE, right, top + 17 * SCALE), fill=colour)
        right -= 16 * SCALE
    ticks = ticks_of(series, bars)
    left, plot_right = PAD + 10 * SCALE + gutter, WIDTH - PAD - 10 * SCALE
    bottom = plot_top + plot_height

    def y_of(value: float) -> float:
        return bottom - plot_height * value / ticks[-1]

    for tick in ticks:
        y = y_of(tick)
        canvas.draw.line((left, y, plot_right, y), fill=GRID, width=1)
        canvas.right_text(left - 6 * SCALE, y + TICK_PX * 0.36, f"{tick:,}", TICK_PX, MUTED)
    slot = (plot_right - left) / len(bars)
    for i, bar in enumerate(bars):
        x0, x1 = left + i * slot + slot * 0.15, left + (i + 1) * slot - slot * 0.15
        if series.side_by_side:
            _side_by_side(canvas, series, i, (x0, x1), y_of, bar.in_period)
            continue
        base = 0.0
        for colour, values in series.layers:
            value = values[i] / series.unit
            if value > 0:
                fill = colour if bar.in_period else DIMMED
                canvas.draw.rectangle((x0, y_of(base + value), x1, y_of(base)), fill=fill)
            base += value
    for i in _label_positions(bars, slot):
        bar = bars[i]
        centre = left + (i + 0.5) * slot
        label_width = fonts.width(bar.label, TICK_PX, BOLD if bar.current else REGULAR)
        x = min(max(centre - label_width / 2, PAD + 4 * SCALE), WIDTH - PAD - 4 * SCALE - label_width)
        canvas.text(x, bottom + 20 * SCALE, bar.label, TICK_PX, TEXT if bar.current else MUTED,
                    BOLD if bar.current else REGULAR)
    return top + height


def _series(bars: Sequence[Bar]) -> list[Series]:
    """The three panels: messages, voice (camera off, camera on stacked), streaming."""
    messages = [float(b.counters.messages) for b in bars]
    on = [float(b.counters.cam_on_s) for b in bars]
    off = [float(b.counters.cam_off_s) for b in bars]
    voice_name, voice_unit = time_unit(max((a + b for a, b in zip(on, off, strict=True)), default=0))
    streams = [float(b.counters.stream_s) for b in bars]
    stream_name, stream_unit = time_unit(max(streams, default=0))
    return [
        Series("Messages", [(MESSAGES, messages)]),
        Series(f"Voice ({voice_name})", [(CAMERA_OFF, off), (CAMERA_ON, on)],
                [(CAMERA_ON, "camera on"), (CAMERA_OFF, "off")], voice_unit),
        Series(f"Streaming ({stream_name})", [(STREAMING, streams)], unit=stream_unit),
    ]


def _charts(canvas: Canvas, card: MemberCard, top: int) -> int:
    canvas.text(PAD, top + 16 * SCALE, card.caption, LABEL_PX, MUTED)
    top += 24 * SCALE - 8 * SCALE
    panels = _series(card.bars)
    # one gutter for the three panels, so a day's bars line up from panel to panel
    gutter = max(fonts.width(f"{tick:,}", TICK_PX) for series in panels
                 for tick in ticks_of(series, card.bars)) + 8 * SCALE
    for series in panels:
        top = panel(canvas, series, card.bars, top + 8 * SCALE, gutter)
    return top


HEIGHT = PAD + 68 * SCALE + 2 * 62 * SCALE + 8 * SCALE + 8 * SCALE + 24 * SCALE + 3 * 118 * SCALE \
    + 2 * 8 * SCALE + PAD


def card_height(card: MemberCard) -> int:
    """`HEIGHT`, and the row of the streak and weekly goal when the card has them."""
    return HEIGHT + (TILE_HEIGHT + TILE_GAP if card.habits is not None else 0)


def draw_member_card(card: MemberCard) -> tuple[Image.Image, list[TextItem]]:
    """The card as an image at `WIDTH` px, with every text drawn (for measuring)."""
    image = Image.new("RGB", (WIDTH, card_height(card)), BACKGROUND)
    canvas = Canvas(image, ImageDraw.Draw(image))
    with DRAWING:
        top = header(canvas, card.name, card.member_id, card.subtitle)
        top = _tiles(canvas, card, top)
        if card.habits is not None:
            top = _habits(canvas, card.habits, top + TILE_GAP)
        _charts(canvas, card, top + 8 * SCALE)
    return image, canvas.texts


def png(image: Image.Image) -> bytes:
    """A picture as PNG bytes (what a reply attaches)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def render_member_card(card: MemberCard) -> bytes:
    """The card as PNG bytes."""
    return png(draw_member_card(card)[0])
