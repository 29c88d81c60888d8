"""A real Debian `serf agent` (WAN profile) joins the WAN pool of two one-server datacenters:
it sees both consulpy servers with their Consul tags, and they see it, without taking it for
a datacenter."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from consulpy.gossip.procs import SERF_BIN, AgentProcess
from tests.helpers import eventually
from tests.wan.harness import federation


async def test_real_serf_joins_the_wan_pool(tmp_path: Path) -> None:
    fed = federation(tmp_path, servers=1, clients=0)
    serf = AgentProcess("serf", "go-wan", profile="wan")
    try:
        await asyncio.to_thread(fed.start)
        s1, s2 = fed.dc1.servers[0], fed.dc2.servers[0]
        await serf.start(join=[f"127.0.0.1:{fed.wan_ports['s0.dc1']}"])

        async def serf_sees_both() -> bool:
            members = await serf.members()
            return members.get("s0.dc1") == "alive" and members.get("s0.dc2") == "alive"

        await eventually(serf_sees_both, 60, what="serf sees both consulpy servers alive")
        out = subprocess.run(
            [SERF_BIN, "members", f"-rpc-addr={serf.rpc_addr}", "-detailed"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert "s0.dc2" in out and "role=consul" in out and "dc=dc2" in out

        def consulpy_sees_serf() -> bool:
            members = {m["Name"]: m["Status"] for m in s1.json("GET", "/v1/agent/members?wan=1")}
            return members.get("go-wan") == 1

        await eventually(consulpy_sees_serf, 60, what="consulpy sees the serf agent alive")
        # A member without Consul's server tags is no datacenter, and routes nowhere.
        assert sorted(s2.json("GET", "/v1/catalog/datacenters")) == ["dc1", "dc2"]
        status, _, body = s1.request("GET", "/v1/kv/x?dc=dc2")
        assert status == 404, body
    finally:
        await serf.stop()
        fed.stop()
