"""The Applier backed by consulpy/raft: the FSM is the Raft state machine.

Every server (dev mode included, with an in-memory log) runs one `RaftNode` whose state
machine is the FSM. Snapshots are the store's own snapshot: frozen on the event loop (rows are
immutable, so that is a shallow copy) and serialised in the Raft library's worker thread.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import IO, Any

import structlog

from consulpy.raft.config import RaftConfig
from consulpy.raft.errors import (
    ConfigChangeInProgress,
    LeadershipLost,
    NotLeader,
    ShutdownError,
    StorageUnavailable,
)
from consulpy.raft.node import RaftNode
from consulpy.raft.transport import TcpTransport
from consulpy.raft.types import Server as RaftServer
from consulpy.raft.types import SnapshotData
from consulpy.state import integrity
from consulpy.state.fsm import FSM
from consulpy.state.store import StateStore

log = structlog.get_logger("consulpy.server")


class NotLeaderError(Exception):
    """This server is not the leader; `leader_address` says where to forward (if known)."""

    def __init__(self, leader_address: str | None) -> None:
        super().__init__(f"not the leader (leader: {leader_address or 'unknown'})")
        self.leader_address = leader_address


class OutcomeUnknown(Exception):
    """Leadership was lost before the write was known to commit; it may still apply."""


class FSMStateMachine:
    """Adapts the FSM and its store to the Raft library's StateMachine protocol."""

    def __init__(self, fsm: FSM) -> None:
        self.fsm = fsm

    def apply(self, index: int, data: bytes) -> Any:
        return self.fsm.apply(index, data)

    def snapshot(self) -> Callable[[], bytes]:
        return self.fsm.store.snapshot_source()

    def restore(self, data: bytes) -> None:
        self.fsm.store.restore(data)
        report_problems(self.fsm.store, "snapshot")

    def prepare_restore(self, src: IO[bytes]) -> Callable[[], None]:
        """Build a store from a snapshot in a worker thread (a follower receiving one keeps
        answering the leader meanwhile); the returned callable swaps it in on the loop."""
        new = StateStore.loaded_from(src)

        def install() -> None:
            self.fsm.store.adopt(new)
            report_problems(self.fsm.store, "snapshot")

        return install

    def restore_from(self, src: IO[bytes]) -> None:
        """A snapshot read from a file (at start, or received into a file-backed buffer),
        record by record."""
        self.fsm.store.restore_from(src)
        report_problems(self.fsm.store, "snapshot")


def report_problems(store: StateStore, origin: str) -> int:
    """Log what `state.integrity` finds in a loaded store (rows older versions let in);
    returns the count. Reported, not rewritten: see consulpy/state/integrity.py."""
    found = integrity.problems(store)
    for problem in found[:100]:
        log.warning("state integrity problem", origin=origin, problem=problem)
    if found:
        log.warning(
            "state integrity: rows need attention",
            origin=origin,
            count=len(found),
            index=store.last_index,
        )
    return len(found)


def bind_server_socket(host: str, port: int) -> socket.socket:
    """Bind the server port now, so the advertised Raft address carries the real port even
    when the configured one is 0 (tests)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


class RaftApplier:
    def __init__(
        self,
        fsm: FSM,
        *,
        node_id: str,
        bind_host: str,
        bind_port: int,
        advertise_host: str,
        data_dir: str | None,
        raft_multiplier: int = 1,
        snapshot_threshold: int = 16384,
        snapshot_interval: float = 30.0,
        trailing_logs: int = 10240,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        handshake_timeout: float = 0.0,
        log_store: str = "wal",
        wal_segment_size: int = 64 << 20,
    ) -> None:
        self.fsm = fsm
        self.sock = bind_server_socket(bind_host, bind_port)
        port = self.sock.getsockname()[1]
        # Peers know this server by its advertised address; the bound one may be 0.0.0.0.
        # Same spelling as Server.rpc_address and the gossip-derived addresses (membership).
        self.address = f"{advertise_host}:{port}"
        self.transport = TcpTransport(
            sock=self.sock,
            advertise=self.address,
            server_ssl=server_ssl,
            client_ssl=client_ssl,
            server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
        )
        config = RaftConfig(
            id=node_id,
            address=self.address,
            tick_interval=0.1 * max(1, raft_multiplier),
            snapshot_threshold=snapshot_threshold,
            snapshot_interval=snapshot_interval,
            trailing_logs=trailing_logs,
            log_store=log_store,
            wal_segment_size=wal_segment_size,
            # Followers learn a commit at once (an AppendEntries of its own per commit). A
            # delay (hashicorp/raft's CommitTimeout) saves a lone writer's followers a round
            # per PUT, but lets `?stale` and DNS reads on a follower miss a write the client
            # was just told about for that long; see docs/raft.md.
            commit_notice_delay=0.0,
        )
        self.node = RaftNode(config, FSMStateMachine(fsm), data_dir, self.transport)

    async def start(self) -> None:
        await self.node.start()

    async def bootstrap(self, servers: list[tuple[str, str]]) -> bool:
        """Write the first configuration (id, address pairs); False if there is state."""
        return await self.node.bootstrap([RaftServer(sid, addr) for sid, addr in servers])

    async def shutdown(self) -> None:
        await self.node.shutdown()

    # --------------------------------------------------------------- Applier
    async def apply(self, data: bytes) -> tuple[int, Any]:
        try:
            return await self.node.propose(data)
        except NotLeader as exc:
            raise NotLeaderError(exc.leader_address) from exc
        except StorageUnavailable as exc:
            # Refused before proposing: nothing was written.
            raise OutcomeUnknown(f"write refused, the Raft log cannot be persisted: {exc}") from exc
        except (LeadershipLost, TimeoutError, ShutdownError) as exc:
            raise OutcomeUnknown(
                "leadership lost while committing log; the write may or may not apply"
            ) from exc

    async def restore(self, data: bytes | SnapshotData, prepared: StateStore) -> int:
        """Make `data` (a serialised store; `prepared` is it loaded) the replicated state as
        a Raft snapshot at a new index; returns that index once a quorum holds it."""
        # Every follower must receive, save and acknowledge the whole state before the NOOP
        # after it commits: allow at least 2 MiB/s (a 250 MB state: two minutes), not the
        # 10 s of a write. Losing leadership still ends the wait at once.
        timeout = max(60.0, len(data) / (2 << 20))
        try:
            return await self.node.restore(
                data, lambda: self.fsm.store.adopt(prepared), timeout=timeout
            )
        except NotLeader as exc:
            raise NotLeaderError(exc.leader_address) from exc
        except (StorageUnavailable, ConfigChangeInProgress) as exc:
            raise OutcomeUnknown(f"restore refused, nothing changed: {exc}") from exc
        except (LeadershipLost, TimeoutError, ShutdownError) as exc:
            raise OutcomeUnknown(
                "leadership lost while committing the restore; it may or may not apply"
            ) from exc

    def is_leader(self) -> bool:
        return self.node.is_leader

    def leader(self) -> tuple[str | None, str | None]:
        return self.node.leader()

    def last_contact_ms(self) -> int:
        seconds = self.node.stats().get("last_contact")
        if seconds is None:
            return 0
        return int(seconds * 1000)

    async def barrier(self) -> None:
        try:
            await self.node.read_index()
        except NotLeader as exc:
            raise NotLeaderError(exc.leader_address) from exc

    def has_lease(self) -> bool:
        return self.node.has_lease()

    def on_leader_change(self, callback: Callable[[bool], None]) -> None:
        self.node.on_leader_change(lambda is_leader, _lid, _addr: callback(is_leader))
