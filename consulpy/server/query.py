"""Options and metadata of a read, as Consul's QueryOptions / QueryMeta carry them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT = "default"
STALE = "stale"
CONSISTENT = "consistent"

# Consul's server defaults: default_query_time 300 s, max_query_time 600 s.
DEFAULT_QUERY_TIME = 300.0
MAX_QUERY_TIME = 600.0


@dataclass(frozen=True, slots=True)
class QueryTimes:
    """The agent's `default_query_time` (a blocking query without `wait`) and
    `max_query_time` (the longest `wait` honoured), in seconds."""

    default: float = DEFAULT_QUERY_TIME
    maximum: float = MAX_QUERY_TIME


CONSUL_QUERY_TIMES = QueryTimes()


@dataclass(slots=True)
class QueryOptions:
    index: int = 0
    wait: float = 0.0  # seconds; 0 = the server default
    consistency: str = DEFAULT
    max_stale: float = 0.0  # seconds; > 0 implies stale
    filter: str = ""

    def blocking_timeout(self, jitter: float, times: QueryTimes = CONSUL_QUERY_TIMES) -> float:
        """The time to block, as Consul's server computes it: a wait above `times.maximum` is
        cut to it, no wait means `times.default`; plus up to 1/16 jitter. `jitter` is a
        uniform random number in [0, 1)."""
        wait = self.wait
        if wait > times.maximum:
            wait = times.maximum
        elif wait <= 0:
            wait = times.default
        return wait + wait / 16 * jitter

    def to_wire(self) -> dict[str, object]:
        return {
            "index": self.index,
            "wait": self.wait,
            "consistency": self.consistency,
            "max_stale": self.max_stale,
            "filter": self.filter,
        }

    @classmethod
    def from_wire(cls, data: dict[str, object]) -> QueryOptions:
        return cls(**data)  # type: ignore[arg-type]


@dataclass(slots=True)
class QueryMeta:
    index: int
    known_leader: bool = True
    last_contact_ms: int = 0
    consistency: str = "leader"
    # Consul's X-Consul-Results-Filtered-By-ACLs: whether the ACLs hid part of a filtered list
    # (None: no header; ACLs off, not a filtered list, or an anonymous request).
    results_filtered: bool | None = None
    # Filled by the HTTP layer with what it encoded from the result this meta came with, so
    # identical blocking queries answered by one evaluation are encoded once (not on the wire).
    shared: dict[Any, Any] | None = field(default=None, compare=False, repr=False)

    def to_wire(self) -> dict[str, object]:
        return {
            "results_filtered": self.results_filtered,
            "index": self.index,
            "known_leader": self.known_leader,
            "last_contact_ms": self.last_contact_ms,
            "consistency": self.consistency,
        }
