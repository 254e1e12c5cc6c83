"""HTTP on HEALTH_PORT (off when unset): `/healthz` for the Docker healthcheck, `/metrics` for Prometheus.

`/healthz` answers 200 `{"status": "ok"}` when every check in `HealthServer.checks` passes, else
503 `{"status": "unhealthy", "reason": "<check>: <why>; ..."}`. The checks are a dict so other
parts can add or widen one, e.g. the outbox turning "MongoDB answers" into "MongoDB answers or the
outbox is draining":

    health.checks["database"] = any_of(health.checks["database"], outbox.draining_check)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from pymongo.errors import PyMongoError


class Watched(Protocol):
    """What the health server reads of the bot (app.wiring.bot.TrackerBot)."""

    db: Any
    metrics: Any
    lease: Any
    settings: Any

    def is_closed(self) -> bool: ...

    def is_ready(self) -> bool: ...

log = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str = ""


HealthCheck = Callable[[], Awaitable[CheckResult]]


def any_of(*checks: HealthCheck) -> HealthCheck:
    """A check that passes when at least one of `checks` passes; its reason lists every failure."""

    async def combined() -> CheckResult:
        reasons = []
        for check in checks:
            result = await check()
            if result.ok:
                return result
            reasons.append(result.reason)
        return CheckResult(False, " and ".join(reasons))

    return combined


class HealthServer:
    """The aiohttp server; `checks` decides `/healthz`, `bot.metrics` fills `/metrics`."""

    def __init__(
        self, bot: Watched, host: str, port: int, ping_timeout: float = PING_TIMEOUT_SECONDS
    ) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self.ping_timeout = ping_timeout
        self.checks: dict[str, HealthCheck] = {
            "gateway": self.gateway_check,
            "database": self.database_check,
        }
        self._runner: web.AppRunner | None = None

    async def gateway_check(self) -> CheckResult:
        bot = self.bot
        ws: Any = getattr(bot, "ws", None)
        if bot.is_closed():
            result = CheckResult(False, "the Discord gateway connection is closed")
        elif not bot.is_ready():
            result = CheckResult(False, "the Discord gateway session is not ready yet")
        elif ws is None or not ws.open:
            result = CheckResult(False, "the Discord gateway websocket is not open")
        else:
            result = CheckResult(True)
        bot.metrics.gateway_connected.set(1 if result.ok else 0)
        return result

    async def database_check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.bot.db.command("ping"), self.ping_timeout)
        except TimeoutError:
            result = CheckResult(False, f"MongoDB did not answer a ping within {self.ping_timeout:g}s")
        except PyMongoError as exc:
            result = CheckResult(False, f"MongoDB ping failed ({type(exc).__name__})")
        else:
            self.bot.metrics.db_ping_seconds.observe(time.perf_counter() - started)
            result = CheckResult(True)
        self.bot.metrics.db_up.set(1 if result.ok else 0)
        return result

    async def evaluate(self) -> tuple[int, dict[str, str]]:
        """(HTTP status, JSON body) of `/healthz`."""
        failures = []
        for name, check in list(self.checks.items()):
            result = await check()
            if not result.ok:
                failures.append(f"{name}: {result.reason}")
        role = self.bot.lease.role  # "standby": healthy, waiting for the lease; counts nothing
        if failures:
            return 503, {"status": "unhealthy", "reason": "; ".join(failures), "role": role}
        return 200, {"status": "ok", "reason": "", "role": role}

    async def _healthz(self, _request: web.Request) -> web.Response:
        status, body = await self.evaluate()
        if status != 200:
            log.warning("health check failing: %s", body["reason"])
        return web.json_response(body, status=status)

    async def _metrics(self, _request: web.Request) -> web.Response:
        self.bot.metrics.sample(self.bot)
        body, content_type = self.bot.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("health server stopped")


async def start_health_server(bot: Watched) -> HealthServer | None:
    """Start the server when HEALTH_PORT is set; a port that cannot be bound is logged, not fatal."""
    port = bot.settings.health_port
    if port is None:
        return None
    server = HealthServer(bot, bot.settings.health_host, port)
    try:
        await server.start()
    except OSError as exc:
        log.error("health server could not listen on %s:%d: %s", bot.settings.health_host, port, exc)
        return None
    return server
