"""The requests an HTTP listener is serving, so stopping it is quick with thousands open.

aiohttp's own graceful stop walks the connections one by one (two timers each, then the
unwinding of each handler): with 15,000 parked blocking queries that takes seconds. Here a
stop gives the short requests in flight a grace period to finish, then closes the
connections of everything left at once (blocking queries, monitor and other streams); their
clients see the connection close without a response, as when a Consul agent exits. The
parked handlers are cancelled too, unless the process is about to exit anyway.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

# Requests that may legitimately run for minutes.
STREAMING_PATHS = ("/v1/agent/monitor", "/v1/agent/metrics/stream", "/v1/event/watch")


def is_long(req: web.Request) -> bool:
    return (bool(req.query_string) and "index" in req.query) or req.path in STREAMING_PATHS


class InFlight:
    """The requests being served, by id (aiohttp's requests compare by identity and are not
    hashable). The app's front wrapper (http/app.py) adds and removes every request itself,
    a dict store and a delete, and calls `arrived`/`left` only while a stop waits
    (`waiting`): which requests are long is decided when stopping, not per request, and a
    stop cancels through `req.task` (the connection's task, which is awaiting the handler),
    so there is no task lookup either."""

    def __init__(self) -> None:
        self.requests: dict[int, web.Request] = {}
        self.waiting = False  # a stop waits for the short requests in `_short`
        self._short: set[int] = set()
        self._idle: asyncio.Event | None = None

    def arrived(self, key: int, req: web.Request) -> None:
        """A request came in (on an open connection) while a stop waits."""
        if not is_long(req):
            self._short.add(key)

    def left(self, key: int) -> None:
        """A request finished while a stop waits: wake it once no short one is left."""
        self._short.discard(key)
        if not self._short and self._idle is not None:
            self._idle.set()

    async def stop(self, grace: float, *, cancel: bool = True) -> None:
        """Let short requests finish (up to `grace` seconds), then close the connections of
        everything left and (with `cancel`) cancel their handlers."""
        self._short = {key for key, req in self.requests.items() if not is_long(req)}
        if self._short:
            self._idle = idle = asyncio.Event()
            self.waiting = True
            try:
                await asyncio.wait_for(idle.wait(), grace)
            except TimeoutError:
                pass
            finally:
                self.waiting = False
                self._idle = None
                self._short = set()
        left = list(self.requests.values())
        for req in left:
            transport = req.transport
            if transport is not None:
                transport.close()
        if cancel:
            # The connection's task awaits the handler's: cancelling it cancels the handler.
            tasks = [t for t in (req.task for req in left) if t is not None and not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=grace)
