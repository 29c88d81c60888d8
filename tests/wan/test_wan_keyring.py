"""`encrypt` applies to the WAN pool too, and keyring operations on a server act on both
pools, as in Consul."""

from __future__ import annotations

import json
from pathlib import Path

from consulpy.gossip.keyring import generate_key
from consulpy.util.ports import free_port
from tests.cli.agentproc import consulpy
from tests.cluster.harness import Cluster, eventually
from tests.wan.harness import FAST_WAN, federation


def test_encrypted_wan_pool_and_keyring_on_both_pools(tmp_path: Path) -> None:
    key = generate_key()
    fed = federation(tmp_path, servers=1, clients=0)
    for node in fed.servers:
        node.extra.append(f"-encrypt={key}")
    # A server of a third datacenter with another key cannot join the WAN pool.
    dc3 = Cluster(tmp_path / "dc3", servers=1)
    stranger = dc3.servers[0]
    stranger.extra += [
        "-datacenter=dc3",
        f"-serf-wan-port={free_port(udp=True)}",
        FAST_WAN,
        f"-encrypt={generate_key()}",
    ]
    try:
        fed.start()
        dc3.start_all()
        s1, s2 = fed.dc1.servers[0], fed.dc2.servers[0]

        def wan_names() -> list[str]:
            return sorted(m["Name"] for m in s1.json("GET", "/v1/agent/members?wan=1"))

        eventually(lambda: wan_names() == ["s0.dc1", "s0.dc2"], 30, what="encrypted WAN join")
        status, _, body = s2.request("GET", "/v1/kv/k?dc=dc1")
        assert status == 404, body

        out = consulpy(
            "join",
            "-wan",
            f"127.0.0.1:{fed.wan_ports['s0.dc1']}",
            env={"CONSUL_HTTP_ADDR": stranger.http_addr},
        )
        assert out.returncode != 0 and "Failed to join any nodes" in out.stderr
        assert wan_names() == ["s0.dc1", "s0.dc2"]

        rings = s1.json("GET", "/v1/operator/keyring")
        assert [(r["WAN"], r["NumNodes"], r["Keys"]) for r in rings] == [
            (True, 2, {key: 2}),
            (False, 1, {key: 1}),
        ]
        new = generate_key()
        status, _, body = s1.request(
            "POST", "/v1/operator/keyring", json.dumps({"Key": new}).encode()
        )
        assert status == 200, body
        rings = s2.json("GET", "/v1/operator/keyring")
        assert rings[0]["WAN"] and rings[0]["Keys"] == {key: 2, new: 2}
        # dc2's LAN pool is its own: the key went to dc1's LAN and the shared WAN pool only.
        assert rings[1]["Keys"] == {key: 1}
        out = consulpy("keyring", "-list", env={"CONSUL_HTTP_ADDR": s1.http_addr})
        assert "WAN:" in out.stdout and "dc1 (LAN):" in out.stdout
        assert f"{new} [2/2]" in out.stdout and f"{new} [1/1]" in out.stdout
    finally:
        fed.stop()
        dc3.stop_all()
