"""The `/ud` member card: legible at Discord's 400 px preview, names in any script without boxes,
the chosen period's bars with whole-number ticks, minutes under an hour and today labelled."""

from __future__ import annotations

import io
import itertools
import math
import struct
from datetime import date

from fontTools.ttLib import TTFont
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageStat

from app.tracking import fonts
from app.tracking.card import (
    HEIGHT,
    PANEL,
    PREVIEW_WIDTH,
    WIDTH,
    MemberCard,
    TextItem,
    card_height,
    draw_member_card,
    first_bar_day,
    period_bars,
    render_member_card,
    season_bars,
    time_unit,
    whole_ticks,
)
from app.tracking.streaks import ActiveRule, Habits, Part, Streak, WeekProgress
from repositories.activity import Counters

TODAY = date(2026, 3, 11)  # a Wednesday
NAME = "Łukasz 🎮 王小明"
STORED = {
    "2026-03-11": Counters(messages=3, voice_s=1500, cam_on_s=600, cam_off_s=900, stream_s=300),
    "2026-03-09": Counters(messages=12, voice_s=2400, cam_on_s=0, cam_off_s=2400, stream_s=0),
    "2026-02-20": Counters(messages=7, voice_s=9000, cam_on_s=3600, cam_off_s=5400, stream_s=1800),
    "2025-04-02": Counters(messages=1),
    "2025-03-31": Counters(messages=100),  # 13 months ago: outside every period's bars
}


def card(period: str = "7d", name: str = NAME, habits: Habits | None = None) -> MemberCard:
    bars, caption = period_bars(period, TODAY, STORED)
    return MemberCard(name, 722057822208000102, "Study Hall · last 7 days",
                      Counters(15, 3900, 600, 3300, 300), 2, 1, (26, 14), bars, caption, habits)


WEEK = WeekProgress(date(2026, 3, 9), Part(12, 20), Part(11100, 18000))
HABITS = Habits(Streak(current=5, best=12, today_active=False), ActiveRule(), WEEK)


def brightness(hex_colour: str) -> int:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return round(0.299 * r + 0.587 * g + 0.114 * b)


def ink_rows(image: Image.Image, box: tuple[int, int, int, int], threshold: int) -> int:
    """How many pixel rows of `box` hold ink brighter than `threshold` (the text's height)."""
    crop = image.crop(box)
    pixels = crop.load()
    assert pixels is not None
    rows = [y for y in range(crop.height) if max(pixels[x, y] for x in range(crop.width)) > threshold]
    return rows[-1] - rows[0] + 1 if rows else 0


def tick_sizes_at_preview(image: Image.Image, texts: list[TextItem]) -> list[float]:
    """The font size, in px, of each of the smallest digit texts (the y-axis ticks) of a picture
    shrunk as Discord's preview does: their ink's height through Noto Sans' cap height (digits are
    cap-height tall)."""
    scale = PREVIEW_WIDTH / WIDTH
    smallest = min(t.size for t in texts)
    size = (PREVIEW_WIDTH, round(image.height * scale))
    preview = image.resize(size, Image.Resampling.LANCZOS).convert("L")
    noto = TTFont(str(fonts.CHAIN[0].path))
    cap_ratio = noto["OS/2"].sCapHeight / noto["head"].unitsPerEm
    threshold = (brightness(PANEL) + brightness("#b5bac1")) // 2
    measured = []
    for tick in (t for t in texts if t.size == smallest and t.text.replace(",", "").isdigit()):
        left, top, right, bottom = tick.box
        box = (math.floor(left * scale) - 1, math.floor(top * scale) - 1,
               math.ceil(right * scale) + 1, math.ceil(bottom * scale) + 1)
        measured.append(ink_rows(preview, box, threshold) / cap_ratio)
    return measured


def test_the_card_is_a_small_dark_png_of_the_documented_size() -> None:
    png = render_member_card(card())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)
    assert len(png) < 200_000
    image = Image.open(io.BytesIO(png)).convert("L")
    assert ImageStat.Stat(image).mean[0] < 80  # dark: no white block on a dark theme


