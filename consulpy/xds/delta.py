"""The incremental (Delta) ADS protocol state of one Envoy stream, without I/O.

``DeltaSession`` is fed Envoy's requests (``on_request``) and new resource sets
(``set_resources``) and says what to send next (``next_response``). The server owns the
socket; this class owns the bookkeeping: what Envoy subscribed to, which resource versions it
holds, which response awaits an ACK.

Push order (spec 5.9): cluster upserts, endpoint upserts, listener upserts and removals,
route upserts and removals, cluster removals, endpoint removals. Each type has at most one
response in flight, and a step also waits for the ACKs of the types it depends on: listeners
and routes for clusters and endpoints (so Envoy never sees a listener before the clusters it
references), cluster removals for listeners and routes (so no listener loses a cluster it
still uses), endpoint removals for clusters. Endpoints do *not* wait for the cluster ACK:
Envoy withholds that ACK until an updated cluster has warmed, which needs its endpoints, so
waiting would stall every cluster update until Envoy's 15 s fetch timeout (current Consul
made the same change). A NACK freezes that type until the next snapshot (Envoy keeps its
last accepted version); the other types carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from consulpy.xds.resources import (
    CHILD_TYPE,
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    TYPE_URLS,
    Resource,
    Resources,
)

UPSERT, REMOVE, BOTH = "upsert", "remove", "both"
# (type, what, types whose in-flight responses this step waits for)
STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (CLUSTER, UPSERT, ()),
    (ENDPOINT, UPSERT, ()),
    (LISTENER, BOTH, (CLUSTER, ENDPOINT)),
    (ROUTE, BOTH, (CLUSTER, ENDPOINT)),
    (CLUSTER, REMOVE, (LISTENER, ROUTE)),
    (ENDPOINT, REMOVE, (CLUSTER,)),
)
WILDCARD = "*"

# What a request turned out to be, for the server's logs and tests.
ACK, NACK, STALE, SUBSCRIBE, UNKNOWN_TYPE = "ack", "nack", "stale", "subscribe", "unknown_type"


def format_nonce(counter: int) -> str:
    """Nonces are a per-stream counter in 8 hex digits (``00000001``), as Consul's."""
    return f"{counter:08x}"


@dataclass(frozen=True)
class Outcome:
    """How ``on_request`` classified a request. ``error`` is Envoy's NACK detail."""

    kind: str
    type_url: str
    nonce: str = ""
    error: str = ""


@dataclass
class TypeState:
    """What one resource type looks like from Envoy's side of this stream."""

    type_url: str
    requested: bool = False
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    known: dict[str, str] = field(default_factory=dict)
    responded: bool = False
    nacked: bool = False
    last_error: str = ""

    def wants(self, name: str) -> bool:
        return self.wildcard or name in self.names


@dataclass(frozen=True)
class Pending:
    """A response awaiting Envoy's ACK (at most one per type)."""

    type_url: str
    nonce: str
    upserts: Mapping[str, str]
    removals: tuple[str, ...]


