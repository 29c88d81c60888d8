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


Tracked = dict["asyncio.Task[object]", web.Request]


class InFlight:
    """The handler tasks being served, short and long, keyed by task. The app's front
    wrapper (http/app.py) calls `enter` and `leave` around every handler: two dict
    operations per request, and no event unless a stop is waiting for the short ones."""

    def __init__(self) -> None:
        self.short: dict[asyncio.Task[object], web.Request] = {}
        self.long: dict[asyncio.Task[object], web.Request] = {}
        self._idle: asyncio.Event | None = None  # set while a stop() waits

    def enter(self, req: web.Request) -> tuple[asyncio.Task[object], Tracked]:
        """Record the request the current task serves; hand the result to `leave`."""
        task = asyncio.current_task()
        assert task is not None
        group = self.long if is_long(req) else self.short
        group[task] = req
        return task, group

    def leave(self, task: asyncio.Task[object], group: Tracked) -> None:
        group.pop(task, None)
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
        left = {**self.long, **self.short}
        for req in left.values():
            transport = req.transport
            if transport is not None:
                transport.close()
        if cancel:
            tasks = [t for t in left if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=grace)
