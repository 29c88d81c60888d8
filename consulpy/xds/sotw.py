"""The state-of-the-world ADS protocol state of one Envoy stream, without I/O.

Consul serves only Delta; SotW is here for Envoys bootstrapped with ``api_type: GRPC`` (older
templates, hand-written bootstraps). Each response carries every resource of its type that
Envoy asked for (all of them for clusters and listeners), versioned by a hash of the set.
Ordering and NACK handling match ``DeltaSession``: clusters, endpoints, listeners, routes;
one response in flight per type; listeners and routes wait for the cluster and endpoint
ACKs; a NACKed type frozen until the next snapshot. (Removals need no step of their own:
a response always carries the whole set.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from consulpy.xds.delta import ACK, NACK, STALE, SUBSCRIBE, UNKNOWN_TYPE, Outcome, format_nonce
from consulpy.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, Resource, Resources

ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
WAITS_FOR = {LISTENER: (CLUSTER, ENDPOINT), ROUTE: (CLUSTER, ENDPOINT)}
WILDCARD_TYPES = (CLUSTER, LISTENER)


@dataclass
class SotwTypeState:
    type_url: str
    requested: bool = False
    names: set[str] = field(default_factory=set)
    acked_version: str = ""
    last_nonce: str = ""
    nacked: bool = False
    last_error: str = ""

    @property
    def wildcard(self) -> bool:
        return (self.type_url in WILDCARD_TYPES and not self.names) or "*" in self.names


@dataclass(frozen=True)
class SotwPending:
    type_url: str
    nonce: str
    version: str


def set_version(resources: Mapping[str, Resource]) -> str:
    """A version for a whole response: a hash of its names and resource versions."""
    digest = hashlib.sha256()
    for name in sorted(resources):
        digest.update(f"{name}\0{resources[name].version}\0".encode())
    return digest.hexdigest()[:32]


class SotwSession:
    """SotW xDS bookkeeping for one stream (see module docstring)."""

    def __init__(self) -> None:
        self.types = {t: SotwTypeState(t) for t in ORDER}
        self.resources: Resources | None = None
        self.pending: dict[str, SotwPending] = {}
        self._counter = 0

    def set_resources(self, resources: Resources) -> None:
        self.resources = resources
        for st in self.types.values():
            st.nacked = False

    def on_request(self, req: discovery_pb2.DiscoveryRequest) -> Outcome:
        """ACK/NACK the response named by ``response_nonce``; a request answering an older
        response than the latest of its type is stale and ignored as a whole, as the
        protocol asks (Envoy sends a fresh one after reading the latest)."""
        st = self.types.get(req.type_url)
        if st is None:
            return Outcome(UNKNOWN_TYPE, req.type_url, req.response_nonce)
        outcome = Outcome(SUBSCRIBE, req.type_url, req.response_nonce)
        if req.response_nonce:
            if req.response_nonce != st.last_nonce:
                return Outcome(STALE, req.type_url, req.response_nonce)
            pending = self.pending.pop(st.type_url, None)
            if pending is not None:
                if req.HasField("error_detail"):
                    st.nacked = True
                    st.last_error = req.error_detail.message
                    outcome = Outcome(NACK, st.type_url, pending.nonce, req.error_detail.message)
                else:
                    st.acked_version = pending.version
                    st.last_error = ""
                    outcome = Outcome(ACK, st.type_url, pending.nonce)
        st.requested = True
        st.names = set(req.resource_names)
        return outcome

    def _desired(self, st: SotwTypeState) -> Mapping[str, Resource]:
        assert self.resources is not None
        available = self.resources.of_type(st.type_url)
        if st.wildcard:
            return available
        return {n: available[n] for n in st.names if n in available}

    def next_response(self) -> discovery_pb2.DiscoveryResponse | None:
        """The next response to send now, or None. Call it until it returns None."""
        if self.resources is None:
            return None
        busy = set(self.pending)  # in flight, or with changes not sent (blocked or NACKed)
        for type_url in ORDER:
            st = self.types[type_url]
            if not st.requested:
                continue
            desired = self._desired(st)
            version = set_version(desired)
            if version == st.acked_version:
                continue
            if (
                st.nacked
                or type_url in self.pending
                or busy.intersection(WAITS_FOR.get(type_url, ()))
            ):
                busy.add(type_url)
                continue
            self._counter += 1
            nonce = format_nonce(self._counter)
            resp = discovery_pb2.DiscoveryResponse(
                version_info=version, type_url=type_url, nonce=nonce
            )
            for name in sorted(desired):
                resp.resources.add().CopyFrom(desired[name].packed)
            st.last_nonce = nonce
            self.pending[type_url] = SotwPending(type_url, nonce, version)
            return resp
        return None

    def acked_version(self, type_url: str) -> str:
        return self.types[type_url].acked_version

    def in_sync(self) -> bool:
        if self.resources is None or self.pending:
            return False
        return all(
            set_version(self._desired(st)) == st.acked_version
            for st in self.types.values()
            if st.requested
        )
