"""What an endpoint is: a name on the RPC wire, its payload type, where it runs, and the code.

Kinds, by where the work happens:
- READ: a store query `fn(store, args, ws) -> (index, result)` over its typed payload's
  fields; the server runs it with Consul's consistency modes and blocking semantics
  (forwarded to the leader unless stale), after asking `authorize` for what `needs` lists.
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

from consulpy.server.endpoints.authz import Need
from consulpy.server.endpoints.limits import Limits
from consulpy.server.endpoints.request import Request

if TYPE_CHECKING:
    from consulpy.server.reads import ReadFn
    from consulpy.server.server import Server
    from consulpy.state.store import StateStore


class Kind(Enum):
    READ = "read"
    WRITE = "write"
    LEADER = "leader"
    LOCAL = "local"


Handler = Callable[["Server", Request[Any]], Awaitable[Any]]
# What a read needs from the authorizer, from the store and its payload (Consul: per key,
# per service, sessions by their node...).
Needs = Callable[["StateStore", Any], list[Need]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    kind: Kind
    payload: type
    handler: Handler | None = None
    read: ReadFn | None = None
    needs: Needs | None = None
    # A read's own checks beyond field types (raise RequestError), with the server's limits.
    check: Callable[[Limits, Any], None] | None = None
    # A read's step after the store read, on the server that made it, for work that needs
    # RPCs (a prepared query failing over to other datacenters): (server, request, hops,
    # result) -> the result to answer.
    after: After | None = None


After = Callable[["Server", Request[Any], int, Any], Awaitable[Any]]


def read(
    name: str,
    payload: type,
    fn: ReadFn,
    needs: Needs,
    check: Callable[[Limits, Any], None] | None = None,
    after: After | None = None,
) -> Endpoint:
    return Endpoint(name, Kind.READ, payload, read=fn, needs=needs, check=check, after=after)


def write(name: str, payload: type, handler: Handler) -> Endpoint:
    return Endpoint(name, Kind.WRITE, payload, handler=handler)


def leader(name: str, payload: type, handler: Handler) -> Endpoint:
    return Endpoint(name, Kind.LEADER, payload, handler=handler)


def local(name: str, payload: type, handler: Handler) -> Endpoint:
    return Endpoint(name, Kind.LOCAL, payload, handler=handler)
