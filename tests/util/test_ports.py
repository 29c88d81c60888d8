"""The shared port helper: distinct ports, refusing ports, and start-ups retried on EADDRINUSE."""

from __future__ import annotations

import errno
import socket

import pytest

from consulpy.util.ports import (
    addr_in_use,
    aretry_on_addr_in_use,
    free_ports,
    refusing_port,
    retry_on_addr_in_use,
)


def test_free_ports_are_distinct_and_bindable_for_tcp_and_udp() -> None:
    ports = free_ports(8, udp=True)
    assert len(set(ports)) == 8
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))


def test_a_refusing_port_refuses_and_cannot_be_taken() -> None:
    with refusing_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        with socket.socket() as other, pytest.raises(OSError) as exc:
            other.bind(("127.0.0.1", port))
        assert exc.value.errno == errno.EADDRINUSE


def test_addr_in_use_recognises_errors_and_child_output() -> None:
    assert addr_in_use(OSError(errno.EADDRINUSE, "Address already in use"))
    assert addr_in_use(
        AssertionError("agent exited:\ncannot bind gossip port on 127.0.0.1:54735: [Errno 98] x")
    )
    assert addr_in_use("listen tcp 127.0.0.1:7946: bind: address already in use")
    assert not addr_in_use(OSError(errno.ECONNREFUSED, "Connection refused"))
    assert not addr_in_use(AssertionError("agent exited:\nbad flag -foo"))


def test_retry_picks_new_ports_until_the_start_succeeds() -> None:
    with refusing_port() as taken:
        ports = [taken]

        def start() -> int:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", ports[-1]))  # EADDRINUSE while `taken` is held
                return ports[-1]

        got = retry_on_addr_in_use(start, lambda: ports.append(free_ports(1)[0]))
        assert got != taken
        assert ports == [taken, got]


def test_retry_gives_up_after_the_attempts_and_passes_other_errors_through() -> None:
    calls: list[int] = []

    def always_in_use() -> None:
        calls.append(1)
        raise OSError(errno.EADDRINUSE, "Address already in use")

    with pytest.raises(OSError):
        retry_on_addr_in_use(always_in_use, lambda: None, attempts=3)
    assert len(calls) == 3

    repicks: list[int] = []

    def broken() -> None:
        raise ValueError("not a port problem")

    with pytest.raises(ValueError):
        retry_on_addr_in_use(broken, lambda: repicks.append(1))
    assert repicks == []


async def test_async_retry_awaits_an_async_repick() -> None:
    attempts: list[int] = []
    repicked: list[int] = []

    async def start() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("serf did not start: bind: address already in use")
        return "up"

    async def repick() -> None:
        repicked.append(1)

    assert await aretry_on_addr_in_use(start, repick) == "up"
    assert (len(attempts), len(repicked)) == (2, 1)
