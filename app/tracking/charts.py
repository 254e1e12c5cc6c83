"""The 30-day activity chart: a PNG of messages and voice hours per day (camera on/off stacked).

Pure and blocking (matplotlib, Agg backend, no pyplot global state): call it through
`asyncio.to_thread` so the event loop keeps running while it renders.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@dataclass(frozen=True)
class DayPoint:
    day: str  # YYYY-MM-DD
    messages: int
    cam_on_s: int
    cam_off_s: int


def render_activity_chart(points: Sequence[DayPoint], title: str) -> bytes:
    """PNG bytes: messages per day on top, voice hours per day (camera on over camera off) below."""
    figure = Figure(figsize=(9, 5), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    x = list(range(len(points)))
    labels = [p.day[5:] for p in points]
    top.bar(x, [p.messages for p in points], color="#5865F2")
    top.set_ylabel("messages")
    top.set_title(title)
    off = [p.cam_off_s / 3600 for p in points]
    on = [p.cam_on_s / 3600 for p in points]
    bottom.bar(x, off, color="#99AAB5", label="camera off")
    bottom.bar(x, on, bottom=off, color="#57F287", label="camera on")
    bottom.set_ylabel("voice hours")
    bottom.legend(loc="upper left", fontsize="small")
    step = max(1, len(points) // 10)
    bottom.set_xticks(x[::step], labels[::step], rotation=45, fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
