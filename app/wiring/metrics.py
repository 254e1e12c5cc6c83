"""Prometheus metrics owned by one bot: its own registry, so several bots (tests) never collide.

Count an event from any code that has the bot (a cog has `self.bot`):

    from app.wiring.metrics import count_event
    count_event(bot, "message")          # tracker_events_total{kind="message"} += 1

Keep `kind` to a small fixed set of words (message, voice, join, leave, invite, ...): every
distinct value is a new time series. New metrics go into `Metrics.__init__` with
`registry=self.registry`; `/metrics` on HEALTH_PORT serves them all (see app/wiring/health.py).
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

PING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric of one bot, registered on `self.registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "tracker_events", "Events handled, by kind", ["kind"], registry=self.registry
        )
        self.db_ping_seconds = Histogram(
            "tracker_db_ping_seconds",
            "Round trip of the health check's MongoDB ping, in seconds",
            buckets=PING_BUCKETS,
            registry=self.registry,
        )
        self.db_up = Gauge(
            "tracker_db_up", "1 when MongoDB answered the last health ping in time", registry=self.registry
        )
        self.writes = Counter(
            "tracker_writes", "Units of writes submitted to MongoDB (directly or through the outbox)",
            registry=self.registry,
        )
        self.retries = Counter(
            "tracker_write_retries", "Retried attempts of MongoDB operations after a transient error",
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "tracker_outbox_depth", "Writes waiting in the local outbox for MongoDB", registry=self.registry
        )
        self.outbox_replayed = Gauge(
            "tracker_outbox_replayed", "Outbox entries replayed into MongoDB since start",
            registry=self.registry,
        )
        self.flush_seconds = Histogram(
            "tracker_voice_flush_seconds", "Duration of the voice flush job, in seconds",
            registry=self.registry,
        )
        self.gateway_connected = Gauge(
            "tracker_gateway_connected", "1 when the Discord gateway session is ready", registry=self.registry
        )

        # The whole bot's figures that `/data-status` shows a guild only for itself.
        self.voice_open_sessions = Gauge(
            "tracker_voice_open_sessions", "Voice sessions open now, all guilds", registry=self.registry
        )
        self.backfill_messages = Gauge(
            "tracker_backfill_messages", "Messages counted from channel history since start, all guilds",
            registry=self.registry,
        )

    def sample(self, bot: Any) -> None:
        """Set the gauges read from the bot's state at scrape time."""
        activity = bot.get_cog("Activity") if hasattr(bot, "get_cog") else None
        if activity is not None:
            self.voice_open_sessions.set(len(activity.voice.open_sessions()))
            self.backfill_messages.set(activity.backfill.progress.messages)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def count_event(bot: Any, kind: str, amount: int = 1) -> None:
    """Add `amount` to tracker_events_total{kind=...} of this bot; a no-op for objects without metrics."""
    metrics: Metrics | None = getattr(bot, "metrics", None)
    if metrics is not None:
        metrics.events.labels(kind=kind).inc(amount)
