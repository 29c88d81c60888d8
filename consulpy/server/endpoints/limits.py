"""The configured limits the servers enforce on every request, whichever agent received it
(the agent that received an HTTP call checks the same keys early, for Consul's texts)."""

from __future__ import annotations

from dataclasses import dataclass

SESSION_TTL_MAX_NS = 24 * 3600 * 1_000_000_000  # Consul's fixed 86400 s maximum


@dataclass(frozen=True, slots=True)
class Limits:
    kv_max_value_size: int = 524288  # limits.kv_max_value_size
    txn_max_ops: int = 128  # limits.txn_max_ops
    session_ttl_min: float = 10.0  # session_ttl_min, seconds
