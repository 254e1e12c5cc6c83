"""The interval jobs' wiring: a run in flight when the shutdown stops the scheduler."""

from __future__ import annotations

import asyncio
import logging

from app.wiring.scheduler import add_interval_job, make_scheduler


async def test_a_run_stopped_by_the_shutdown_leaves_no_traceback(caplog) -> None:
    """Found by the fault campaign (long run, seed 27): a SIGTERM while the voice flush waited on
    MongoDB; APScheduler cancelled the run and logged it as a failed job with a traceback."""
    started, never = asyncio.Event(), asyncio.Event()

    async def slow_flush() -> None:
        started.set()
        await never.wait()

    scheduler = make_scheduler()
    add_interval_job(scheduler, "flush", slow_flush, 0.05)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        await asyncio.wait_for(started.wait(), 5)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "stopped by the shutdown" in caplog.text
