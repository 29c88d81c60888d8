"""consulpy agents in the harness's namespaces, on Consul's default ports, binding 0.0.0.0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.agentproc import AgentProcess
from tests.helpers import eventually_sync
from tests.netns.harness import Host, Network

POLL = 0.2  # re-check interval of eventually(); every wait has a deadline


def eventually(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    """Poll check() until it returns something truthy (and return it) or the deadline passes."""
    return eventually_sync(
        check, timeout, POLL, what, tolerate=(OSError, AssertionError, ValueError, KeyError)
    )


class NsAgent:
    """A `consulpy agent` process inside a host namespace: -bind=0.0.0.0, default ports, the
    HTTP API on the namespace's 127.0.0.1:8500."""

    def __init__(
        self, net: Network, host: Host, data: Path, flags: list[str], grpc: bool = False
    ) -> None:
        self.host = host
        self.proc = AgentProcess(
            f"-node={host.name}",
            f"-data-dir={data / host.name}",
            "-bind=0.0.0.0",
            "-client=127.0.0.1",
            "-serf-wan-port=-1",
            "-dns-port=-1",
            f"-grpc-port={8502 if grpc else -1}",
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


def start_servers(
    net: Network, data: Path, agents: list[NsAgent], extra: list[str] | None = None
) -> list[NsAgent]:
    """s1..s3, each joining the other two; s3 sets no -advertise (it must pick its address)."""
    hosts = [net.add_host(f"s{i}") for i in (1, 2, 3)]
    servers = []
    for host in hosts:
        join = [f"-retry-join={h.ip}" for h in hosts if h is not host]
        advertise = [] if host.name == "s3" else [f"-advertise={host.ip}"]
        flags = ["-server", "-bootstrap-expect=3", *advertise, *join, *(extra or [])]
        agent = NsAgent(net, host, data, flags)
        agents.append(agent)
        servers.append(agent)
    for agent in servers:
        agent.start()
    return servers


def formed(servers: list[NsAgent], expected: set[str]) -> str | None:
    """The leader's address once every live server reports the same configuration, made of
    the advertised addresses, all voters, with one leader."""
    leaders = set()
    for agent in servers:
        if not agent.alive:
            continue
        cfg = agent.host.json("GET", "/v1/operator/raft/configuration")
        addresses = {s["Address"] for s in cfg["Servers"]}
        if addresses != expected or not all(s["Voter"] for s in cfg["Servers"]):
            return None
        leader = [s["Address"] for s in cfg["Servers"] if s["Leader"]]
        if len(leader) != 1:
            return None
        leaders.add(leader[0])
    return leaders.pop() if len(leaders) == 1 else None
