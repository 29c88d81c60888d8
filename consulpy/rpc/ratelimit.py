"""A token bucket for the RPC requests a server accepts (`limits.rpc_rate` requests per second,
`limits.rpc_max_burst` at once). A refused request is answered with the error kind
`rate_limited`, which callers turn into HTTP 429 "rate limit exceeded" as Consul does."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

RATE_LIMITED = "rate_limited"
RATE_LIMITED_TEXT = "rate limit exceeded"


class TokenBucket:
    """`rate` tokens per second up to `burst`; rate inf (or < 0) never refuses. The clock is
    injectable so tests need no waiting."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.update(rate, burst)

    def update(self, rate: float, burst: int) -> None:
        """Change the limits (on reload; unchanged limits keep the bucket as it is)."""
        new_rate = math.inf if rate < 0 else rate
        if getattr(self, "rate", None) == new_rate and getattr(self, "burst", None) == burst:
            return
        self.rate = math.inf if rate < 0 else rate
        self.burst = max(int(burst), 0)
        self.tokens = float(self.burst)
        self.stamp = self.clock()

    def allow(self) -> bool:
        if math.isinf(self.rate):
            return True
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
