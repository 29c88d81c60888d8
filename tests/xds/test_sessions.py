"""The Delta and SotW protocol state machines, driven without gRPC."""

from __future__ import annotations

from dataclasses import replace

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from consulpy.agent.proxysnapshot import Endpoint
from consulpy.xds.delta import ACK, NACK, STALE, SUBSCRIBE, UNKNOWN_TYPE, DeltaSession
from consulpy.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, build, short
from consulpy.xds.sotw import SotwSession
from tests.xds import samples

API = f"api.default.dc1.internal.{samples.TD}"
V1 = f"v1.api.default.dc1.internal.{samples.TD}"
V2 = f"v2.api.default.dc1.internal.{samples.TD}"


def dreq(type_url: str, *, sub=(), unsub=(), nonce: str = "", error: str = "", initial=None):
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        resource_names_subscribe=list(sub),
        resource_names_unsubscribe=list(unsub),
        response_nonce=nonce,
        initial_resource_versions=initial or {},
    )
    if error:
        req.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return req


def names(resp) -> list[str]:
    return [r.name for r in resp.resources]


class Envoyish:
    """Plays Envoy's side of a delta stream: ACKs everything and subscribes to the endpoints
    and routes of what it receives, as Envoy does."""

    def __init__(self, session: DeltaSession) -> None:
        self.s = session
        self.log: list[tuple[str, list[str], list[str]]] = []

    def pump(self) -> None:
        while (resp := self.s.next_response()) is not None:
            self.log.append((short(resp.type_url), names(resp), list(resp.removed_resources)))
            sub: list[str] = []
            if resp.type_url == CLUSTER:
                sub = [n for n in names(resp) if n != "local_app"]
                self.s.on_request(dreq(CLUSTER, nonce=resp.nonce))
                if sub:
                    self.s.on_request(dreq(ENDPOINT, sub=sub))
            elif resp.type_url == LISTENER:
                self.s.on_request(dreq(LISTENER, nonce=resp.nonce))
                routes = [r for r in ("api",) if any(n.startswith("api:") for n in names(resp))]
                if routes and self.s.resources and self.s.resources.of_type(ROUTE):
                    self.s.on_request(dreq(ROUTE, sub=routes))
            else:
                self.s.on_request(dreq(resp.type_url, nonce=resp.nonce))


def test_initial_push_order_and_nonces() -> None:
    s = DeltaSession()
    s.on_request(dreq(CLUSTER))
    s.on_request(dreq(LISTENER))
    assert s.next_response() is None  # no snapshot yet: nothing is sent
    s.set_resources(build(samples.http_routes()))
    first = s.next_response()
    assert first.type_url == CLUSTER and first.nonce == "00000001"
    assert sorted(names(first)) == sorted(["local_app", API, V1, V2])
    assert s.next_response() is None  # CDS in flight; EDS not subscribed; LDS waits
    assert s.on_request(dreq(CLUSTER, nonce="00000001")).kind == ACK
    # No endpoint is subscribed (so none is in flight): nothing holds the listeners back.
    lds = s.next_response()
    assert lds.type_url == LISTENER and lds.nonce == "00000002"
    s.on_request(dreq(LISTENER, nonce="00000002"))
    s.on_request(dreq(ENDPOINT, sub=[API, V1, V2]))
    s.on_request(dreq(ROUTE, sub=["api"]))
    eds = s.next_response()
    assert eds.type_url == ENDPOINT and sorted(names(eds)) == sorted([API, V1, V2])
    s.on_request(dreq(ENDPOINT, nonce=eds.nonce))
    rds = s.next_response()
    assert rds.type_url == ROUTE and names(rds) == ["api"] and rds.nonce == "00000004"
    s.on_request(dreq(ROUTE, nonce=rds.nonce))
    assert s.next_response() is None
    assert s.in_sync()


def test_change_pushes_only_what_changed_in_order() -> None:
    s = DeltaSession()
    env = Envoyish(s)
    s.on_request(dreq(CLUSTER))
    s.on_request(dreq(LISTENER))
    snap = samples.tcp_default_allow()
    s.set_resources(build(snap))
    env.pump()
    assert [entry[0] for entry in env.log] == ["CDS", "EDS", "LDS"]
    assert s.in_sync()

    env.log.clear()
    moved = replace(
        snap,
        version="2",
        upstreams=(samples.api_upstream(endpoints=(Endpoint("10.9.9.9", 21000),)),),
        intentions=(),
    )
    s.set_resources(build(moved))
    env.pump()
    # The db upstream is gone: listener removed before its cluster, cluster before endpoints
    # (this Envoy stand-in does not unsubscribe the endpoints of a removed cluster).
    db = f"db.default.dc2.internal.{samples.TD}"
    assert env.log == [
        ("EDS", [API], []),
        ("LDS", ["public_listener:0.0.0.0:21000"], ["db?dc=dc2:127.0.0.1:9192"]),
        ("CDS", [], [db]),
        ("EDS", [], [db]),
    ]
    assert s.in_sync()


