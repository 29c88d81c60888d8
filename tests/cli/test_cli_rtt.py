"""`consulpy rtt` between two real agents whose coordinates come from real gossip: a dev
server and a client agent that joins it. Both report their coordinates every ~100 ms
(`sync_coordinate_interval_min`), so the test does not wait Consul's 15 s."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest

from tests.cli.agentproc import AgentProcess, consulpy
from tests.helpers import eventually

FAST = 'sync_coordinate_interval_min = "100ms"'
COMMON = ("-http-port=0", "-dns-port=-1", "-grpc-port=-1", "-serf-wan-port=-1", "-hcl", FAST)
RTT = re.compile(
    r"^Estimated (\S+) <-> (\S+) rtt: (\d+\.\d{3}) ms \(using (LAN|WAN) coordinates\)$"
)


def get(agent: AgentProcess, path: str) -> object:
    with urllib.request.urlopen(f"http://{agent.http_addr}{path}", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    server = AgentProcess("-dev", "-node=srv", "-server-port=0", "-serf-lan-port=0", *COMMON)
    server.start()
    client = None
    try:
        members = get(server, "/v1/agent/members")
        assert isinstance(members, list)
        port = members[0]["Port"]
        data = tmp_path_factory.mktemp("client")
        client = AgentProcess(
            "-node=cli1",
            f"-data-dir={data}",
            "-bind=127.0.0.1",
            "-client=127.0.0.1",
            "-serf-lan-port=0",
            "-server-port=0",
            f"-join=127.0.0.1:{port}",
            *COMMON,
        ).start()
        yield server, client
    finally:
        if client is not None:
            client.kill()
        server.kill()


def test_rtt_between_gossip_measured_coordinates(pair: tuple[AgentProcess, AgentProcess]) -> None:
    server, client = pair

    def both_stored() -> bool:
        rows = get(server, "/v1/coordinate/nodes")
        return isinstance(rows, list) and {r["Node"] for r in rows} >= {"srv", "cli1"}

    import asyncio

    asyncio.run(eventually(both_stored, 30, what="both agents' coordinates in the catalog"))
    out = consulpy("rtt", f"-http-addr={client.http_addr}", "srv")
    assert out.returncode == 0, out.stderr
    m = RTT.match(out.stdout.strip())
    assert m is not None, out.stdout
    assert (m.group(1), m.group(2), m.group(4)) == ("srv", "cli1", "LAN")
    assert float(m.group(3)) < 1000.0  # loopback
    out = consulpy("rtt", f"-http-addr={server.http_addr}", "CLI1", "srv")  # any case
    assert out.returncode == 0 and RTT.match(out.stdout.strip()), out.stdout + out.stderr
    out = consulpy("rtt", f"-http-addr={client.http_addr}", "-wan", "srv.dc1", "srv.dc1")
    m = RTT.match(out.stdout.strip())
    assert m is not None and m.group(4) == "WAN", out.stdout + out.stderr
    # ?near= with real coordinates: the named node comes first.
    nodes = get(server, "/v1/catalog/nodes?near=cli1")
    assert isinstance(nodes, list) and nodes[0]["Node"] == "cli1"


def test_rtt_errors(pair: tuple[AgentProcess, AgentProcess]) -> None:
    server, _ = pair
    a = f"-http-addr={server.http_addr}"
    out = consulpy("rtt", a)
    assert out.returncode == 1 and "One or two node names must be specified" in out.stderr
    out = consulpy("rtt", a, "x", "y", "z")
    assert out.returncode == 1 and "One or two node names must be specified" in out.stderr
    out = consulpy("rtt", a, "nope")
    assert out.returncode == 1 and 'Could not find a coordinate for node "nope"' in out.stderr
    out = consulpy("rtt", a, "-wan", "srv")
    assert out.returncode == 1
    assert "Node names must be specified as <node name>.<datacenter> with -wan" in out.stderr
