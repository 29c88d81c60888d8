"""MemoryLookup: latest snapshot per proxy, change notification, registration."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from consulpy.agent.proxylookup import MemoryLookup, PermissionDenied, UnknownProxy
from tests.xds import samples

PROXY = "web-sidecar-proxy"


async def test_watch_yields_current_then_changes_and_skips_intermediates() -> None:
    lookup = MemoryLookup()
    lookup.publish(samples.base(version="1"))
    watch = lookup.watch(PROXY)
    assert (await anext(watch)).version == "1"
    nxt = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)  # one loop turn (not a delay): the watcher is now parked
    assert not nxt.done()
    lookup.publish(samples.base(version="2"))
    lookup.publish(samples.base(version="3"))
    assert (await asyncio.wait_for(nxt, 5)).version == "3"  # "2" was superseded
    await watch.aclose()


async def test_registered_proxy_waits_for_its_first_snapshot() -> None:
    lookup = MemoryLookup()
    lookup.register(PROXY)
    await lookup.authorize(PROXY, "")
    watch = lookup.watch(PROXY)
    first = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)  # one loop turn (not a delay): the watcher is now parked
    assert not first.done()
    lookup.publish(samples.base(version="1"))
    assert (await asyncio.wait_for(first, 5)).version == "1"
    assert lookup.current(PROXY).version == "1" and lookup.proxies() == [PROXY]
    await watch.aclose()


async def test_deregister_ends_watches_and_refuses() -> None:
    lookup = MemoryLookup()
    lookup.publish(samples.base())
    watch = lookup.watch(PROXY)
    await anext(watch)
    nxt = asyncio.ensure_future(anext(watch))
    lookup.deregister(PROXY)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(nxt, 5)
    with pytest.raises(UnknownProxy):
        await lookup.authorize(PROXY, "")
    with pytest.raises(UnknownProxy):
        await anext(lookup.watch(PROXY))


async def test_authorizer_sync_and_async() -> None:
    def sync_auth(proxy_id: str, token: str) -> None:
        if token != "ok":
            raise PermissionDenied("no")

    async def async_auth(proxy_id: str, token: str) -> None:
        sync_auth(proxy_id, token)

    for auth in (sync_auth, async_auth):
        lookup = MemoryLookup(auth)
        lookup.publish(replace(samples.base()))
        await lookup.authorize(PROXY, "ok")
        with pytest.raises(PermissionDenied):
            await lookup.authorize(PROXY, "bad")
