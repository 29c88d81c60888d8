"""What an endpoint is: a name on the RPC wire, its payload type, where it runs, and the code.

Kinds, by where the work happens:
- READ: a store query `fn(store, args, ws) -> (index, result)`; the server runs it with
  Consul's consistency modes and blocking semantics (forwarded to the leader unless stale).
- WRITE: validate, authorize, stamp the leader's clock, build the FSM command and propose it.
  Always runs on the leader (a follower forwards the request by endpoint name), so what goes
  into the log is decided by the leader, never by the agent that received the HTTP call.
- LEADER: work the leader does without (or before) a log entry: session renewals, CA signing,
  Raft operator calls.
- LOCAL: answered by whichever server receives it (its own status).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from consulpy.server.endpoints.request import Args, Request

if TYPE_CHECKING:
    from consulpy.server.reads import ReadFn
    from consulpy.server.server import Server


class Kind(Enum):
    READ = "read"
    WRITE = "write"
    LEADER = "leader"
    LOCAL = "local"


Handler = Callable[["Server", Request[Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    kind: Kind
    payload: type
    handler: Handler | None = None
    read: ReadFn | None = None


def read(name: str, fn: ReadFn) -> Endpoint:
    return Endpoint(name, Kind.READ, Args, read=fn)


def write(name: str, payload: type, handler: Handler) -> Endpoint:
    return Endpoint(name, Kind.WRITE, payload, handler=handler)


def leader(name: str, payload: type, handler: Handler) -> Endpoint:
    return Endpoint(name, Kind.LEADER, payload, handler=handler)


def local(name: str, payload: type, handler: Handler) -> Endpoint:
    return Endpoint(name, Kind.LOCAL, payload, handler=handler)
