"""APScheduler wiring: a scheduler made inside the running loop; interval jobs that never overlap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler


def make_scheduler() -> AsyncIOScheduler:
    """Call from inside the running event loop (setup_hook)."""
    return AsyncIOScheduler(timezone="UTC")


def add_interval_job(
    scheduler: AsyncIOScheduler, job_id: str, func: Callable[[], Awaitable[object]], seconds: float
) -> None:
    """Run `func` every `seconds`; a run never overlaps the previous one, missed runs collapse into one."""
    scheduler.add_job(
        func, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True,
        misfire_grace_time=max(1, int(seconds)), replace_existing=True,
    )