def test_every_text_is_legible_at_the_preview_width() -> None:
    image, texts = draw_member_card(card())
    scale = PREVIEW_WIDTH / WIDTH
    smallest = min(t.size for t in texts)
    assert smallest * scale >= 12  # as drawn: every text at least 12 px at 400 px wide
    # Measured: shrink the card as Discord's preview does, find the ink of the smallest digits (the
    # y-axis ticks, drawn in the muted colour) and turn their height into a font size.
    measured = tick_sizes_at_preview(image, texts)
    assert len(measured) >= 6  # two or more ticks on each of the three panels
    assert min(measured) >= 12, measured


def test_names_with_emoji_and_cjk_have_a_glyph_for_every_character() -> None:
    assert fonts.missing(NAME) == []
    assert fonts.font_of("王") != 0 and fonts.font_of("🎮") != 0  # Noto Sans alone would draw boxes
    for position, piece in fonts.runs(NAME):
        face = fonts.face(position, 40)
        notdef = face.getmask("\U0010fffd")  # a private-use code point: the font's .notdef box
        for char in piece.replace(" ", ""):
            mask = face.getmask(char)
            assert mask.getbbox() is not None, char  # it draws something
            assert (mask.size, bytes(mask)) != (notdef.size, bytes(notdef)), char  # and not the box
    _, texts = draw_member_card(card())
    assert any(t.text == NAME for t in texts)  # drawn whole: it fits, nothing was dropped


def test_characters_no_font_has_are_never_drawn_as_boxes() -> None:
    assert fonts.missing("a\U0010fffd") == ["\U0010fffd"]
    assert fonts.displayable("a\U0010fffdb") == "ab"
    assert fonts.displayable("\U0001d4d9onas") == "Jonas"  # a mathematical script J: its plain form
    assert [piece for _, piece in fonts.runs("hi 👍🏽!")] == ["hi ", "👍🏽", "!"]  # modifier kept with it


def test_a_long_name_is_cut_with_an_ellipsis_to_fit() -> None:
    _, texts = draw_member_card(card(name="王" * 60))
    drawn = texts[1]  # after the initials
    assert drawn.text.startswith("王王") and drawn.text.endswith("…") and drawn.box[2] <= WIDTH


def labels(texts: list[TextItem]) -> list[str]:
    return [t.text for t in texts]


def test_seven_days_show_seven_bars_ending_today() -> None:
    bars, caption = period_bars("7d", TODAY, STORED)
    assert [b.label for b in bars] == ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "today"]
    assert caption == "Per day, last 7 days"
    assert all(b.in_period for b in bars) and [b.current for b in bars] == [False] * 6 + [True]
    assert bars[-1].counters.messages == 3 and bars[-3].counters.messages == 12
    assert first_bar_day("7d", TODAY) == "2026-03-05"
    _, texts = draw_member_card(card("7d"))
    assert labels(texts).count("today") == 3  # labelled under each of the three panels


def test_thirty_days_show_thirty_bars_labelled_a_week_apart() -> None:
    bars, caption = period_bars("30d", TODAY, STORED)
    assert len(bars) == 30 and bars[0].label == "Feb 10" and bars[-1].label == "today"
    assert caption == "Per day, last 30 days" and first_bar_day("30d", TODAY) == "2026-02-10"
    _, texts = draw_member_card(card("30d"))
    assert {"today", "Mar 4", "Feb 25", "Feb 18", "Feb 11"} <= set(labels(texts))


def test_today_shows_its_bar_beside_the_days_before_dimmed() -> None:
    bars, caption = period_bars("today", TODAY, STORED)
    assert len(bars) == 7 and [b.in_period for b in bars] == [False] * 6 + [True]
    assert caption == "Today, beside the 6 days before"


