"""The README's screenshots, drawn by the bot's own code from demo data:
`python -m scripts.screenshots [--out docs/screenshots]`.

- `member-card.png`: the `/ud period:7d chart:True` card, from `app.tracking.card` (`period_bars`,
  `render_member_card`), the functions the `/ud` command calls.
- `server-stats.png`: the `/server stats` chart (30 days, the command's default), from
  `app.tracking.server_chart` (`render_server_chart`), the function the command calls, with the
  demo members' days summed per day and joins and leaves made up by a formula.
- `top.png`: a `/top board:voice period:7d` reply: the embed `cogs.stats.build_top_embed` returns,
  drawn as Discord's dark theme shows it (mentions as `@name` pills, code spans on a dark
  background), with the fonts of the card. The text is the embed's, unchanged.

The demo server: a few members with a month of activity, made up by a fixed formula (no database,
no Discord); ranks and totals are computed from those days the way the boards rank them (highest
first, ties by member id).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from app.tracking import fonts
from app.tracking.card import (
    BACKGROUND,
    MUTED,
    PANEL,
    SCALE,
    TEXT,
    WIDTH,
    MemberCard,
    first_bar_day,
    period_bars,
    render_member_card,
)
from app.tracking.fonts import BOLD
from app.tracking.server_chart import ServerChart, render_server_chart
from app.tracking.server_stats import MEMORY, Figures, ServerDay, ServerStats
from app.tracking.voice import PERIOD_LABELS
from cogs import style
from cogs.stats import build_top_embed
from repositories.activity import Counters

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
TODAY = date(2026, 3, 11)
GUILD = "Study Hall"
PERIOD = "7d"


@dataclass(frozen=True)
class DemoMember:
    member_id: int
    name: str
    present: bool = True


MEMBERS = (
    DemoMember(722057822208000101, "maya"),
    DemoMember(722057822208000102, "Łukasz 🎮 王小明"),
    DemoMember(722057822208000103, "jonas"),
    DemoMember(722057822208000104, "noor"),
    DemoMember(722057822208000105, "lina", present=False),
    DemoMember(722057822208000106, "さくら"),
)
CARD_MEMBER = MEMBERS[1]


EAGERNESS = (4, 5, 2, 3, 1, 3)  # how active each member is


def demo_days(index: int) -> dict[str, Counters]:
    """Member `index`'s day documents of the last 30 days (some days without activity)."""
    days: dict[str, Counters] = {}
    for back in range(30):
        if (back + index) % 4 == 3:
            continue
        on = (back * 37 + index * 53) % 40 * 20 * EAGERNESS[index]
        off = (back * 71 + index * 29) % 90 * 20 * EAGERNESS[index] + 300
        days[(TODAY - timedelta(days=back)).isoformat()] = Counters(
            messages=(back * 13 + index * 7) % 23 * EAGERNESS[index] // 2,
            voice_s=on + off, cam_on_s=on, cam_off_s=off,
            stream_s=(back * 17 + index * 11) % 30 * 60 if index % 2 else 0)
    return days


def totals(days: dict[str, Counters], since: str) -> Counters:
    kept = [c for day, c in days.items() if day >= since]
    return Counters(*(sum(getattr(c, name) for c in kept) for name in
                      ("messages", "voice_s", "cam_on_s", "cam_off_s", "stream_s")))


def board(values: dict[int, int]) -> list[tuple[int, int]]:
    """(member id, value) with value > 0, highest first, ties by member id (as the boards order)."""
    return sorted(((m, v) for m, v in values.items() if v > 0), key=lambda mv: (-mv[1], mv[0]))


def rank_of(ranked: list[tuple[int, int]], member_id: int) -> int | None:
    return next((i + 1 for i, (m, _) in enumerate(ranked) if m == member_id), None)


def demo_card() -> MemberCard:
    since = (TODAY - timedelta(days=6)).isoformat()
    every = {m.member_id: demo_days(i) for i, m in enumerate(MEMBERS)}
    period = {m: totals(days, since) for m, days in every.items()}
    messages = board({m: c.messages for m, c in period.items()})
    voice = board({m: c.voice_s for m, c in period.items()})
    own = every[CARD_MEMBER.member_id]
    stored = {day: c for day, c in own.items() if day >= first_bar_day(PERIOD, TODAY)}
    bars, caption = period_bars(PERIOD, TODAY, stored)
    return MemberCard(CARD_MEMBER.name, CARD_MEMBER.member_id, f"{GUILD} · {PERIOD_LABELS[PERIOD]}",
                      period[CARD_MEMBER.member_id], rank_of(messages, CARD_MEMBER.member_id),
                      rank_of(voice, CARD_MEMBER.member_id), (len(messages), len(voice)), bars, caption)


def demo_server_chart() -> ServerChart:
    """The `/server stats` chart of the last 30 days: the demo members' days summed per day, and
    a few joins and leaves a day."""
    every = [demo_days(i) for i in range(len(MEMBERS))]
    days = []
    for back in range(29, -1, -1):
        day = (TODAY - timedelta(days=back)).isoformat()
        kept = [member[day] for member in every if day in member]
        days.append(ServerDay(TODAY - timedelta(days=back), Figures(
            joins=(back * 7 + 3) % 5, leaves=(back * 5 + 1) % 3 // 2,
            messages=sum(c.messages for c in kept), voice_s=sum(c.voice_s for c in kept))))
    return ServerChart(GUILD, ServerStats(722057822208000001, "30d", "Europe/Berlin", tuple(days), MEMORY))


