"""consulpy's gossip membership library, wire compatible with HashiCorp Serf/memberlist.

Layers, bottom up: ``codec`` (Go's msgpack dialect), ``lzw``, ``keyring`` (AES-GCM),
``messages`` and ``wire`` (packet and stream framing), ``swim`` (the sans-I/O SWIM/Lifeguard
core), ``serf_core`` (sans-I/O Serf: intents, events, queries), ``transport`` (UDP+TCP) and
``serf`` (the asyncio ``Serf`` users construct). ``simulation`` runs many cores on a simulated
network; ``agent_main``/``rpc``/``procs`` run members as processes. Nothing here imports the
rest of consulpy. See docs/gossip.md.
"""

from consulpy.gossip.events import (
    Member,
    MemberEvent,
    MemberEventType,
    MemberStatus,
    Query,
    UserEvent,
)
from consulpy.gossip.keyring import Keyring, KeyringError, generate_key
from consulpy.gossip.serf import (
    JoinError,
    KeyManager,
    KeyringReport,
    QueryResponse,
    Serf,
    SerfConfig,
    SerfError,
    SerfTimings,
)

__all__ = [
    "JoinError",
    "KeyManager",
    "Keyring",
    "KeyringError",
    "KeyringReport",
    "Member",
    "MemberEvent",
    "MemberEventType",
    "MemberStatus",
    "Query",
    "QueryResponse",
    "Serf",
    "SerfConfig",
    "SerfError",
    "SerfTimings",
    "UserEvent",
    "generate_key",
]
