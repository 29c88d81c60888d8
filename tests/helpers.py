"""Test helpers: polling with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
    tolerate: tuple[type[BaseException], ...] = (),
) -> float:
    """Poll ``check`` (sync or async) until it holds; returns the seconds it took. Raises
    AssertionError naming ``what`` when the deadline passes; exceptions in ``tolerate`` count
    as "not yet" (the last one is named in the failure)."""
    start = time.monotonic()
    await eventually_value(check, timeout, interval, what, tolerate)
    return time.monotonic() - start


async def eventually_value(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
    tolerate: tuple[type[BaseException], ...] = (),
) -> Any:
    """As `eventually`, returning the first truthy value ``check`` gave."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last = result
        except tolerate as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
    tolerate: tuple[type[BaseException], ...] = (OSError, AssertionError),
) -> Any:
    """For synchronous tests that drive real processes: poll ``check`` in this thread until
    it returns something truthy (returned), or fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except tolerate as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")
        time.sleep(interval)
