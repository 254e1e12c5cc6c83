"""/healthz and /metrics on HEALTH_PORT, served by the real bot against the emulator."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from app.storage.database import free_port, make_client
from app.wiring.bot import TrackerBot
from app.wiring.health import CheckResult, HealthServer, any_of
from app.wiring.metrics import count_event
from app.wiring.settings import load_settings
from scripts.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[3]
HEALTHCHECK = ROOT / "scripts" / "docker" / "healthcheck.py"


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def docker_healthcheck(port: int) -> int:
    """Run the image's HEALTHCHECK command as a process (without blocking this loop's server)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HEALTHCHECK),
        env={**os.environ, "HEALTH_PORT": str(port), "HEALTH_HOST": "0.0.0.0"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), 30)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_health_is_off_without_health_port(tracker: Any) -> None:
    assert tracker.bot.settings.health_port is None
    assert tracker.bot.health is None


async def test_healthz_ok_and_metrics_parse(make_tracker: Any) -> None:
    port = free_port()
    harness = await make_tracker(health_port=port)
    status, content_type, body = await get(port, "/healthz")
    assert (status, content_type.split(";")[0]) == (200, "application/json")
    assert '"status": "ok"' in body and '"role": "active"' in body
    assert await docker_healthcheck(port) == 0

    count_event(harness.bot, "message")
    count_event(harness.bot, "message", 2)
    count_event(harness.bot, "voice")
    status, content_type, text = await get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    values = samples(text)
    assert values[("tracker_events_total", (("kind", "message"),))] == 3
    assert values[("tracker_events_total", (("kind", "voice"),))] == 1
    assert values[("tracker_db_ping_seconds_count", ())] == 2  # /healthz and the healthcheck above
    assert values[("tracker_db_up", ())] == 1
    assert values[("tracker_gateway_connected", ())] == 1
    # the whole bot's figures, which /data-status shows a guild only for itself
    assert values[("tracker_voice_open_sessions", ())] == 0
    assert ("tracker_backfill_messages", ()) in values

    await harness.stop()
    assert await docker_healthcheck(port) == 1, "the server stops with the bot"


async def test_healthz_flips_to_503_when_mongodb_is_away_and_back(
    fault_proxy: FaultProxy, make_tracker: Any
) -> None:
    port = free_port()
    harness = await make_tracker(start=False, health_port=port)
    client = make_client(fault_proxy.uri)
    harness.db = client[harness.db.name]
    try:
        await harness.start()
        assert (await get(port, "/healthz"))[0] == 200

        fault_proxy.plan.refuse = True
        fault_proxy.cut_all()
        status, _, body = await get(port, "/healthz")
        assert status == 503
        assert '"status": "unhealthy"' in body and "database: MongoDB" in body
        assert await docker_healthcheck(port) == 1
        assert samples((await get(port, "/metrics"))[2])[("tracker_db_up", ())] == 0

        fault_proxy.heal()
        for _ in range(60):  # the driver rediscovers the server on its own schedule
            status, _, body = await get(port, "/healthz")
            if status == 200:
                break
            await asyncio.sleep(0.25)
        assert status == 200, body
        assert await docker_healthcheck(port) == 0
        await harness.stop()
    finally:
        await client.close()


async def test_gateway_not_connected_is_unhealthy_with_a_reason(db: Any, tmp_path: Path) -> None:
    settings = load_settings(discord_token="x", mongodb_db=db.name, data_dir=tmp_path)
    bot = TrackerBot(settings, db, "test-db")  # never logged in: no gateway session
    server = HealthServer(bot, "127.0.0.1", free_port())
    status, body = await server.evaluate()
    assert status == 503
    assert body["reason"] == "gateway: the Discord gateway session is not ready yet"


async def test_a_widened_check_passes_when_one_alternative_passes() -> None:
    async def down() -> CheckResult:
        return CheckResult(False, "MongoDB ping failed")

    async def draining() -> CheckResult:
        return CheckResult(True)

    async def stuck() -> CheckResult:
        return CheckResult(False, "outbox not draining")

    assert (await any_of(down, draining)()).ok
    failed = await any_of(down, stuck)()
    assert not failed.ok and failed.reason == "MongoDB ping failed and outbox not draining"
