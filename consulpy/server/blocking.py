"""Waiting on watches from asyncio (the store's watch registry is callback based)."""

from __future__ import annotations

import asyncio

from consulpy.state.watch import WatchRegistry, WatchSet


async def wait_for_change(registry: WatchRegistry, ws: WatchSet, limit: float) -> bool:
    """Wait until one of the topics in `ws` is notified (True) or `limit` seconds pass (False).

    Must be called right after the read that filled `ws`, with no await in between, so no
    write can slip between the read and the registration.
    """
    if limit <= 0:
        return False
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def settle(changed: bool) -> None:
        if not future.done():
            future.set_result(changed)

    def fire() -> None:
        settle(True)

    topics = list(ws.topics)
    registry.register(topics, fire)
    handle = loop.call_later(limit, settle, False)
    try:
        return await future
    finally:
        handle.cancel()
        registry.unregister(topics, fire)
