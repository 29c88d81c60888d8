"""`xds.update_max_per_second`: snapshots handed to xDS streams are paced by one token bucket
shared by every stream. A fake clock and a fake sleep: nothing here waits on the wall clock."""

from __future__ import annotations

import asyncio
import math

import grpc

from consulpy.agent.proxylookup import MemoryLookup
from consulpy.agent.proxysnapshot import Endpoint
from consulpy.xds.ratelimit import UpdateLimiter
from consulpy.xds.resources import ENDPOINT
from consulpy.xds.server import XDSServer
from tests.helpers import eventually
from tests.xds import samples
from tests.xds.test_server import PROXY, Client, dreq, snapshot


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_one_second_then_the_rate() -> None:
    clock = FakeClock()
    limiter = UpdateLimiter(4, clock=clock)
    # A full bucket: one second's worth goes at once, the next ones are spaced 1/rate apart.
    assert [limiter.reserve() for _ in range(4)] == [0, 0, 0, 0]
    assert [limiter.reserve() for _ in range(3)] == [0.25, 0.5, 0.75]
    clock.now += 1.0  # four tokens more: three paid the waiters' debt, one is free
    assert (limiter.reserve(), limiter.reserve()) == (0, 0.25)
    clock.now += 10.0  # idle: refills to the burst, no more
    assert [limiter.reserve() for _ in range(5)] == [0, 0, 0, 0, 0.25]


def test_reload_changes_the_rate_and_no_limit_never_waits() -> None:
    clock = FakeClock()
    limiter = UpdateLimiter(1, clock=clock)
    assert (limiter.reserve(), limiter.reserve()) == (0, 1.0)
    limiter.update(1)  # unchanged: the debt stays
    assert limiter.reserve() == 2.0
    limiter.update(2)  # a new rate starts from a full bucket
    assert [limiter.reserve() for _ in range(3)] == [0, 0, 0.5]
    limiter.update(math.inf)
    assert all(limiter.reserve() == 0 for _ in range(1000))


async def test_the_server_holds_a_push_until_the_limiter_lets_it_go() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await gate.wait()
        clock.now += delay

    limiter = UpdateLimiter(1, clock=clock, sleep=sleep)
    lookup = MemoryLookup()
    server = XDSServer(lookup, update_limiter=limiter)
    port = await server.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        lookup.publish(snapshot())
        client = Client(channel)
        await client.sync()  # the first snapshot took the one token
        assert await server.wait_applied(PROXY, "1", 30)
        endpoints = (samples.api_upstream(endpoints=(Endpoint("10.2.2.2", 1),)),)
        lookup.publish(snapshot("2", upstreams=endpoints))
        await eventually(lambda: limiter.waiting == 1, timeout=30, what="update held back")
        assert delays == [1.0]
        assert server.streams(PROXY)[0].snapshot_version == "1"  # not pushed yet
        gate.set()
        resp = await client.read()
        assert resp.type_url == ENDPOINT and resp.system_version_info == "2"
        await client.send(dreq(ENDPOINT, nonce=resp.nonce))
        assert limiter.waiting == 0
    finally:
        await server.stop()
        await channel.close()
