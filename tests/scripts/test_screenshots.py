"""The README's screenshots: drawn by the bot's own code, and the committed PNGs are that drawing."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from app.tracking import server_chart
from app.tracking.card import HEIGHT, WIDTH
from cogs.stats import build_top_embed
from scripts import screenshots

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "screenshots"
AGAIN = "run `python -m scripts.screenshots` and commit docs/screenshots"


def test_the_script_draws_the_card_the_server_chart_and_the_top_reply(tmp_path: Path) -> None:
    assert screenshots.main(["--out", str(tmp_path)]) == 0
    card, top = tmp_path / "member-card.png", tmp_path / "top.png"
    assert Image.open(card).size == (WIDTH, HEIGHT) and card.stat().st_size < 200_000
    assert Image.open(top).width == WIDTH
    chart = tmp_path / "server-stats.png"
    assert Image.open(chart).size == (WIDTH, server_chart.HEIGHT) and chart.stat().st_size < 200_000
    stats = screenshots.demo_server_chart().stats
    assert len(stats.days) == 30 and stats.totals.messages > 0 and stats.totals.joins > stats.totals.leaves


def test_the_top_picture_shows_the_embed_the_command_builds() -> None:
    embed = screenshots.demo_top_embed()
    lines = screenshots.embed_lines(embed)
    assert lines[0] == ("title", "Top voice time - last 7 days")
    body = [text for kind, text in lines if kind == "body"]
    assert body[:len(embed["description"].split("\n"))] == embed["description"].split("\n")
    assert body[0].startswith("`#1` <@") and re.search(r"- \d+h \d\dm$", body[0])
    assert "(lina, left)" in embed["description"]  # a former member, as the reply style writes one
    assert ("footer", "Page 1/1") in lines
    # the same call the /top command makes
    assert embed["title"] == build_top_embed("voice", "7d", [], 1, 0, 1, (None, 0)).title


def test_the_committed_screenshots_are_the_current_drawing(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in screenshots.write(tmp_path):
        committed = COMMITTED / path.name
        assert f"docs/screenshots/{path.name}" in readme
        assert committed.exists(), AGAIN
        with Image.open(committed) as old, Image.open(path) as new:
            assert old.size == new.size and old.tobytes() == new.tobytes(), AGAIN
