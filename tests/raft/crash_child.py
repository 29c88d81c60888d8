"""Child process for the SIGKILL crash test: one Raft node (default WAL store) under a burst.

`python -m tests.raft.crash_child DATA_DIR` starts (bootstrapping a one-server cluster if the
store is empty), prints `STATE <json>` with every key it holds once it leads (the parent checks
it against what an earlier incarnation acknowledged), then proposes from 32 concurrent writers
and prints `ACK <index> <key>` after each proposal resolved, until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable

import msgpack

from consulpy.raft.config import RaftConfig
from consulpy.raft.node import RaftNode
from consulpy.raft.types import Server


class KV:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def apply(self, index: int, data: bytes) -> str:
        key, value = msgpack.unpackb(data)
        self.data[key] = value
        return value

    def snapshot(self) -> Callable[[], bytes]:
        frozen = dict(self.data)
        return lambda: msgpack.packb(frozen)

    def restore(self, data: bytes) -> None:
        self.data = dict(msgpack.unpackb(data))


async def main(data_dir: str) -> None:
    cfg = RaftConfig(
        id="solo",
        address="127.0.0.1:0",
        tick_interval=0.02,
        election_ticks=10,
        lease_ticks=5,
        snapshot_threshold=300,
        trailing_logs=100,
        snapshot_interval=0.05,
    )
    sm = KV()
    node = RaftNode(cfg, sm, data_dir)
    await node.start()
    await node.bootstrap([Server("solo", node.config.address)])
    while not node.is_leader:
        await asyncio.sleep(0.01)
    await node.read_index()
    print("STATE " + json.dumps(sm.data), flush=True)
    incarnation = os.getpid()

    async def writer(w: int) -> None:
        n = 0
        while True:
            key = f"{incarnation}-{w}-{n}"
            index, _ = await node.propose(msgpack.packb([key, key]))
            sys.stdout.write(f"ACK {index} {key}\n")
            sys.stdout.flush()
            n += 1

    await asyncio.gather(*(writer(w) for w in range(32)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
