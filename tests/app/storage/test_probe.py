import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.storage.database import free_port, make_client
from app.storage.probe import ProbeFailed, run_probe
from repositories.probe import ProbeRepository

ROOT = Path(__file__).resolve().parents[3]


async def test_probe_writes_reads_back_and_times_it(db, clock, caplog):
    caplog.set_level("INFO")
    result = await run_probe(ProbeRepository(db), "testhost", clock, timeout=5)
    assert result.host == "testhost"
    assert result.round_trip_ms > 0
    assert result.attempts == 1
    assert await db["_probe"].count_documents({}) == 1
    assert any("persistence is live" in r.getMessage() for r in caplog.records)


async def test_probe_against_a_dead_server_gives_up_with_one_clear_line(clock):
    port = free_port()
    client = make_client(f"mongodb://127.0.0.1:{port}/")
    try:
        with pytest.raises(ProbeFailed) as info:
            await run_probe(ProbeRepository(client.tracker), f"127.0.0.1:{port}", clock, timeout=1.5)
    finally:
        await client.close()
    message = str(info.value)
    assert message.startswith(f"MongoDB at 127.0.0.1:{port} unreachable: ")
    assert "\n" not in message


def test_bot_process_exits_non_zero_with_the_clear_line_when_mongodb_is_down(tmp_path):
    port = free_port()
    env = {**os.environ, "MONGODB_URI": f"mongodb://127.0.0.1:{port}/", "PROBE_TIMEOUT_SECONDS": "2",
           "DISCORD_TOKEN": "", "DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert f"fatal: MongoDB at 127.0.0.1:{port} unreachable:" in proc.stderr
    assert "Traceback" not in proc.stderr
    fatal_lines = [line for line in proc.stderr.splitlines() if "fatal:" in line]
    assert len(fatal_lines) == 1
