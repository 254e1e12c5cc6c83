"""Per-route rate limits as Discord announces them: every answer carries the bucket's headers, and a
request over the limit gets 429 with `retry_after` (seconds) and Discord's edge `Via` header.

A bucket is a fixed window per route and major parameter (here: per channel), as Discord's
`X-RateLimit-*` headers describe it; discord.py reads them and waits before it would exceed one,
so a well-behaved client sees few 429s. `limits` maps a route name to (requests, window seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

HISTORY_ROUTE = "GET /channels/{channel_id}/messages"
# Giving and taking a member's role (PUT and DELETE share the bucket, per guild). Off unless set:
# `emu.route_limits.limits[MEMBER_ROLE_ROUTE] = (requests, seconds)`.
MEMBER_ROLE_ROUTE = "PUT/DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}"
DEFAULT_LIMITS = {HISTORY_ROUTE: (5, 1.0)}


@dataclass
class _Window:
    started: float
    used: int = 0


@dataclass
class RouteLimits:
    limits: dict[str, tuple[int, float]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    clock: Callable[[], float] = time.monotonic
    hits: int = 0  # requests answered 429
    filled: int = 0  # windows used up to their limit (a client that waits for the reset sees no 429)
    _windows: dict[tuple[str, int], _Window] = field(default_factory=dict)

    def take(self, route: str, major: int) -> tuple[bool, dict[str, str]]:
        """(allowed, headers) for one request on `route` for `major` (e.g. the channel id)."""
        if route not in self.limits:
            return True, {}
        limit, per = self.limits[route]
        now = self.clock()
        window = self._windows.get((route, major))
        if window is None or now >= window.started + per:
            window = self._windows[(route, major)] = _Window(now)
        reset_after = max(0.001, window.started + per - now)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Bucket": f"{abs(hash(route)):x}",
        }
        if window.used >= limit:
            self.hits += 1
            headers.update({"X-RateLimit-Remaining": "0", "Retry-After": f"{reset_after:.3f}",
                            "X-RateLimit-Scope": "user", "X-RateLimit-Global": "false", "Via": "1.1 google"})
            return False, headers
        window.used += 1
        if window.used == limit:
            self.filled += 1
        headers["X-RateLimit-Remaining"] = str(limit - window.used)
        return True, headers
