"""Polling helpers for the process-level gossip tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from consulpy.gossip.procs import AgentProcess
from tests.helpers import eventually as shared_eventually


async def eventually(
    cond: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> float:
    """tests/helpers.py's eventually, where a dropped or refused connection means "not yet"."""
    return await shared_eventually(
        cond, timeout, interval, what, tolerate=(OSError, ConnectionError, TimeoutError)
    )


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
