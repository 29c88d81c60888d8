"""Exceptions raised to callers of the Raft library."""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error this library raises."""


class NotLeader(RaftError):
    """This node cannot serve the request; the hints say where the leader is, if known."""

    def __init__(self, leader_id: str | None = None, leader_address: str | None = None) -> None:
        super().__init__(f"not the leader (leader: {leader_id or 'unknown'})")
        self.leader_id = leader_id
        self.leader_address = leader_address


class LeadershipLost(RaftError):
    """Leadership was lost before the entry was known to commit: its outcome is unknown."""


class ConfigChangeInProgress(RaftError):
    """Only one membership change may be uncommitted at a time."""


class TransferInProgress(NotLeader):
    """The leader is handing leadership over and accepts no new proposals meanwhile."""


class ShutdownError(RaftError):
    """The node is shutting down (or was never started)."""


class StorageError(RaftError):
    """The stores hold something the library cannot use (corruption, or bootstrap refused)."""


class StorageUnavailable(StorageError):
    """A write could not be made durable (disk full, I/O error); nothing of it counts as written.

    The stores stay consistent: the driver retries the same write until it succeeds, and refuses
    new proposals meanwhile."""