def test_replaced_cluster_gets_its_endpoints_again() -> None:
    s = DeltaSession()
    env = Envoyish(s)
    s.on_request(dreq(CLUSTER))
    s.on_request(dreq(LISTENER))
    snap = samples.tcp_default_allow()
    s.set_resources(build(snap))
    env.pump()
    env.log.clear()
    # A new leaf changes every upstream cluster (and the public listener), not the endpoints.
    s.set_resources(build(replace(snap, leaf_cert_pem="NEW LEAF")))
    env.pump()
    kinds = [(k, sorted(n)) for k, n, _ in env.log]
    assert kinds[0][0] == "CDS" and "local_app" not in kinds[0][1]
    assert kinds[1] == ("EDS", sorted([API, f"db.default.dc2.internal.{samples.TD}"]))
    assert kinds[2] == ("LDS", ["public_listener:0.0.0.0:21000"])


def test_endpoints_of_a_replaced_cluster_do_not_wait_for_the_cluster_ack() -> None:
    """Envoy holds the CDS ACK until an updated cluster is warm, and it warms only once its
    endpoints arrive: they must follow the clusters without waiting for that ACK."""
    s = DeltaSession()
    env = Envoyish(s)
    s.on_request(dreq(CLUSTER))
    s.on_request(dreq(LISTENER))
    snap = samples.tcp_default_allow()
    s.set_resources(build(snap))
    env.pump()
    s.set_resources(build(replace(snap, leaf_cert_pem="NEW LEAF", version="2")))
    cds = s.next_response()
    assert cds.type_url == CLUSTER
    eds = s.next_response()  # CDS still unacknowledged
    assert eds.type_url == ENDPOINT and sorted(names(eds)) == sorted(
        [API, f"db.default.dc2.internal.{samples.TD}"]
    )
    assert s.next_response() is None  # the listener waits for both ACKs
    s.on_request(dreq(ENDPOINT, nonce=eds.nonce))
    assert s.next_response() is None
    s.on_request(dreq(CLUSTER, nonce=cds.nonce))
    assert s.next_response().type_url == LISTENER


def test_cluster_removal_waits_until_listeners_are_done() -> None:
    s = DeltaSession()
    env = Envoyish(s)
    s.on_request(dreq(CLUSTER))
    s.on_request(dreq(LISTENER))
    snap = samples.tcp_default_allow()
    s.set_resources(build(snap))
    env.pump()
    # The db upstream goes away and api's endpoints change.
    s.set_resources(build(replace(snap, upstreams=(samples.api_upstream(endpoints=()),))))
    eds = s.next_response()
    assert eds.type_url == ENDPOINT
    assert s.next_response() is None  # not the listener (waits for EDS), not the cluster
    s.on_request(dreq(ENDPOINT, nonce=eds.nonce))
    lds = s.next_response()
    assert list(lds.removed_resources) == ["db?dc=dc2:127.0.0.1:9192"]
    assert s.next_response() is None  # the cluster goes only once the listener is gone
    s.on_request(dreq(LISTENER, nonce=lds.nonce))
    cds = s.next_response()
    assert list(cds.removed_resources) == [f"db.default.dc2.internal.{samples.TD}"]


def test_nack_freezes_the_type_until_next_snapshot() -> None:
    s = DeltaSession()
    s.on_request(dreq(CLUSTER))
    s.on_request(dreq(LISTENER))
    snap = samples.base()
    s.set_resources(build(snap))
    cds = s.next_response()
    s.on_request(dreq(CLUSTER, nonce=cds.nonce))
    lds = s.next_response()
    out = s.on_request(dreq(LISTENER, nonce=lds.nonce, error="bad listener"))
    assert out.kind == NACK and out.error == "bad listener"
    assert s.types[LISTENER].known == {}  # Envoy kept what it had before: nothing
    assert s.next_response() is None  # frozen, and nothing else to send
    assert not s.in_sync()
    # A re-subscription does not unfreeze it...
    s.on_request(dreq(LISTENER, sub=["*"]))
    assert s.next_response() is None
    # ...a new snapshot does, and clusters still go first.
    s.set_resources(build(replace(snap, version="2", local_port=9999)))
    assert s.next_response().type_url == CLUSTER


def test_stale_and_unknown_nonces_are_ignored() -> None:
    s = DeltaSession()
    s.on_request(dreq(CLUSTER))
    s.set_resources(build(samples.base()))
    cds = s.next_response()
    assert s.on_request(dreq(CLUSTER, nonce="000000ff")).kind == STALE
    assert s.pending[CLUSTER].nonce == cds.nonce  # still waiting for the real ACK
    assert s.on_request(dreq(LISTENER, nonce=cds.nonce)).kind == STALE  # wrong type
    assert s.on_request(dreq(CLUSTER, nonce=cds.nonce)).kind == ACK
    assert s.on_request(dreq(CLUSTER, nonce=cds.nonce)).kind == STALE  # ACKed already
    assert s.on_request(dreq("type.googleapis.com/x.Secret")).kind == UNKNOWN_TYPE
    assert s.on_request(dreq(ENDPOINT, sub=[API])).kind == SUBSCRIBE


