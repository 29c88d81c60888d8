"""Multi-process clusters of real `consulpy agent` processes on 127.0.0.1.

Ports are chosen once per node and kept across restarts (as a real deployment's are): Raft
remembers servers by address. The HTTP port is the agent's own pick (port 0, read from its
banner); the RPC and gossip ports must be known before the members start, since they name each
other, so a first start that finds one taken starts again with new ones.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consulpy.util.ports import free_port, retry_on_addr_in_use
from tests.cli.agentproc import AgentProcess
from tests.helpers import eventually_sync

POLL_INTERVAL = 0.2  # how often polling helpers re-check a condition (always with a deadline)


def _free_gossip_port() -> int:
    return free_port(udp=True)


@dataclass
class Node:
    name: str
    server: bool
    data_dir: Path
    http: int = 0  # 0 until the first start: then the port the agent bound and reported
    rpc: int = field(default_factory=free_port)
    serf: int = field(default_factory=_free_gossip_port)
    proc: AgentProcess | None = None
    extra: list[str] = field(default_factory=list)
    # Ports chosen for this node that turned out to be taken at its first start.
    collisions: list[int] = field(default_factory=list)

    def repick(self) -> None:
        """New RPC and gossip ports after a first start that found one of them taken; the
        data the failed start wrote goes too (its Raft state names the old address)."""
        self.collisions += [self.rpc, self.serf]
        self.rpc, self.serf = free_port(), _free_gossip_port()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def http_addr(self) -> str:
        return f"127.0.0.1:{self.http}"

    @property
    def rpc_addr(self) -> str:
        return f"127.0.0.1:{self.rpc}"

    def flags(self, join: list[str], expect: int) -> list[str]:
        out = [
            f"-node={self.name}",
            f"-data-dir={self.data_dir}",
            "-bind=127.0.0.1",
            "-client=127.0.0.1",
            f"-http-port={self.http}",
            f"-server-port={self.rpc}",
            f"-serf-lan-port={self.serf}",
            "-serf-wan-port=-1",
            "-dns-port=-1",
            "-grpc-port=-1",
            "-log-level=info",
            "-retry-interval=1s",
            "-hcl=performance { raft_multiplier = 1 }",
        ]
        if self.server:
            out += ["-server", f"-bootstrap-expect={expect}"]
        out += [f"-retry-join=127.0.0.1:{port}" for port in join]
        return out + self.extra

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 30
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"http://{self.http_addr}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        status, _, raw = self.request(method, path, data)
        assert status == 200, (self.name, path, status, raw)
        return json.loads(raw) if raw else None

    @property
    def alive(self) -> bool:
        return (
            self.proc is not None and self.proc.proc is not None and self.proc.proc.poll() is None
        )


class Cluster:
    def __init__(self, tmp: Path, servers: int = 3, clients: int = 0) -> None:
        self.tmp = tmp
        self.expect = servers
        self.nodes = [Node(f"s{i}", True, tmp / f"s{i}") for i in range(servers)]
        self.nodes += [Node(f"c{i}", False, tmp / f"c{i}") for i in range(clients)]

    @property
    def servers(self) -> list[Node]:
        return [n for n in self.nodes if n.server]

    @property
    def clients(self) -> list[Node]:
        return [n for n in self.nodes if not n.server]

    def start(self, node: Node) -> None:
        """Start (or restart, on the same ports) ``node``'s agent and wait for its banner."""

        def attempt() -> AgentProcess:
            join = [n.serf for n in self.servers if n is not node][:3]
            node.proc = AgentProcess(*node.flags(join, self.expect))
            return node.proc.start(timeout=60)

        proc = attempt() if node.http else retry_on_addr_in_use(attempt, node.repick)
        node.http = int(proc.http_addr.rsplit(":", 1)[1])

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node)
        self.wait_leader()

    def add_server(self, name: str) -> Node:
        node = Node(name, True, self.tmp / name)
        self.nodes.append(node)
        self.start(node)
        return node

    def stop(self, node: Node) -> None:
        if node.proc is not None:
            node.proc.stop()

    def kill(self, node: Node) -> None:
        if node.proc is not None:
            node.proc.kill()

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.alive:
                node.proc.kill()  # type: ignore[union-attr]

    def leader(self) -> Node | None:
        for node in self.servers:
            if not node.alive:
                continue
            try:
                status, _, raw = node.request("GET", "/v1/status/leader", timeout=5)
            except OSError:
                continue
            if status == 200 and json.loads(raw) == node.rpc_addr:
                return node
        return None

    def wait_leader(self, timeout: float = 60, exclude: Node | None = None) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            # every live node agrees on it
            if (
                leader is not None
                and leader is not exclude
                and all(self._sees(n, leader) for n in self.nodes if n.alive)
            ):
                return leader
            time.sleep(POLL_INTERVAL)
        raise AssertionError(
            "no leader agreed on by every node before the deadline:\n"
            + "\n".join(
                f"--- {n.name}\n" + (n.proc.output()[-3000:] if n.proc else "") for n in self.nodes
            )
        )

    @staticmethod
    def _sees(node: Node, leader: Node) -> bool:
        try:
            status, _, raw = node.request("GET", "/v1/status/leader", timeout=5)
        except OSError:
            return False
        return status == 200 and json.loads(raw) == leader.rpc_addr


def eventually(
    check: Any, timeout: float = 30, interval: float = POLL_INTERVAL, what: str = "condition"
) -> Any:
    return eventually_sync(check, timeout, interval, what)