def test_all_time_shows_the_last_twelve_months() -> None:
    bars, caption = period_bars("all", TODAY, STORED)
    assert [b.label for b in bars] == ["Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                                       "Jan", "Feb", "Mar"]
    assert bars[0].counters.messages == 1  # 2025-03-31 is a month before the first bar
    assert bars[-2].counters == STORED["2026-02-20"] and bars[-1].counters.messages == 15
    assert bars[-1].current and caption == "Per month, last 12 months"
    assert first_bar_day("all", TODAY) == "2025-04-01"
    assert first_bar_day("all", date(2026, 12, 31)) == "2026-01-01"


def test_times_under_an_hour_are_in_minutes_and_ticks_are_whole() -> None:
    assert time_unit(3599) == ("minutes", 60) and time_unit(3600) == ("hours", 3600)
    _, texts = draw_member_card(card("7d"))  # voice peaks at 40 minutes, streaming at 5
    assert {"Voice (minutes)", "Streaming (minutes)"} <= set(labels(texts))
    _, texts = draw_member_card(card("30d"))  # 2026-02-20: 2.5 hours
    assert {"Voice (hours)", "Streaming (minutes)"} <= set(labels(texts))
    ticks = [t.text for t in texts if t.text.replace(",", "").isdigit()]
    assert ticks and all("." not in t for t in ticks)
    assert whole_ticks(1.5) == [0, 1, 2] and whole_ticks(0.1) == [0, 1] and whole_ticks(0) == [0, 1]
    assert whole_ticks(47) == [0, 20, 40, 60]


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_ticks_are_whole_numbers_covering_the_highest_bar(highest: float) -> None:
    ticks = whole_ticks(highest)
    assert all(isinstance(t, int) for t in ticks) and ticks[0] == 0 and ticks[-1] >= highest
    assert 2 <= len(ticks) <= 5
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_initials_stand_in_for_the_avatar() -> None:
    _, texts = draw_member_card(card())
    assert labels(texts)[0] == "Ł王"  # the first text drawn is on the disc
    _, texts = draw_member_card(card(name="🎮"))
    assert labels(texts)[0] == "🎮"


def test_a_name_with_dollars_and_carets_is_drawn_as_written() -> None:
    """Issue 18, finding 6: `$x^^$` broke the chart when it was matplotlib math text; the card is
    drawn with Pillow, which has no math text: the name is drawn as written."""
    _, texts = draw_member_card(card(name="$x^^$"))
    assert any(t.text == "$x^^$" for t in texts)


def test_the_streak_and_weekly_goal_get_a_row_of_their_own() -> None:
    plain = Image.open(io.BytesIO(render_member_card(card())))
    image, texts = draw_member_card(card(habits=HABITS))
    assert plain.size == (WIDTH, HEIGHT) and card_height(card()) == HEIGHT
    assert image.size == (WIDTH, card_height(card(habits=HABITS))) and image.height > HEIGHT
    shown = labels(texts)
    assert {"Streak", "5 days", "best 12 days", "Weekly goal, since Mon 9", "60%",
            "12/20 messages · 3h 05m/5h voice"} <= set(shown)
    assert not any("…" in text for text in shown)  # nothing had to be cut
    assert shown.count("today") == 3  # the charts are all still there, below the row
    assert all(t.box[0] >= 0 and t.box[2] <= WIDTH and t.box[3] <= image.height for t in texts)
    assert min(t.size for t in texts) * PREVIEW_WIDTH / WIDTH >= 12  # as legible as the rest


def test_without_a_goal_the_streak_takes_the_whole_row() -> None:
    _, texts = draw_member_card(card(habits=Habits(Streak(0, 3, False), ActiveRule(), None)))
    shown = labels(texts)
    assert "Streak" in shown and "—" in shown and "best 3 days" in shown
    assert not any(text.startswith("Weekly goal") for text in shown)
    _, texts = draw_member_card(card(habits=Habits(Streak(2, 3, False), ActiveRule(), None)))
    assert "best 3 days · not active yet today" in labels(texts)  # room for the hint on a whole row


def test_season_bars_are_the_seasons_days_at_most_its_last_30() -> None:
    bars, caption = season_bars("2026-03-09", TODAY, STORED)
    assert caption == "Per day, this season (since 2026-03-09)"
    assert [(b.label, b.counters.messages) for b in bars] == [("Mon", 12), ("Tue", 0), ("today", 3)]
    bars, caption = season_bars("2026-01-01", TODAY, STORED)
    assert caption == "Per day, the season's last 30 days (it started 2026-01-01)"
    assert len(bars) == 30 and bars[0].label == "Feb 10" and bars[-1].counters.messages == 3
    bars, _ = season_bars("2026-03-11", TODAY, STORED)  # started today
    assert [(b.label, b.counters.messages) for b in bars] == [("today", 3)]
