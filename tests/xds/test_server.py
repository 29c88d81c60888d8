"""The ADS server over real gRPC on 127.0.0.1, with an in-process client playing Envoy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
import pytest_asyncio
import structlog
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from consulpy.agent.proxylookup import MemoryLookup, PermissionDenied, Unauthenticated
from consulpy.agent.proxysnapshot import Endpoint
from consulpy.xds.resources import CLUSTER, ENDPOINT, LISTENER
from consulpy.xds.server import XDSServer
from tests.helpers import eventually
from tests.xds import samples

PROXY = "web-sidecar-proxy"
API = f"api.default.dc1.internal.{samples.TD}"
READ_TIMEOUT = 30  # a deadline, generous for a loaded 2-core machine


def node(proxy_id: str = PROXY, version: tuple[int, int, int] | None = (1, 40, 0)):
    n = base_pb2.Node(id=proxy_id, cluster="web", user_agent_name="envoy")
    if version is not None:
        v = n.user_agent_build_version.version
        v.major_number, v.minor_number, v.patch = version
    return n


def dreq(
    type_url: str,
    *,
    sub=(),
    unsub=(),
    nonce: str = "",
    error: str = "",
    first=False,
    initial=None,
    proxy_id: str = PROXY,
    version=(1, 40, 0),
):
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        resource_names_subscribe=list(sub),
        resource_names_unsubscribe=list(unsub),
        response_nonce=nonce,
        initial_resource_versions=initial or {},
    )
    if first:
        req.node.CopyFrom(node(proxy_id, version))
    if error:
        req.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return req


class Client:
    """One ADS stream as Envoy would drive it."""

    def __init__(self, channel: grpc.aio.Channel, token: str = "", sotw: bool = False) -> None:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        metadata = (("x-consul-token", token),) if token else None
        method = stub.StreamAggregatedResources if sotw else stub.DeltaAggregatedResources
        self.call = method(metadata=metadata)

    async def send(self, req) -> None:
        await self.call.write(req)

    async def read(self):
        resp = await asyncio.wait_for(self.call.read(), READ_TIMEOUT)
        assert resp is not grpc.aio.EOF, "stream ended"
        return resp

    async def error(self) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(self.call.read(), READ_TIMEOUT)
        return info.value

    async def sync(self, snapshot_resources: bool = True) -> dict[str, str]:
        """Initial handshake: CDS, EDS, LDS, each ACKed. Returns the last nonce per type."""
        await self.send(dreq(CLUSTER, first=True))
        cds = await self.read()
        assert cds.type_url == CLUSTER
        await self.send(dreq(CLUSTER, nonce=cds.nonce))
        eds_names = [r.name for r in cds.resources if r.name != "local_app"]
        await self.send(dreq(ENDPOINT, sub=eds_names))
        eds = await self.read()
        assert eds.type_url == ENDPOINT
        await self.send(dreq(ENDPOINT, nonce=eds.nonce))
        await self.send(dreq(LISTENER))
        lds = await self.read()
        assert lds.type_url == LISTENER
        await self.send(dreq(LISTENER, nonce=lds.nonce))
        return {CLUSTER: cds.nonce, ENDPOINT: eds.nonce, LISTENER: lds.nonce}


@pytest_asyncio.fixture
async def env() -> AsyncIterator[tuple[XDSServer, MemoryLookup, grpc.aio.Channel]]:
    lookup = MemoryLookup()
    server = XDSServer(lookup)
    port = await server.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, lookup, channel
    finally:
        await server.stop()
        await channel.close()


def snapshot(version: str = "1", **changes):
    return replace(samples.tcp_default_allow(), version=version, **changes)


async def test_delta_handshake_and_push_on_change(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    nonces = await client.sync()
    assert nonces == {CLUSTER: "00000001", ENDPOINT: "00000002", LISTENER: "00000003"}
    assert await server.wait_applied(PROXY, "1", READ_TIMEOUT)
    [status] = server.streams(PROXY)
    assert status.protocol == "delta" and status.envoy_version == "1.40.0" and status.acks == 3

    # An endpoint change is an EDS push and nothing else.
    changed = snapshot("2", upstreams=(samples.api_upstream(endpoints=(Endpoint("10.2.2.2", 1),)),))
    lookup.publish(changed)
    resp = await client.read()
    assert (resp.type_url, resp.nonce, [r.name for r in resp.resources]) == (
        ENDPOINT,
        "00000004",
        [API],
    )
    assert resp.system_version_info == "2"
    # ...except that the db upstream disappeared too: its listener goes, then its cluster.
    await client.send(dreq(ENDPOINT, nonce=resp.nonce))
    lds = await client.read()
    assert lds.type_url == LISTENER and list(lds.removed_resources) == ["db?dc=dc2:127.0.0.1:9192"]
    await client.send(dreq(LISTENER, nonce=lds.nonce))
    cds = await client.read()
    assert cds.type_url == CLUSTER and len(cds.removed_resources) == 1
    # Envoy drops the endpoints subscription of a removed cluster.
    await client.send(dreq(ENDPOINT, unsub=list(cds.removed_resources)))
    await client.send(dreq(CLUSTER, nonce=cds.nonce))
    assert await server.wait_applied(PROXY, "2", READ_TIMEOUT)


async def test_nothing_is_sent_before_the_first_snapshot(env) -> None:
    server, lookup, channel = env
    lookup.register(PROXY)
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True))
    await eventually(lambda: len(server.streams(PROXY)) == 1, what="stream opened")
    lookup.publish(snapshot())
    first = await client.read()  # the very first message is the CDS response to the snapshot
    assert first.type_url == CLUSTER and first.nonce == "00000001"


async def test_nack_is_logged_and_freezes_the_type(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True))
    cds = await client.read()
    with structlog.testing.capture_logs() as logs:
        await client.send(dreq(CLUSTER, nonce=cds.nonce, error="connect_timeout: must be > 0"))
        await eventually(lambda: server.streams(PROXY)[0].nacks == 1, what="nack seen")
    [entry] = [e for e in logs if e["event"].startswith("xds nack")]
    assert entry["error"] == "connect_timeout: must be > 0" and entry["type"] == "CDS"
    assert entry["log_level"] == "warning"
    status = server.streams(PROXY)[0]
    assert status.last_nack == "connect_timeout: must be > 0" and not status.in_sync

    # Envoy re-requesting does not bring the rejected clusters back; the next snapshot does,
    # and it is the very next message on the stream.
    await client.send(dreq(CLUSTER, sub=["*"]))
    lookup.publish(snapshot("2", local_port=7000))
    again = await client.read()
    assert again.type_url == CLUSTER and again.nonce == "00000002"
    assert again.system_version_info == "2"


async def test_stale_nonce_is_ignored(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True))
    cds = await client.read()
    await client.send(dreq(CLUSTER, nonce="0000beef"))  # not ours: not an ACK
    await client.send(dreq(LISTENER))
    await eventually(lambda: server.streams(PROXY)[0].session.types[LISTENER].requested)
    assert server.streams(PROXY)[0].session.pending[CLUSTER].nonce == cds.nonce  # waiting
    await client.send(dreq(CLUSTER, nonce=cds.nonce))
    nxt = await client.read()
    assert nxt.nonce == "00000002" and nxt.type_url == LISTENER


async def test_reconnect_sends_only_what_envoy_lacks(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    first = Client(channel)
    await first.sync()
    held = {t: server.streams(PROXY)[0].session.acked(t) for t in (CLUSTER, ENDPOINT, LISTENER)}
    first.call.cancel()
    await eventually(lambda: not server.streams(PROXY), what="old stream closed")

    lookup.publish(snapshot("2", local_port=7000))  # only local_app changes
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True, initial=held[CLUSTER]))
    cds = await client.read()
    assert [r.name for r in cds.resources] == ["local_app"] and cds.nonce == "00000001"
    await client.send(dreq(CLUSTER, nonce=cds.nonce))
    await client.send(dreq(ENDPOINT, sub=list(held[ENDPOINT]), initial=held[ENDPOINT]))
    await client.send(dreq(LISTENER, initial=held[LISTENER]))
    assert await server.wait_applied(PROXY, "2", READ_TIMEOUT)
    assert server.streams(PROXY)[0].acks == 1  # nothing else had to be sent


async def test_unknown_proxy_is_refused(env) -> None:
    _, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True, proxy_id="ghost-sidecar-proxy"))
    err = await client.error()
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "ghost-sidecar-proxy" in err.details() and "not registered" in err.details()


async def test_node_id_required(env) -> None:
    _, _, channel = env
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True, proxy_id=""))
    err = await client.error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "node.id" in err.details()


async def test_too_old_envoy_is_refused(env) -> None:
    _, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    await client.send(dreq(CLUSTER, first=True, version=(1, 13, 1)))
    err = await client.error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "1.13.1" in err.details()


async def test_token_is_checked() -> None:
    def authorizer(proxy_id: str, token: str) -> None:
        if token == "":
            raise Unauthenticated("ACL not found")
        if token != "good":
            raise PermissionDenied(f'token lacks service:write on "web" for {proxy_id}')

    lookup = MemoryLookup(authorizer)
    lookup.publish(snapshot())
    server = XDSServer(lookup)
    port = await server.start("127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for token, code in (
                ("", grpc.StatusCode.UNAUTHENTICATED),
                ("bad", grpc.StatusCode.PERMISSION_DENIED),
            ):
                client = Client(channel, token=token)
                await client.send(dreq(CLUSTER, first=True))
                assert (await client.error()).code() == code
            client = Client(channel, token="good")
            await client.send(dreq(CLUSTER, first=True))
            assert (await client.read()).type_url == CLUSTER
    finally:
        await server.stop()


async def test_deregistration_ends_the_stream(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    await client.sync()
    assert await server.wait_applied(PROXY, "1", READ_TIMEOUT)
    lookup.deregister(PROXY)
    err = await client.error()
    assert err.code() == grpc.StatusCode.ABORTED and "deregistered" in err.details()
    await eventually(lambda: not server.streams(), what="stream gone")


async def test_unbuildable_snapshot_keeps_the_previous_config(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel)
    await client.sync()
    broken = replace(
        samples.base(version="2"),
        upstreams=(replace(samples.api_upstream(), targets=()),),
    )
    with structlog.testing.capture_logs() as logs:
        lookup.publish(broken)
        await eventually(
            lambda: any(e["event"].startswith("xds cannot build") for e in logs),
            what="build error logged",
        )
    assert server.streams(PROXY)[0].snapshot_version == "1"
    lookup.publish(snapshot("3", local_port=7000))
    resp = await client.read()
    assert resp.system_version_info == "3"


async def test_sotw_stream(env) -> None:
    server, lookup, channel = env
    lookup.publish(snapshot())
    client = Client(channel, sotw=True)
    req = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
    req.node.CopyFrom(node())
    await client.send(req)
    cds = await client.read()
    assert cds.type_url == CLUSTER and cds.nonce == "00000001" and len(cds.resources) == 3
    await client.send(
        discovery_pb2.DiscoveryRequest(
            type_url=CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
        )
    )
    await client.send(discovery_pb2.DiscoveryRequest(type_url=ENDPOINT, resource_names=[API]))
    eds = await client.read()
    assert eds.type_url == ENDPOINT and len(eds.resources) == 1
    await client.send(
        discovery_pb2.DiscoveryRequest(
            type_url=ENDPOINT,
            resource_names=[API],
            version_info=eds.version_info,
            response_nonce=eds.nonce,
        )
    )
    await client.send(discovery_pb2.DiscoveryRequest(type_url=LISTENER))
    lds = await client.read()
    assert lds.type_url == LISTENER and len(lds.resources) == 3
    await client.send(
        discovery_pb2.DiscoveryRequest(
            type_url=LISTENER, version_info=lds.version_info, response_nonce=lds.nonce
        )
    )
    assert await server.wait_applied(PROXY, "1", READ_TIMEOUT)
    assert server.streams(PROXY)[0].protocol == "sotw"


async def test_broken_lookup_fails_the_stream() -> None:
    class Broken(MemoryLookup):
        async def watch(self, proxy_id: str):
            raise RuntimeError("catalog unavailable")
            yield  # an async generator

    lookup = Broken()
    lookup.register(PROXY)
    server = XDSServer(lookup)
    port = await server.start("127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            client = Client(channel)
            await client.send(dreq(CLUSTER, first=True))
            err = await client.error()
            assert err.code() == grpc.StatusCode.INTERNAL
            assert "catalog unavailable" in err.details()
    finally:
        await server.stop()
