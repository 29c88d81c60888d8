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
from pathlib import Path

import pytest

from tests.netns.agents import NsAgent, eventually, formed, start_servers
from tests.netns.harness import Network


def test_cluster_of_bind_any_servers_forms_fails_over_and_serves_a_client(
    net: Network, agents: list[NsAgent], tmp_path: Path
) -> None:
    servers = start_servers(net, tmp_path, agents)
    client_host = net.add_host("c1")
    join = [f"-retry-join={a.host.ip}" for a in servers]
    client = NsAgent(net, client_host, tmp_path, [f"-advertise={client_host.ip}", *join])
    agents.append(client)
    client.start()
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
    # A stale read is served by this server from what it has applied: it may trail the write
    # by a replication round.
    eventually(
        lambda: survivors[0].host.http("GET", "/v1/kv/netns/b?raw&stale") == (200, b"two"),
        what="the write on a surviving server (stale read)",
    )


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
