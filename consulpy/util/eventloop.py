"""Which event loop a consulpy process runs on: uvloop or asyncio's own.

uvloop (libuv, written in C) does the per-request loop and transport work that asyncio does in
Python; with aiohttp that is a sizeable part of a small request's CPU, so it is the default
when installed. The choice comes from the `event_loop` config key / `-event-loop` flag, else
`$CONSULPY_EVENT_LOOP`, else "auto": uvloop when importable. A setting that names uvloop on a
machine without it is an error, not a silent fallback.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

ENV = "CONSULPY_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class EventLoopError(ValueError):
    """The requested loop is unknown or not installed."""


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def check(setting: str) -> str:
    """The setting in lower case if it names a loop this machine has (the config key's and
    $CONSULPY_EVENT_LOOP's validation)."""
    choice = setting.strip().lower() or "auto"
    if choice not in CHOICES:
        raise EventLoopError(f"must be one of {', '.join(CHOICES)}, got {setting!r}")
    if choice == "uvloop" and not uvloop_available():
        raise EventLoopError("uvloop is not installed (pip install uvloop), or use asyncio")
    return choice


def resolve(setting: str = "auto") -> str:
    """ "uvloop" or "asyncio" for a setting ("auto" defers to $CONSULPY_EVENT_LOOP, then to
    whether uvloop is installed)."""
    choice = check(setting or "auto")
    if choice == "auto":
        try:
            choice = check(os.environ.get(ENV, ""))
        except EventLoopError as exc:
            raise EventLoopError(f"${ENV}: {exc}") from None
    if choice == "auto":
        return "uvloop" if uvloop_available() else "asyncio"
    return choice


def loop_factory(setting: str = "auto") -> LoopFactory:
    """A callable that makes a new loop of the resolved kind."""
    if resolve(setting) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], setting: str = "auto") -> T:
    """`asyncio.run` on the chosen loop (3.11's `asyncio.run` takes no loop factory)."""
    try:
        factory = loop_factory(setting)
    except EventLoopError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio", for the banner and diagnostics."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
