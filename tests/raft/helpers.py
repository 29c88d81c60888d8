"""Shared helpers for the real-TCP Raft tests: a KV state machine, polling, cluster setup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgpack

from consulpy.raft.config import RaftConfig
from consulpy.raft.node import RaftNode
from consulpy.raft.types import Server
from tests.helpers import eventually_value


class KV:
    """A dict replicated by Raft: entries are msgpack [key, value]; apply returns the value."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.applied: list[int] = []

    def apply(self, index: int, data: bytes) -> Any:
        key, value = msgpack.unpackb(data)
        self.data[key] = value
        self.applied.append(index)
        return value

    def snapshot(self) -> Callable[[], bytes]:
        frozen = dict(self.data)
        return lambda: msgpack.packb(frozen)

    def restore(self, data: bytes) -> None:
        self.data = dict(msgpack.unpackb(data))

    def restore_from(self, src: Any) -> None:
        """A snapshot on disk (at start, or received into a file-backed buffer)."""
        self.data = dict(msgpack.unpackb(src.read()))
        self.from_file = getattr(self, "from_file", 0) + 1

    def prepare_restore(self, src: Any) -> Callable[[], None]:
        """A received snapshot, read in a worker thread; swapped in by the callable."""
        gate = getattr(self, "gate", None)
        if gate is not None:
            gate.wait(30)  # a test holds the load to see the node go on meanwhile
        data = dict(msgpack.unpackb(src.read()))

        def install() -> None:
            self.data = data
            self.from_file = getattr(self, "from_file", 0) + 1

        return install


def put(key: str, value: Any) -> bytes:
    return msgpack.packb([key, value])


async def wait_until(
    cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll cond() until truthy (returned) or the deadline passes."""
    return await eventually_value(cond, timeout, interval=0.01, what=what)


def fast_config(node_id: str, **kw: Any) -> RaftConfig:
    base: dict[str, Any] = dict(
        tick_interval=0.02,
        heartbeat_ticks=1,
        # 0.5-1 s election timeouts: a loaded 2-core machine must not see spurious elections
        # in tests that assume one stable leader.
        election_ticks=25,
        lease_ticks=5,
        default_timeout=10.0,
    )
    base.update(kw)
    return RaftConfig(id=node_id, address="127.0.0.1:0", **base)


async def start_nodes(
    n: int, storage: Callable[[str], str | None] = lambda _id: None, **kw: Any
) -> tuple[list[RaftNode], list[KV]]:
    nodes, sms = [], []
    for i in range(n):
        sm = KV()
        node = RaftNode(fast_config(f"s{i + 1}", **kw), sm, storage(f"s{i + 1}"))
        await node.start()
        nodes.append(node)
        sms.append(sm)
    servers = [Server(nd.id, nd.config.address) for nd in nodes]
    for nd in nodes:
        assert await nd.bootstrap(servers)
    return nodes, sms


async def leader_of(nodes: list[RaftNode], timeout: float = 15.0) -> RaftNode:
    def find() -> RaftNode | None:
        leaders = [nd for nd in nodes if nd.is_leader]
        return leaders[0] if len(leaders) == 1 else None

    return await wait_until(find, timeout, "a single leader")


async def propose_anywhere(nodes: list[RaftNode], data: bytes, timeout: float = 15.0) -> Any:
    """Propose on whichever node leads, retrying through elections (test-client behaviour)."""
    from consulpy.raft.errors import LeadershipLost, NotLeader, ShutdownError

    deadline = time.monotonic() + timeout
    while True:
        leader = await leader_of(nodes, max(0.1, deadline - time.monotonic()))
        try:
            return await leader.propose(data, timeout=max(0.1, deadline - time.monotonic()))
        except (NotLeader, LeadershipLost, ShutdownError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def shutdown_all(nodes: list[RaftNode]) -> None:
    await asyncio.gather(*(nd.shutdown() for nd in nodes), return_exceptions=True)
