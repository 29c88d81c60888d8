"""Network coordinates across a real Debian `serf agent` and our gossip agent.

Serf carries a node's Vivaldi coordinate in its ping acks; `serf rtt` prints the distance
between two cached coordinates. Each side must learn the other's coordinate from acks alone.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Awaitable, Callable

from consulpy.gossip.procs import SERF_BIN, AgentProcess
from tests.gossip.helpers import all_see, cluster, eventually

RTT_LINE = re.compile(r"^Estimated (\S+) <-> (\S+) rtt: (\d+\.\d{3}) ms$", re.M)


def serf_rtt(rpc_addr: str, *nodes: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SERF_BIN, "rtt", f"-rpc-addr={rpc_addr}", *nodes],
        capture_output=True,
        text=True,
        timeout=30,
    )


def rtt_ok(rpc_addr: str, *nodes: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        out = serf_rtt(rpc_addr, *nodes)
        return out.returncode == 0 and RTT_LINE.search(out.stdout) is not None

    return check


async def test_serf_and_consulpy_exchange_coordinates() -> None:
    py1 = AgentProcess("consulpy", "py1", profile="local")
    go1 = AgentProcess("serf", "go1", profile="local")
    async with cluster(py1, go1) as agents:
        await py1.start()
        await go1.start(join=[py1.gossip_addr])
        await eventually(all_see(agents, ["py1", "go1"]), 35, "both alive on both sides")
        # The serf agent learnt our coordinate from our acks to its probes ...
        await eventually(rtt_ok(go1.rpc_addr, "py1"), 30, "serf rtt py1 from the serf agent")
        out = serf_rtt(go1.rpc_addr, "py1")
        m = RTT_LINE.search(out.stdout)
        assert m is not None and {m.group(1), m.group(2)} == {"py1", "go1"}
        assert float(m.group(3)) < 1000.0  # loopback: well under a second
        # ... and we learnt serf's from its acks to ours (served over the same RPC).
        await eventually(rtt_ok(py1.rpc_addr, "go1"), 30, "serf rtt go1 against our agent")
        await eventually(rtt_ok(py1.rpc_addr, "go1", "py1"), 5, "two-node form")


async def test_unknown_node_has_no_coordinate() -> None:
    py1 = AgentProcess("consulpy", "py1", profile="local")
    async with cluster(py1):
        await py1.start()
        out = serf_rtt(py1.rpc_addr, "nobody")
        assert out.returncode == 1
        assert 'Could not find a coordinate for node "nobody"' in out.stdout + out.stderr
