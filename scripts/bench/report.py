"""The results table (Markdown) and bench-results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.bench.measure import Check, Row


def verdict(row: Row) -> str:
    if row.met is None:
        return "reported" if row.target == "reported" else str(row.values.get("verdict", "-"))
    return "met" if row.met else "MISSED"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[Row], checks: list[Check]) -> str:
    lines = [
        "| case | measure | bot path | raw baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        cells = [row.case, row.measure, row.bot, row.baseline, ratio, row.target, verdict(row)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    passed = sum(c.ok for c in checks)
    status = "met" if passed == len(checks) else "MISSED"
    lines.append(f"| exactness | checks after the cases | {passed} of {len(checks)} passed "
                 f"| - | - | all | {status} |")
    return "\n".join(lines)


def failed_checks(checks: list[Check]) -> str:
    return "\n".join(f"- FAILED {c.name}: {c.detail}" for c in checks if not c.ok)


def write(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
