"""Ports for test, benchmark and dev-cluster processes: ask the OS, retry when one was taken.

A number found by binding port 0 and closing the socket is only a guess: any other process on
the machine may bind it before our child does. So a child that can bind port 0 itself and
report what it got should do that (``consulpy agent -http-port=0`` does). Programs that must be
told their ports up front (cluster members that name each other, serf, Envoy listeners) get
them from `free_ports`, and their start-up runs under `retry_on_addr_in_use`, which picks new
ports and starts again when a port turned out to be taken (EADDRINUSE) instead of failing.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

LOCALHOST = "127.0.0.1"
# Start-ups tried before an EADDRINUSE failure is reported: a collision is rare, five in a
# row means something holds ports on purpose.
ATTEMPTS = 5

# How an EADDRINUSE looks once it went through a child's output or an exception's text.
_IN_USE_TEXTS = ("address already in use", "eaddrinuse", f"[errno {errno.EADDRINUSE}]")


def free_ports(count: int, host: str = LOCALHOST, *, udp: bool = False) -> list[int]:
    """``count`` distinct ports the OS just handed out on ``host``.

    All are held open together while choosing, so none is handed out twice. With ``udp`` each
    is free for both TCP and UDP (gossip listens on both with one number).
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if udp:
                datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(datagram)
                try:
                    datagram.bind((host, port))
                except OSError:
                    continue  # the TCP socket stays held, so this number is not offered again
            ports.append(port)
        return ports
    finally:
        for sock in held:
            sock.close()


def free_port(host: str = LOCALHOST, *, udp: bool = False) -> int:
    """One port from `free_ports`."""
    return free_ports(1, host, udp=udp)[0]


@contextlib.contextmanager
def refusing_port(host: str = LOCALHOST) -> Iterator[int]:
    """A TCP port that refuses connections while the block runs: bound but never listening,
    so no other process can take it in the meantime (unlike a port bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


def addr_in_use(error: BaseException | str) -> bool:
    """Whether a start-up failed because a port was taken: an OSError with EADDRINUSE, or an
    exception or child output whose text reports one."""
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return True
    text = str(error).lower()
    return any(marker in text for marker in _IN_USE_TEXTS)


def retry_on_addr_in_use(
    start: Callable[[], T], repick: Callable[[], object], *, attempts: int = ATTEMPTS
) -> T:
    """Run ``start``; when it fails on EADDRINUSE, call ``repick`` (choose new ports, clean up
    what the failed attempt left) and run it again, up to ``attempts`` times in all. Any other
    failure, and the last EADDRINUSE, propagate unchanged."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except Exception as exc:
            if attempt >= attempts or not addr_in_use(exc):
                raise
            repick()
    raise AssertionError("unreachable")


async def aretry_on_addr_in_use(
    start: Callable[[], Awaitable[T]],
    repick: Callable[[], object],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """`retry_on_addr_in_use` for an async start-up; ``repick`` may be sync or async."""
    for attempt in range(1, attempts + 1):
        try:
            return await start()
        except Exception as exc:
            if attempt >= attempts or not addr_in_use(exc):
                raise
            result = repick()
            if isinstance(result, Awaitable):
                await result
    raise AssertionError("unreachable")
