"""Fonts for the pictures the bot draws: Noto, with a fallback per character, so names in any script
and with emoji render as letters, not boxes.

The fonts come from two PyPI packages installed by `requirements.txt` (no system font, no apt step):
`manimgx-fonts` (Noto Sans, the monochrome Noto Emoji, Noto Sans Symbols and Noto Sans for other
scripts) and `manimgx-fonts-cjk` (Noto Sans CJK, one variable collection for Chinese, Japanese and
Korean). Each character is drawn with the first font of `CHAIN` whose character map has it (read
with fontTools, once per process); joiners and variation selectors stay with the character before
them; a character no font has is replaced by its compatibility form (a mathematical script J as
J) or dropped, so a picture never shows a `.notdef` box.

Pure and blocking (Pillow): the callers render in a thread.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import manimgx_fonts
import manimgx_fonts_cjk
from fontTools.ttLib import TTCollection, TTFont
from PIL import ImageDraw, ImageFont

log = logging.getLogger(__name__)

_LATIN = Path(manimgx_fonts.__file__).parent
_CJK = Path(manimgx_fonts_cjk.__file__).parent / "NotoSansCJK-VF.otf.ttc"


@dataclass(frozen=True)
class FontFile:
    path: Path
    index: int = 0  # the face in a collection (.ttc)


# Noto Sans first (Latin, Greek, Cyrillic), then CJK (simplified Chinese face of the collection:
# every face covers the same ideographs, kana and hangul), emoji, symbols, then other scripts.
CHAIN: tuple[FontFile, ...] = (
    FontFile(_LATIN / "NotoSans[wght].ttf"),
    FontFile(_CJK, 2),
    FontFile(_LATIN / "NotoEmoji[wght].ttf"),
    FontFile(_LATIN / "NotoSansSymbols[wght].ttf"),
    *(FontFile(_LATIN / f"NotoSans{script}[wght].ttf") for script in (
        "Arabic", "Hebrew", "Thai", "Devanagari", "Bengali", "Tamil", "Telugu", "Kannada",
        "Malayalam", "Gujarati", "Gurmukhi", "Oriya", "Sinhala", "Khmer", "Lao", "Myanmar",
        "Armenian", "Georgian", "Ethiopic")),
)
REGULAR, BOLD = 400, 700
# Characters that never stand alone: they go with the run of the character before them.
_JOINERS = {0x200C, 0x200D, 0x20E3} | set(range(0xFE00, 0xFE10)) | set(range(0x1F3FB, 0x1F400)) \
    | set(range(0xE0020, 0xE0080))


@cache
def _cmap(font: FontFile) -> frozenset[int]:
    if font.path.suffix == ".ttc":
        face = TTCollection(str(font.path), lazy=True).fonts[font.index]
    else:
        face = TTFont(str(font.path), lazy=True)
    return frozenset(face.getBestCmap())


@cache
def face(position: int, size: int, weight: int = REGULAR) -> ImageFont.FreeTypeFont:
    """The Pillow font of `CHAIN[position]` at `size` px and `weight` (100-900)."""
    font_file = CHAIN[position]
    loaded = ImageFont.truetype(str(font_file.path), size, index=font_file.index)
    try:
        loaded.set_variation_by_axes([weight])
    except OSError:  # not a variable font: its one weight
        log.debug("%s has no weight axis", font_file.path.name)
    return loaded


def font_of(char: str) -> int | None:
    """The position in `CHAIN` of the first font that has `char`, None when none has it."""
    code = ord(char)
    return next((i for i, font in enumerate(CHAIN) if code in _cmap(font)), None)


def missing(text: str) -> list[str]:
    """The characters of `text` that no font has (joiners and selectors aside)."""
    return [c for c in text if ord(c) not in _JOINERS and font_of(c) is None]


def displayable(text: str) -> str:
    """`text` with every character some font has: others by their compatibility form, or dropped."""
    kept: list[str] = []
    for char in text:
        if ord(char) in _JOINERS or font_of(char) is not None:
            kept.append(char)
            continue
        compatible = unicodedata.normalize("NFKC", char)
        if compatible != char and not missing(compatible):
            kept.append(compatible)
    return "".join(kept)


def runs(text: str) -> Iterator[tuple[int, str]]:
    """`text` (made displayable) cut into (font position, piece) runs of one font each."""
    current: int | None = None
    piece = ""
    for char in displayable(text):
        position = current if ord(char) in _JOINERS and current is not None else font_of(char)
        if position is None:  # a joiner with nothing before it
            continue
        if position != current and piece:
            yield current, piece  # type: ignore[misc]
            piece = ""
        current = position
        piece += char
    if piece and current is not None:
        yield current, piece


def width(text: str, size: int, weight: int = REGULAR) -> float:
    """How wide `text` is drawn at `size` px."""
    return sum(face(position, size, weight).getlength(piece) for position, piece in runs(text))


def fit(text: str, size: int, limit: float, weight: int = REGULAR) -> str:
    """`text`, cut with an ellipsis if it is wider than `limit` px."""
    text = displayable(text)
    if width(text, size, weight) <= limit:
        return text
    while text and width(text + "…", size, weight) > limit:
        text = text[:-1]
    return text.rstrip() + "…"


def draw(canvas: ImageDraw.ImageDraw, x: float, baseline: float, text: str, size: int,
         fill: str, weight: int = REGULAR) -> float:
    """Draw `text` with its left end at `x` on the `baseline`; returns the x where it ends."""
    for position, piece in runs(text):
        font = face(position, size, weight)
        canvas.text((x, baseline), piece, font=font, fill=fill, anchor="ls")
        x += font.getlength(piece)
    return x
