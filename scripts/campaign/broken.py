"""Deliberately broken builds, to show that the campaign catches what it is there to catch.

`broken_copy(name, folder)` copies the project's source to `folder` with one known defect put in
(a text replacement in one file); `python -m scripts.campaign --seed N` run from that folder then
runs the broken bot. `tests/scripts/test_campaign.py` runs CI's seeds against each break.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", ".pytest_cache",
                                 ".ruff_cache", ".hypothesis", "data", "campaign-results.json")


@dataclass(frozen=True)
class Break:
    file: str
    old: str
    new: str
    what: str


BREAKS = {
    # Every message write lands again when it is retried or replayed (a lost reply, a write
    # concern error, the outbox after a crash): the guard that refuses an applied operation is gone.
    "message_guard": Break(
        "app/storage/retry.py",
        '    if isinstance(op_id, int):\n        newer = ',
        '    if guard_field == "msg_seq":\n        return {"_id": key}\n'
        '    if isinstance(op_id, int):\n        newer = ',
        "the message counts' guard removed (guard_filter lets every msg_seq write through)",
    ),
    # An activity-role top rule ranks the lowest counts first: the roles go to the wrong members.
    "rewards_top_order": Break(
        "app/tracking/rewards.py",
        "key=lambda vm: (-vm[0], vm[1])",
        "key=lambda vm: (vm[0], vm[1])",
        "a top-N activity-role rule ranks the members by count ascending",
    ),
}


def broken_copy(name: str, folder: Path) -> Path:
    """The project's source in `folder`, with break `name` put in; raises if the code it breaks
    is not there any more (the break would silently do nothing)."""
    defect = BREAKS[name]
    shutil.copytree(ROOT, folder, ignore=SKIPPED, symlinks=True)
    target = folder / defect.file
    text = target.read_text(encoding="utf-8")
    if text.count(defect.old) != 1:
        raise ValueError(f"break {name!r}: the code it replaces is not (once) in {defect.file}")
    target.write_text(text.replace(defect.old, defect.new), encoding="utf-8")
    return folder
