"""Servers that bind 0.0.0.0 with the default ports, each in its own network namespace.

On one host with distinct ports, a message sent to 0.0.0.0:<port> happens to reach the right
process, which is how loopback tests hid servers identifying themselves by their bound address.
Here every agent listens on 0.0.0.0:8300/8301/8500 in its own namespace: the cluster forms
only if each server is known by the address it advertises.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.agentproc import AgentProcess
from tests.netns.harness import Host, Network, available

pytestmark = pytest.mark.slow

_why_not = available()
if _why_not is not None:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=_why_not)]

POLL = 0.2  # re-check interval of eventually(); every wait has a deadline


def eventually(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, AssertionError, ValueError) as exc:
            last = exc
        time.sleep(POLL)
    raise AssertionError(f"{what} not met before the deadline (last: {last!r})")


class NsAgent:
    """A `consulpy agent` process inside a host namespace, on Consul's default ports."""

    def __init__(self, net: Network, host: Host, data: Path, flags: list[str]) -> None:
        self.host = host
        self.proc = AgentProcess(
            f"-node={host.name}",
            f"-data-dir={data / host.name}",
            "-bind=0.0.0.0",
            "-client=127.0.0.1",
            "-serf-wan-port=-1",
            "-dns-port=-1",
            "-grpc-port=-1",
            "-retry-interval=1s",
            "-hcl=performance { raft_multiplier = 1 }",
            *flags,
        )
        self.proc.argv = net.command(host, self.proc.argv)

    def start(self) -> NsAgent:
        self.proc.start(timeout=60)
        return self

    def kill(self) -> None:
        self.proc.kill()

    @property
    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network()
    agents: list[NsAgent] = []
    network.agents = agents  # type: ignore[attr-defined]
    try:
        yield network
    finally:
        for agent in agents:
            agent.kill()
        network.close()


def start_cluster(net: Network, tmp: Path) -> tuple[list[NsAgent], NsAgent]:
    hosts = [net.add_host(f"s{i}") for i in (1, 2, 3)]
    client_host = net.add_host("c1")
    agents: list[NsAgent] = net.agents  # type: ignore[attr-defined]
    servers = []
    for host in hosts:
        join = [f"-retry-join={h.ip}" for h in hosts if h is not host]
        # s3 sets no -advertise: with bind 0.0.0.0 it must pick its one private address.
        advertise = [] if host.name == "s3" else [f"-advertise={host.ip}"]
        agent = NsAgent(net, host, tmp, ["-server", "-bootstrap-expect=3", *advertise, *join])
        agents.append(agent)
        servers.append(agent)
    for agent in servers:
        agent.start()
    client = NsAgent(
        net,
        client_host,
        tmp,
        [f"-advertise={client_host.ip}", *[f"-retry-join={h.ip}" for h in hosts]],
    )
    agents.append(client)
    client.start()
    return servers, client


def raft_config(host: Host) -> dict[str, Any]:
    return host.json("GET", "/v1/operator/raft/configuration")


def formed(servers: list[NsAgent], expected: set[str]) -> str | None:
    """The leader's address once every live server reports the same configuration, made of
    the advertised addresses, with a leader."""
    leaders = set()
    for agent in servers:
        if not agent.alive:
            continue
        cfg = raft_config(agent.host)
        addresses = {s["Address"] for s in cfg["Servers"]}
        if addresses != expected or not all(s["Voter"] for s in cfg["Servers"]):
            return None
        leader = [s["Address"] for s in cfg["Servers"] if s["Leader"]]
        if len(leader) != 1:
            return None
        leaders.add(leader[0])
    return leaders.pop() if len(leaders) == 1 else None


def test_cluster_of_bind_any_servers_forms_fails_over_and_serves_a_client(
    net: Network, tmp_path: Path
) -> None:
    servers, client = start_cluster(net, tmp_path)
    expected = {f"{a.host.ip}:8300" for a in servers}

    leader_addr = eventually(
        lambda: formed(servers, expected), what="3 voters at their advertised addresses"
    )

    # The banner says what is bound and what is advertised.
    banner = servers[0].proc.output()
    assert re.search(
        rf"Server Addr: {re.escape(servers[0].host.ip)}:8300 \(bound: 0\.0\.0\.0:8300\)", banner
    ), banner
    assert "Cluster Bind: 0.0.0.0:8301" in banner
    me = servers[2].host.json("GET", "/v1/agent/self")
    assert me["DebugConfig"]["AdvertiseAddrLAN"] == servers[2].host.ip  # picked, not 0.0.0.0
    assert me["Member"]["Addr"] == servers[2].host.ip

    # Gossip: every agent is a member at its own address.
    def members() -> bool:
        got = {
            (m["Name"], m["Addr"], m["Status"])
            for m in client.host.json("GET", "/v1/agent/members")
        }
        return got == {(a.host.name, a.host.ip, 1) for a in [*servers, client]}

    eventually(members, what="4 members alive at their advertised addresses")

    # The client agent serves KV and the catalog through the servers.
    assert client.host.json("PUT", "/v1/kv/netns/a", b"one") is True
    status, raw = client.host.http("GET", "/v1/kv/netns/a?raw")
    assert (status, raw) == (200, b"one")
    client.host.json("PUT", "/v1/agent/service/register", {"Name": "db", "Port": 5432})

    def db_in_catalog() -> bool:
        rows = client.host.json("GET", "/v1/catalog/service/db")
        return [(r["Node"], r["Address"], r["ServicePort"]) for r in rows] == [
            ("c1", client.host.ip, 5432)
        ]

    eventually(db_in_catalog, what="db registered at the client's advertised address")
    nodes = {n["Node"]: n["Address"] for n in client.host.json("GET", "/v1/catalog/nodes")}
    assert nodes == {a.host.name: a.host.ip for a in [*servers, client]}

    # kill -9 the leader: the other two elect a new one and the client keeps serving writes.
    old = next(a for a in servers if f"{a.host.ip}:8300" == leader_addr)
    old.kill()
    survivors = [a for a in servers if a is not old]

    def new_leader() -> str | None:
        leaders = {a.host.json("GET", "/v1/status/leader") for a in survivors}
        if len(leaders) == 1:
            (addr,) = leaders
            if addr and addr != leader_addr:
                return addr
        return None

    new_addr = eventually(new_leader, what="a new leader among the survivors")
    assert new_addr in {f"{a.host.ip}:8300" for a in survivors}

    def client_writes() -> bool:
        status, raw = client.host.http("PUT", "/v1/kv/netns/b", b"two")
        return status == 200 and json.loads(raw) is True

    eventually(client_writes, what="the client writes through the new leader")
    status, raw = survivors[0].host.http("GET", "/v1/kv/netns/b?raw&stale")
    assert (status, raw) == (200, b"two")


@pytest.mark.parametrize("extra", [["second"], []], ids=["two-private-ips", "no-private-ip"])
def test_bind_any_without_advertise_refuses_when_the_address_is_not_clear(
    net: Network, tmp_path: Path, extra: list[str]
) -> None:
    host = net.add_host("s1")
    addresses = [host.ip, f"{net.subnet}.200"] if extra else []
    net.set_addresses(host, addresses)
    argv = NsAgent(net, host, tmp_path, ["-server", "-bootstrap-expect=1"]).proc.argv
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    if extra:
        assert "Multiple private IPv4 addresses found" in done.stderr
    else:
        assert "No private IPv4 address found" in done.stderr
    assert "advertise" in done.stderr  # says what to set
