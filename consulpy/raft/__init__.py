"""consulpy.raft: a Raft consensus library (sans-I/O core, SQLite storage, TCP transport).

Depends only on the standard library and msgpack; see docs/raft.md. Logs go to the stdlib
logger "consulpy.raft".
"""

from consulpy.raft.config import RaftConfig
from consulpy.raft.errors import (
    ConfigChangeInProgress,
    LeadershipLost,
    NotLeader,
    RaftError,
    ShutdownError,
    StorageError,
    TransferInProgress,
)
from consulpy.raft.node import RaftNode, StateMachine
from consulpy.raft.transport import PROTO_RAFT, TcpTransport, Transport
from consulpy.raft.types import Server, Suffrage

__all__ = [
    "PROTO_RAFT",
    "ConfigChangeInProgress",
    "LeadershipLost",
    "NotLeader",
    "RaftConfig",
    "RaftError",
    "RaftNode",
    "Server",
    "ShutdownError",
    "StateMachine",
    "StorageError",
    "Suffrage",
    "TcpTransport",
    "TransferInProgress",
    "Transport",
]
