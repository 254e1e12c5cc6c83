import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.storage.database import EmbeddedServer, EmbeddedServerError, host_of, make_client

ROOT = Path(__file__).resolve().parents[3]


def test_host_of_strips_credentials_and_options():
    assert host_of("mongodb://u:p@db1:27017,db2:27017/x?replicaSet=rs0") == "db1:27017,db2:27017"
    assert host_of("mongodb://127.0.0.1:5/") == "127.0.0.1:5"


async def test_embedded_server_serves_and_stops(tmp_path):
    server = EmbeddedServer(tmp_path / "data")
    uri = server.start()
    pid = server.process.pid
    client = make_client(uri)
    try:
        await client.tracker.things.insert_one({"_id": 1})
        assert await client.tracker.things.count_documents({}) == 1
    finally:
        await client.close()
        server.stop()
    assert (tmp_path / "data" / "db").is_dir()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_second_server_on_the_same_files_is_refused(tmp_path):
    first = EmbeddedServer(tmp_path / "data")
    first.start()
    try:
        with pytest.raises(EmbeddedServerError, match="is in use by pid"):
            EmbeddedServer(tmp_path / "data").start()
    finally:
        first.stop()
    second = EmbeddedServer(tmp_path / "data")
    second.start()
    second.stop()


def test_embedded_server_does_not_outlive_a_killed_parent(tmp_path):
    script = (
        "import sys, time; from pathlib import Path; from app.storage.database import EmbeddedServer;"
        f"s = EmbeddedServer(Path({str(tmp_path / 'data')!r})); s.start();"
        "print(s.process.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        os.kill(child_pid, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child_pid, 0)
            except ProcessLookupError:
                break
            _reap(child_pid)
            time.sleep(0.1)
        else:
            os.kill(child_pid, signal.SIGKILL)
            pytest.fail("the embedded server outlived its SIGKILLed parent")
    finally:
        if parent.poll() is None:
            parent.kill()
    # The lock died with the parent: a new bot can take the files over.
    again = EmbeddedServer(tmp_path / "data")
    again.start()
    again.stop()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


async def test_killing_the_server_mid_write_loses_no_acknowledged_write(nx_factory, tmp_path):
    """SIGKILL the database while writes flow; after a restart every acknowledged write is there."""
    server = nx_factory(tmp_path / "killme")
    client = make_client(server.uri)
    acknowledged: list[int] = []
    enough = asyncio.Event()
    collection = client.tracker.events

    async def writer():
        i = 0
        while True:
            try:
                await collection.update_one({"_id": i}, {"$inc": {"n": 1}}, upsert=True)
                acknowledged.append(i)
                if len(acknowledged) >= 300:
                    enough.set()
            except Exception:
                return
            i += 1

    task = asyncio.create_task(writer())
    await asyncio.wait_for(enough.wait(), 60)
    server.kill()
    await asyncio.wait_for(task, 30)
    await client.close()
    restarted = nx_factory(tmp_path / "killme", port=server.port)
    client = make_client(restarted.uri)
    try:
        stored = {d["_id"]: d["n"] async for d in client.tracker.events.find()}
    finally:
        await client.close()
    missing = [i for i in acknowledged if stored.get(i) != 1]
    assert not missing, f"{len(missing)} acknowledged writes lost"
    assert len(acknowledged) >= 300
