"""RaftConfig: every tunable of the library in one place, with Consul-like defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RaftConfig:
    """Timeouts are counted in ticks so the core stays clock-free; tick_interval maps them to time.

    With the defaults a tick is 100 ms, heartbeats go out every 100 ms, a follower starts an
    election after 1-2 s of silence (randomised in [election_ticks, 2*election_ticks)), and a leader
    holds a read lease for 500 ms after a quorum acknowledged it.
    """

    id: str
    # Where the node's own transport binds when RaftNode creates it; replaced on start() by the
    # transport's advertised address (what peers dial and what the configuration stores).
    address: str = "127.0.0.1:0"
    # host:port peers dial when `address` binds 0.0.0.0/[::] (port 0: the bound port).
    advertise: str | None = None
    tick_interval: float = 0.1
    heartbeat_ticks: int = 1
    election_ticks: int = 10
    # A leader's lease lasts this many ticks from the sending of a message a quorum acknowledged.
    # Must stay 2 ticks below election_ticks (the minimum election timeout); the rest of the gap
    # is the margin for clock drift between servers.
    lease_ticks: int = 5
    max_entries_per_msg: int = 512
    max_bytes_per_msg: int = 1 << 20
    max_inflight: int = 64
    snapshot_chunk_size: int = 1 << 20
    snapshot_threshold: int = 16384
    snapshot_interval: float = 30.0
    trailing_logs: int = 10240
    # Applied entries a server with peers keeps in memory behind the point every server holds
    # (a follower: behind its own applied index), so a briefly lagging follower catches up
    # from memory; older ones are released (RaftLog.release_to) and a follower that needs
    # them gets a snapshot. A single server keeps none.
    memory_trailing_entries: int = 1024
    snapshots_retained: int = 2
    # On-disk log store: "wal" (segment files, the default) or "sqlite" (the earlier format).
    log_store: str = "wal"
    wal_segment_size: int = 64 << 20
    # Small log writes are done on the event loop itself while synced writes take at most
    # this long (a moving average), else on the storage thread: see RaftNode._in_place.
    inline_write_max: float = 0.003
    # Seconds a leader lets a commit advance wait for the next AppendEntries before telling
    # the followers with one of its own (hashicorp/raft's CommitTimeout); 0: at once.
    commit_notice_delay: float = 0.0
    pre_vote: bool = True
    check_quorum: bool = True
    # Proposals and reads waiting longer than this fail (the caller's own timeout wins if shorter).
    default_timeout: float = 10.0

    def validate(self) -> None:
        if not self.id:
            raise ValueError("raft: id must not be empty")
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("raft: need 1 <= heartbeat_ticks < election_ticks")
        if not 0 <= self.lease_ticks <= self.election_ticks - 2:
            # One tick of quantisation on each side: the follower's and the leader's.
            raise ValueError("raft: need 0 <= lease_ticks <= election_ticks - 2")
        if self.max_inflight < 1 or self.max_entries_per_msg < 1 or self.max_bytes_per_msg < 1:
            raise ValueError("raft: message and inflight limits must be positive")
        if self.log_store not in ("wal", "sqlite"):
            raise ValueError("raft: log_store must be 'wal' or 'sqlite'")
        if self.wal_segment_size < 4096:
            raise ValueError("raft: wal_segment_size must be at least 4096 bytes")
        if self.memory_trailing_entries < 0:
            raise ValueError("raft: memory_trailing_entries must be >= 0")
        if self.trailing_logs < 0 or self.snapshots_retained < 1:
            raise ValueError("raft: trailing_logs >= 0 and snapshots_retained >= 1 required")
