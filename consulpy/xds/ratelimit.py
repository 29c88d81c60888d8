"""`xds.update_max_per_second`: how many proxy config snapshots the agent hands to its xDS
streams per second, across all of them (default 250, as Consul). A change to something every
proxy uses (a wildcard intention, proxy-defaults) would otherwise rebuild and push every
proxy's config at once and starve Raft and gossip of CPU. The updates wait their turn, in
order; none is dropped (a stream that waited sends the newest snapshot it has by then).

A token bucket holding `rate` tokens at most (one second's worth), refilled at `rate` per
second. A taker reserves the next token even when the bucket is empty (it goes negative) and
sleeps until it would have arrived, so waiters are served first come, first served. The clock
and the sleep are injectable: tests run with a fake clock and no waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

DEFAULT_RATE = 250.0


class UpdateLimiter:
    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.waiting = 0  # updates held back right now
        self.rate = 0.0
        self.update(rate)

    def update(self, rate: float) -> None:
        """Set the rate, updates per second (> 0; `inf`: no limit). On reload, a new rate
        starts from a full bucket; the same rate leaves it as it is."""
        if rate == self.rate:
            return
        self.rate = rate
        self.burst = max(1.0, rate) if math.isfinite(rate) else math.inf
        self.tokens = self.burst
        self.stamp = self.clock()

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it (0: at once)."""
        if math.isinf(self.rate):
            return 0.0
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def wait(self) -> None:
        """Wait for this update's turn."""
        delay = self.reserve()
        if delay <= 0:
            return
        self.waiting += 1
        try:
            await self.sleep(delay)
        finally:
            self.waiting -= 1