def demo_top_embed() -> dict[str, Any]:
    """The `/top board:voice period:7d` embed CARD_MEMBER sees, as Discord receives it."""
    since = (TODAY - timedelta(days=6)).isoformat()
    voice = board({m.member_id: totals(demo_days(i), since).voice_s for i, m in enumerate(MEMBERS)})
    by_id = {m.member_id: m for m in MEMBERS}
    rows = [(style.member(m, by_id[m].name, present=by_id[m].present), v) for m, v in voice]
    own = dict(voice).get(CARD_MEMBER.member_id, 0)
    embed = build_top_embed("voice", PERIOD, rows, 1, 0, 1, (rank_of(voice, CARD_MEMBER.member_id), own))
    return embed.to_dict()  # type: ignore[return-value]


# ---- an embed as Discord's dark theme shows it ---------------------------------------------------
CHAT, EMBED, CODE, MENTION = "#313338", PANEL, BACKGROUND, "#3c4270"
MENTION_TEXT = "#c9cdfb"
TOKEN = re.compile(r"(`[^`]*`|<@!?\d+>|\*\*[^*]+\*\*)")
BODY_PX, TITLE_PX, SMALL_PX = 15 * SCALE, 16 * SCALE, 13 * SCALE
LINE = 22 * SCALE


def _inline(draw: ImageDraw.ImageDraw, x: float, baseline: float, line: str,
            names: dict[int, str]) -> None:
    """One line of embed markdown: code spans, `<@id>` mentions as `@name`, **bold**."""
    for token in filter(None, TOKEN.split(line)):
        if token.startswith("`"):
            text = token.strip("`")
            width = fonts.width(text, BODY_PX)
            draw.rounded_rectangle((x, baseline - 15 * SCALE, x + width + 6 * SCALE, baseline + 5 * SCALE),
                                   3 * SCALE, fill=CODE)
            x = fonts.draw(draw, x + 3 * SCALE, baseline, text, BODY_PX, TEXT) + 3 * SCALE
        elif token.startswith("<@"):
            text = "@" + names.get(int(token.strip("<@!>")), "unknown-user")
            width = fonts.width(text, BODY_PX)
            draw.rounded_rectangle((x, baseline - 16 * SCALE, x + width + 4 * SCALE, baseline + 5 * SCALE),
                                   3 * SCALE, fill=MENTION)
            x = fonts.draw(draw, x + 2 * SCALE, baseline, text, BODY_PX, MENTION_TEXT) + 2 * SCALE
        elif token.startswith("**"):
            x = fonts.draw(draw, x, baseline, token.strip("*"), BODY_PX, TEXT, BOLD)
        else:
            x = fonts.draw(draw, x, baseline, token, BODY_PX, TEXT)


def embed_lines(embed: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, text) lines of the embed in the order Discord shows them."""
    lines = [("title", embed.get("title", ""))]
    lines += [("body", line) for line in embed.get("description", "").split("\n")]
    for embed_field in embed.get("fields", []):
        lines += [("gap", ""), ("field", embed_field["name"])]
        lines += [("body", line) for line in embed_field["value"].split("\n")]
    if embed.get("footer"):
        lines += [("gap", ""), ("footer", embed["footer"]["text"])]
    return lines


def render_embed(embed: dict[str, Any], names: dict[int, str], command: str) -> Image.Image:
    """The embed (a `discord.Embed.to_dict()`) under the command that asked for it."""
    lines = embed_lines(embed)
    pad = 16 * SCALE
    embed_top = pad + 28 * SCALE
    height = embed_top + pad + sum(LINE if kind != "gap" else 8 * SCALE for kind, _ in lines) + pad
    image = Image.new("RGB", (WIDTH, height), CHAT)
    draw = ImageDraw.Draw(image)
    fonts.draw(draw, pad, pad + 14 * SCALE, command, SMALL_PX, MUTED)
    draw.rounded_rectangle((pad, embed_top, WIDTH - pad, height - pad), 4 * SCALE, fill=EMBED)
    colour = f"#{embed.get('color', 0x5865F2):06x}"
    draw.rounded_rectangle((pad, embed_top, pad + 4 * SCALE, height - pad), 2 * SCALE, fill=colour)
    x, y = pad + 16 * SCALE, embed_top + 4 * SCALE
    for kind, text in lines:
        if kind == "gap":
            y += 8 * SCALE
            continue
        y += LINE
        if kind == "title":
            fonts.draw(draw, x, y, text, TITLE_PX, TEXT, BOLD)
        elif kind == "field":
            fonts.draw(draw, x, y, text, BODY_PX, TEXT, BOLD)
        elif kind == "footer":
            fonts.draw(draw, x, y, text, SMALL_PX, MUTED)
        else:
            _inline(draw, x, y, text, names)
    return image


def write(out: Path) -> list[Path]:
    """Draw the screenshots into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    card_path, top_path = out / "member-card.png", out / "top.png"
    server_path = out / "server-stats.png"
    card_path.write_bytes(render_member_card(demo_card()))
    server_path.write_bytes(render_server_chart(demo_server_chart()))
    names = {m.member_id: m.name for m in MEMBERS if m.present}
    top = render_embed(demo_top_embed(), names, f"/top board:voice period:{PERIOD_LABELS[PERIOD]}")
    top.save(top_path, format="PNG", optimize=True)
    return [card_path, top_path, server_path]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write to (default: {OUT})")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
