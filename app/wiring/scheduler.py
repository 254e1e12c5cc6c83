"""APScheduler wiring: a scheduler made inside the running loop; interval jobs that never overlap."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


def make_scheduler() -> AsyncIOScheduler:
    """Call from inside the running event loop (setup_hook)."""
    return AsyncIOScheduler(timezone="UTC")


def add_interval_job(
    scheduler: AsyncIOScheduler, job_id: str, func: Callable[[], Awaitable[object]], seconds: float
) -> None:
    """Run `func` every `seconds`; a run never overlaps the previous one, missed runs collapse into one."""

    @functools.wraps(func)
    async def run() -> object:
        try:
            return await func()
        except asyncio.CancelledError:
            # The shutdown stops the scheduler with a run in flight; APScheduler would log the
            # cancellation as a failure with a traceback. The shutdown's own final run follows.
            log.info("%s: the run in flight was stopped by the shutdown", job_id)
            return None

    scheduler.add_job(
        run, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True,
        misfire_grace_time=max(1, int(seconds)), replace_existing=True,
    )
