"""The startup probe: prove that a write reaches MongoDB and reads back, before any cog loads."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from app.storage.retry import is_transient
from app.wiring.clock import Clock
from repositories.probe import ProbeRepository

log = logging.getLogger(__name__)


class ProbeFailed(RuntimeError):
    """MongoDB did not take the probe write in time; the message is the one line to show."""


class ProbeMismatch(RuntimeError):
    """The probe read back something other than what it wrote."""


@dataclass(frozen=True)
class ProbeResult:
    host: str
    at: datetime
    round_trip_ms: float
    attempts: int


def _probe_error_is_retryable(exc: BaseException) -> bool:
    return is_transient(exc) or isinstance(exc, ProbeMismatch)


async def run_probe(repo: ProbeRepository, host: str, clock: Clock, timeout: float) -> ProbeResult:
    """Write a token with journaled write concern, read it back, retry with backoff up to `timeout`."""
    instance = f"probe-{uuid.uuid4().hex[:12]}"
    attempts = 0
    retrying = AsyncRetrying(
        retry=retry_if_exception(_probe_error_is_retryable),
        stop=stop_after_delay(timeout),
        wait=wait_exponential_jitter(multiplier=0.2, max=3.0),
        reraise=True,
        before_sleep=lambda s: log.warning(
            "probe write to MongoDB at %s failed (attempt %d): %s", host, s.attempt_number,
            s.outcome.exception() if s.outcome else "?",
        ),
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                token = uuid.uuid4().hex
                started = time.perf_counter()
                doc = await repo.write_and_read(instance, token, clock.now())
                round_trip_ms = (time.perf_counter() - started) * 1000
                if not doc or doc.get("token") != token:
                    raise ProbeMismatch("probe document did not read back as written")
    except Exception as exc:
        reason = str(exc).split("\n", 1)[0].split(", Timeout:", 1)[0].split(" (configured timeouts", 1)[0]
        raise ProbeFailed(f"MongoDB at {host} unreachable: {reason}") from None
    result = ProbeResult(host=host, at=clock.now(), round_trip_ms=round_trip_ms, attempts=attempts)
    log.info("persistence is live: probe write to MongoDB at %s read back in %.1f ms (attempt %d)",
             host, result.round_trip_ms, attempts)
    return result
