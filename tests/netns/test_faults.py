"""The fault injector does what it says: measured with UDP datagrams between two namespaces."""

from __future__ import annotations

import socket

from tests.netns.faults import TABLE, Faults
from tests.netns.harness import Host, Network, in_netns

PORT = 9999
PROBES = 200


def _listener(host: Host) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", PORT))
        sock.setblocking(False)
        return sock

    return in_netns(host.ns, make)


def _delivered(src: Host, dst: Host, inbox: socket.socket, drain: float = 0.5) -> int:
    """How many of PROBES datagrams from src reach dst. The receive deadline bounds the
    wait for datagrams that may have been dropped (absence cannot be polled for); where all
    must arrive the caller passes a long one, which only a failure ever waits out."""

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            for n in range(PROBES):
                out.sendto(str(n).encode(), (dst.ip, PORT))

    in_netns(src.ns, send)
    inbox.settimeout(drain)
    got = 0
    try:
        while got < PROBES:
            inbox.recv(64)
            got += 1
    except TimeoutError:
        pass
    return got


ALL = 10.0  # drain deadline where every datagram must arrive


def test_one_way_partition_loss_isolation_and_heal(net: Network) -> None:
    a, b = net.add_host("a"), net.add_host("b")
    faults = Faults(net)
    to_a, to_b = _listener(a), _listener(b)
    try:
        assert _delivered(a, b, to_b, ALL) == PROBES

        faults.one_way(a, b)
        assert TABLE in faults.ruleset(b)  # dropped where it arrives
        assert _delivered(a, b, to_b) == 0
        assert _delivered(b, a, to_a, ALL) == PROBES  # the other direction still works

        faults.heal()
        assert TABLE not in faults.ruleset(a) and TABLE not in faults.ruleset(b)
        assert _delivered(a, b, to_b, ALL) == PROBES

        faults.loss(b, 50)
        got = _delivered(a, b, to_b)
        assert 0 < got < PROBES, got  # 200 fair coins: all heads or all tails never happens
        faults.heal()

        faults.isolate(a)
        assert _delivered(a, b, to_b) == 0
        faults.heal()
        assert _delivered(a, b, to_b, ALL) == PROBES
    finally:
        to_a.close()
        to_b.close()