def test_reconnect_with_initial_versions_sends_only_the_difference() -> None:
    first = DeltaSession()
    env = Envoyish(first)
    first.on_request(dreq(CLUSTER))
    first.on_request(dreq(LISTENER))
    snap = samples.tcp_default_allow()
    first.set_resources(build(snap))
    env.pump()
    held = {t: first.acked(t) for t in (CLUSTER, ENDPOINT, LISTENER)}

    # The agent restarted; meanwhile one endpoint changed.
    s = DeltaSession()
    changed = replace(snap, upstreams=(samples.api_upstream(endpoints=()), *snap.upstreams[1:]))
    s.set_resources(build(changed))
    s.on_request(dreq(CLUSTER, initial=held[CLUSTER]))
    assert s.next_response() is None  # clusters unchanged
    s.on_request(dreq(ENDPOINT, sub=list(held[ENDPOINT]), initial=held[ENDPOINT]))
    eds = s.next_response()
    assert names(eds) == [API]
    s.on_request(dreq(ENDPOINT, nonce=eds.nonce))
    s.on_request(dreq(LISTENER, initial=held[LISTENER]))
    assert s.next_response() is None
    assert s.in_sync()


def test_initial_versions_of_unknown_resources_are_removed() -> None:
    s = DeltaSession()
    s.set_resources(build(samples.base()))
    s.on_request(dreq(CLUSTER, initial={"local_app": "old", "gone": "v"}))
    resp = s.next_response()
    assert names(resp) == ["local_app"] and list(resp.removed_resources) == []
    s.on_request(dreq(CLUSTER, nonce=resp.nonce))
    removal = s.next_response()
    assert removal.type_url == CLUSTER and list(removal.removed_resources) == ["gone"]


def test_unsubscribe_and_resubscribe() -> None:
    s = DeltaSession()
    s.set_resources(build(samples.tcp_default_allow()))
    s.on_request(dreq(ENDPOINT, sub=[API]))
    eds = s.next_response()
    s.on_request(dreq(ENDPOINT, nonce=eds.nonce, unsub=[API]))
    assert s.acked(ENDPOINT) == {}  # an ACK of a name it dropped at the same time
    assert s.next_response() is None
    s.on_request(dreq(ENDPOINT, sub=[API]))
    assert names(s.next_response()) == [API]  # subscribing again means "send it again"


def test_first_empty_wildcard_response() -> None:
    s = DeltaSession()
    s.set_resources(build(samples.base()))
    s.on_request(dreq(ROUTE, sub=["*"]))
    resp = s.next_response()  # Envoy waits for a first answer even when there is nothing
    assert resp.type_url == ROUTE and len(resp.resources) == 0


def sreq(type_url: str, names_=(), nonce: str = "", version: str = "", error: str = ""):
    req = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names_), response_nonce=nonce, version_info=version
    )
    if error:
        req.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return req


def test_sotw_flow() -> None:
    s = SotwSession()
    s.set_resources(build(samples.tcp_default_allow()))
    s.on_request(sreq(LISTENER))
    s.on_request(sreq(CLUSTER))
    cds = s.next_response()
    assert cds.type_url == CLUSTER and len(cds.resources) == 3 and cds.nonce == "00000001"
    assert s.next_response() is None
    s.on_request(sreq(CLUSTER, nonce=cds.nonce, version=cds.version_info))
    lds = s.next_response()  # EDS not requested yet: listeners may go
    assert lds.type_url == LISTENER
    # A request answering an older response of the same type is stale: ignored whole.
    assert s.on_request(sreq(LISTENER, nonce="00000000")).kind == STALE
    assert s.on_request(sreq(LISTENER, nonce=lds.nonce, error="nope")).kind == NACK
    s.on_request(sreq(ENDPOINT, [API]))
    eds = s.next_response()
    assert eds.type_url == ENDPOINT and len(eds.resources) == 1
    s.on_request(sreq(ENDPOINT, [API], nonce=eds.nonce, version=eds.version_info))
    assert s.next_response() is None  # LDS frozen by the NACK
    assert not s.in_sync()

    s.set_resources(build(samples.tcp_default_allow()))
    lds2 = s.next_response()  # same content: CDS/EDS already ACKed, LDS was rejected
    assert lds2.type_url == LISTENER
    s.on_request(sreq(LISTENER, nonce=lds2.nonce, version=lds2.version_info))
    assert s.next_response() is None and s.in_sync()
