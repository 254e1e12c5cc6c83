"""The 30-day chart renders a real PNG."""

from __future__ import annotations

import struct

from app.tracking.charts import DayPoint, render_activity_chart


def test_chart_is_a_png_of_the_expected_size() -> None:
    points = [DayPoint(f"2026-03-{d:02d}", d, d * 600, 3600) for d in range(1, 31)]
    png = render_activity_chart(points, "bob: last 30 days")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (900, 500)
    empty = render_activity_chart([DayPoint("2026-03-10", 0, 0, 0)], "nothing yet")
    assert empty[:8] == b"\x89PNG\r\n\x1a\n"
