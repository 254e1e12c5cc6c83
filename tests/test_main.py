"""`python main.py` as a real process: the no-token check, and SIGTERM flushing before exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from app.storage.database import make_client
from app.wiring.discord_endpoints import bot_permissions
from scripts.emulator import Emulator
from tests.botharness import GUILD

ROOT = Path(__file__).resolve().parents[1]


def test_without_a_token_main_proves_the_embedded_database_and_says_what_to_set(tmp_path):
    env = {**os.environ, "DISCORD_TOKEN": "", "MONGODB_URI": "", "DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "is live: probe write read back in" in proc.stdout
    assert f"Data lives in: {(tmp_path / 'data' / 'db').resolve()}" in proc.stdout
    assert "set DISCORD_TOKEN" in proc.stdout
    assert "then run: .venv/bin/python main.py" in proc.stdout  # the venv's python, not python3
    assert f"&permissions={bot_permissions().value}" in proc.stdout
    assert "using the embedded database" in proc.stderr
    assert (tmp_path / "data" / "db").is_dir()


async def test_sigterm_runs_the_shutdown_flush_before_the_process_exits(mongo_uri, tmp_path):
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    async with Emulator(token="test-token") as emu:
        emu.add_guild(GUILD)
        env = {**os.environ, "DISCORD_TOKEN": "test-token", "DISCORD_API_BASE": emu.api_base,
               "DISCORD_GATEWAY_URL": emu.gateway_url, "MONGODB_URI": mongo_uri, "MONGODB_DB": db_name,
               "DATA_DIR": str(tmp_path / "data")}
        log_path = tmp_path / "bot.log"
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "main.py"), cwd=ROOT, env=env,
                stdout=log_file, stderr=subprocess.STDOUT,
            )
            try:
                await emu.wait_ready(timeout=60)
                await emu.wait_commands_synced(timeout=60)
                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), 60)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    output = log_path.read_text()
    assert code == 0, output
    assert "received SIGTERM, flushing and closing" in output
    assert "shutdown: lifecycle done" in output
    client = make_client(mongo_uri)
    try:
        lifecycle = await client[db_name].lifecycle.find_one({"_id": "bot"})
        await client.drop_database(db_name)
    finally:
        await client.close()
    assert bool(lifecycle["running"]) is False
    assert lifecycle["clean_shutdown_at_ms"] >= lifecycle["started_at_ms"]
