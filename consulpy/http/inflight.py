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


# Requests by id (aiohttp's requests compare by identity and are not hashable).
Tracked = dict[int, web.Request]


class InFlight:
    """The requests being served, short and long. The app's front wrapper (http/app.py)
    calls `enter` and `leave` around every handler: two dict operations per request and no
    task lookup (a stop cancels through `req.task`, the connection's task, which is awaiting
    the handler), and no event unless a stop is waiting for the short ones."""

    def __init__(self) -> None:
        self.short: Tracked = {}
        self.long: Tracked = {}
        self._idle: asyncio.Event | None = None  # set while a stop() waits

    def enter(self, req: web.Request) -> Tracked:
        """Record a request being served; hand the result to `leave`."""
        group = self.long if is_long(req) else self.short
        group[id(req)] = req
        return group

    def leave(self, req: web.Request, group: Tracked) -> None:
        group.pop(id(req), None)
        if self._idle is not None and not self.short:
            self._idle.set()

    async def stop(self, grace: float, *, cancel: bool = True) -> None:
        """Let short requests finish (up to `grace` seconds), then close the connections of
        everything left and (with `cancel`) cancel their handlers."""
        if self.short:
            self._idle = idle = asyncio.Event()
            try:
                await asyncio.wait_for(idle.wait(), grace)
            except TimeoutError:
                pass
            finally:
                self._idle = None
        left = [*self.long.values(), *self.short.values()]
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
