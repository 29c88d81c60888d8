"""Two datacenters of `consulpy agent` processes on loopback, federated over the WAN pool.

Each datacenter is a tests/cluster Cluster whose servers also bind a WAN gossip port; only dc2's
first server retry-joins dc1's first server over the WAN: every other server reaches the WAN pool
by flood join (each server joins the servers it sees on its LAN into the WAN pool, as Consul).
The WAN pool runs faster probe timings than Consul's WAN defaults (probe 5s, suspicion x6) so
a failed datacenter shows up in seconds; the protocol is the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from consulpy.util.ports import free_port
from tests.cluster.harness import Cluster, Node

FAST_WAN = (
    '-hcl=gossip_wan { probe_interval = "500ms" probe_timeout = "300ms" '
    'suspicion_mult = 3 gossip_interval = "100ms" }'
)


@dataclass
class Federation:
    dc1: Cluster
    dc2: Cluster
    wan_ports: dict[str, int]  # "<node>.<dc>" -> WAN gossip port

    @property
    def servers(self) -> list[Node]:
        return [*self.dc1.servers, *self.dc2.servers]

    def start(self) -> None:
        for cluster in (self.dc1, self.dc2):
            for node in cluster.nodes:
                cluster.start(node)
        self.dc1.wait_leader()
        self.dc2.wait_leader()

    def stop(self) -> None:
        self.dc1.stop_all()
        self.dc2.stop_all()

    @contextmanager
    def running(self) -> Iterator[Federation]:
        """Started for the `with` block, then stopped; a failure inside prints every
        agent's output tail first."""
        try:
            self.start()
            yield self
        except BaseException:
            print(self.output())
            raise
        finally:
            self.stop()

    def output(self) -> str:
        return "\n".join(
            f"--- {n.name}\n{n.proc.output()[-3000:] if n.proc else ''}"
            for c in (self.dc1, self.dc2)
            for n in c.nodes
        )


def federation(tmp: Path, servers: int = 3, clients: int = 1) -> Federation:
    """dc1 and dc2 with `servers` servers each and `clients` client agents in dc1."""
    dc1 = Cluster(tmp / "dc1", servers=servers, clients=clients)
    dc2 = Cluster(tmp / "dc2", servers=servers, clients=0)
    wan: dict[str, int] = {}
    for dc, cluster in (("dc1", dc1), ("dc2", dc2)):
        for node in cluster.nodes:
            node.extra += [f"-datacenter={dc}"]
            if node.server:
                port = free_port(udp=True)
                wan[f"{node.name}.{dc}"] = port
                node.extra += [f"-serf-wan-port={port}", FAST_WAN]
    seed = wan["s0.dc1"]
    dc2.servers[0].extra += [f"-retry-join-wan=127.0.0.1:{seed}", "-retry-interval-wan=1s"]
    return Federation(dc1, dc2, wan)
