"""`python main.py --demo`: the README's first command, as a real process, offline."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_prints_the_table_and_matches_the_ground_truth(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "MONGODB_"))}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "member  messages  voice" in out and "inviter  regular  left" in out
    assert "Activity of ada" in out and "Rank (messages)" in out
    assert "Every count in MongoDB matches the ground truth." in out
    assert "NO:" not in out
