"""asyncio helpers.

On Python 3.11, ``asyncio.wait_for`` can swallow a cancellation that arrives as the awaited
thing completes (fixed in 3.12, where wait_for is built on ``asyncio.timeout``). A loop that
waits for an event with wait_for may then ignore ``task.cancel()`` and keep a shutdown
waiting; ``asyncio.timeout`` keeps the cancellation, so waits in long-lived loops use it.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True if it was set."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """`writer.write`, failing the same way on every event loop when the connection is gone.

    asyncio drops a write to a closed transport (the next `drain` raises
    ConnectionResetError); uvloop raises RuntimeError from the write itself, which callers
    that expect connection errors would not catch. Both become ConnectionResetError here.
    """
    if writer.transport.is_closing():
        raise ConnectionResetError("connection closed")
    writer.write(data)
