"""Polling helpers for the process-level gossip tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from consulpy.gossip.procs import AgentProcess


async def eventually(
    cond: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> float:
    """Poll ``cond`` until true; return the seconds it took. Fail with ``what`` at timeout."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_exc: Exception | None = None
    while loop.time() - start < timeout:
        try:
            if await cond():
                return loop.time() - start
        except (OSError, ConnectionError, TimeoutError) as exc:
            last_exc = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


def sees(observer: AgentProcess, name: str, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await observer.members()).get(name) == status

    return check


def all_see(
    agents: list[AgentProcess], names: list[str], status: str = "alive"
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        for a in agents:
            ms = await a.members()
            if any(ms.get(n) != status for n in names):
                return False
        return True

    return check


@contextlib.asynccontextmanager
async def cluster(*agents: AgentProcess) -> AsyncIterator[list[AgentProcess]]:
    try:
        yield list(agents)
    finally:
        await asyncio.gather(*(a.stop() for a in agents), return_exceptions=True)