class DeltaSession:
    """Delta xDS bookkeeping for one stream (see module docstring)."""

    def __init__(self) -> None:
        self.types = {t: TypeState(t) for t in TYPE_URLS}
        self.resources: Resources | None = None
        self.pending: dict[str, Pending] = {}
        self._counter = 0

    # -- inputs -----------------------------------------------------------------------------

    def set_resources(self, resources: Resources) -> None:
        """A new snapshot: everything may be pushed again, NACKed types included."""
        self.resources = resources
        for st in self.types.values():
            st.nacked = False

    def on_request(self, req: discovery_pb2.DeltaDiscoveryRequest) -> Outcome:
        """Apply one request: an ACK or NACK (``response_nonce``), subscription changes, and
        on the first request of a type the versions Envoy already holds."""
        st = self.types.get(req.type_url)
        if st is None:
            return Outcome(UNKNOWN_TYPE, req.type_url, req.response_nonce)
        outcome = Outcome(SUBSCRIBE, req.type_url, req.response_nonce)
        if req.response_nonce:
            outcome = self._acknowledge(st, req)

        first = not st.requested
        st.requested = True
        subscribe = list(req.resource_names_subscribe)
        if first and not subscribe:
            st.wildcard = True  # legacy wildcard: a first request that names nothing
        for name in subscribe:
            if name == WILDCARD:
                st.wildcard = True
            else:
                st.names.add(name)
                # Subscribing to what Envoy already holds is a request to send it again.
                st.known.pop(name, None)
        for name in req.resource_names_unsubscribe:
            if name == WILDCARD:
                st.wildcard = False
            else:
                st.names.discard(name)
                st.known.pop(name, None)
        if first:
            for name, version in req.initial_resource_versions.items():
                if st.wants(name):
                    st.known[name] = version
        return outcome

    def _acknowledge(self, st: TypeState, req: discovery_pb2.DeltaDiscoveryRequest) -> Outcome:
        pending = self.pending.get(st.type_url)
        if pending is None or pending.nonce != req.response_nonce:
            return Outcome(STALE, st.type_url, req.response_nonce)
        del self.pending[st.type_url]
        if req.HasField("error_detail"):
            st.nacked = True
            st.last_error = req.error_detail.message
            return Outcome(NACK, st.type_url, pending.nonce, req.error_detail.message)
        for name, version in pending.upserts.items():
            if st.wants(name):
                st.known[name] = version
        for name in pending.removals:
            st.known.pop(name, None)
        st.last_error = ""
        return Outcome(ACK, st.type_url, pending.nonce)

    # -- output -----------------------------------------------------------------------------

    def _desired(self, st: TypeState) -> Mapping[str, Resource]:
        assert self.resources is not None
        available = self.resources.of_type(st.type_url)
        if st.wildcard:
            return available
        return {n: available[n] for n in st.names if n in available}

    def next_response(self) -> discovery_pb2.DeltaDiscoveryResponse | None:
        """The next response to send now, or None (nothing changed, or waiting for ACKs).
        Call it until it returns None."""
        if self.resources is None:
            return None
        # Types with a response in flight or changes not sent yet (blocked or NACKed): a step
        # waiting for one of them must wait.
        busy = set(self.pending)
        for type_url, mode, waits_for in STEPS:
            st = self.types[type_url]
            if not st.requested:
                continue
            desired = self._desired(st)
            upserts = (
                {}
                if mode == REMOVE
                else {n: r for n, r in desired.items() if st.known.get(n) != r.version}
            )
            removals = [] if mode == UPSERT else sorted(n for n in st.known if n not in desired)
            first_empty = st.wildcard and not st.responded and not st.known and mode != REMOVE
            if not (upserts or removals or first_empty):
                continue
            if st.nacked or type_url in self.pending or busy.intersection(waits_for):
                busy.add(type_url)
                continue
            return self._respond(st, upserts, removals)
        return None

    def _respond(
        self, st: TypeState, upserts: Mapping[str, Resource], removals: list[str]
    ) -> discovery_pb2.DeltaDiscoveryResponse:
        assert self.resources is not None
        child_type = CHILD_TYPE.get(st.type_url)
        if child_type is not None:
            # A replaced cluster (listener) is rebuilt by Envoy and waits for its endpoints
            # (routes) again: forget that Envoy holds them, so they are sent after it.
            children = self.types[child_type].known
            for name, res in upserts.items():
                if name in st.known:
                    for child in res.children:
                        children.pop(child, None)
        self._counter += 1
        nonce = format_nonce(self._counter)
        resp = discovery_pb2.DeltaDiscoveryResponse(
            system_version_info=self.resources.version,
            type_url=st.type_url,
            nonce=nonce,
            removed_resources=removals,
        )
        for name in sorted(upserts):
            res = upserts[name]
            item = resp.resources.add(name=name, version=res.version)
            item.resource.CopyFrom(res.packed)
        st.responded = True
        self.pending[st.type_url] = Pending(
            st.type_url,
            nonce,
            {n: r.version for n, r in upserts.items()},
            tuple(removals),
        )
        return resp

    # -- introspection ----------------------------------------------------------------------

    def acked(self, type_url: str) -> dict[str, str]:
        """Name -> version of what Envoy has acknowledged (or declared on reconnect)."""
        return dict(self.types[type_url].known)

    def in_sync(self) -> bool:
        """True when Envoy holds exactly the current resources (nothing left to push)."""
        if self.resources is None or self.pending:
            return False
        for st in self.types.values():
            if not st.requested:
                continue
            desired = self._desired(st)
            if {n: r.version for n, r in desired.items()} != st.known:
                return False
        return True
