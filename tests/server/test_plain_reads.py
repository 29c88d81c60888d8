"""A leader's plain read (`GET /v1/kv/<key>`: default consistency, no `?index`, ACLs off) is
answered by a short path: it must answer, refuse and record exactly as the full read path
does, with and without the leader's lease."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consulpy.metrics import METRICS
from consulpy.metrics.registry import COUNTER, SAMPLE
from consulpy.server.applier import InMemoryApplier
from consulpy.server.endpoints.kvs import KVSApply, KVSGet
from consulpy.server.errors import NoLeaderError, RequestError
from consulpy.server.query import QueryOptions
from consulpy.server.raft_applier import NotLeaderError
from consulpy.server.server import Server


class LeaseApplier(InMemoryApplier):
    """The dev applier with a lease that can lapse and a countable ReadIndex round."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lease = True
        self.leading = True
        self.barriers = 0
        self.lose_leadership_in_barrier = False

    def is_leader(self) -> bool:
        return self.leading

    def leader(self) -> tuple[str | None, str | None]:
        return super().leader() if self.leading else (None, None)

    def has_lease(self) -> bool:
        return self.lease

    async def barrier(self) -> None:
        self.barriers += 1
        if self.lose_leadership_in_barrier:
            self.leading = False
            raise NotLeaderError(None)


def make_server() -> tuple[Server, LeaseApplier]:
    s = Server(
        node_name="n1",
        node_id="0d3c6f4e-3a55-4b8e-8c35-36e0d6b0f0aa",
        datacenter="dc1",
        advertise_addr="127.0.0.1",
        server_port=0,
        rpc_hold_timeout=0.05,
    )
    applier = LeaseApplier(s.fsm, s.node_id, s.rpc_address)
    s.applier = applier
    return s, applier


def count(kind: str, name: str, labels: tuple[tuple[str, str], ...] = ()) -> int:
    series = METRICS.handle(kind, name, labels)
    return series.total_count + len(series.pending)


CALL = (
    ("method", "KVS.Get"),
    ("errored", "false"),
    ("request_type", "read"),
    ("rpc_type", "internal"),
    ("leader", "true"),
)


def test_plain_and_full_paths_answer_alike() -> None:
    async def go() -> None:
        s, _ = make_server()
        await s.apply("KVS.Apply", KVSApply("set", "k", b"v"))
        queries, calls = count(COUNTER, "rpc.query"), count(SAMPLE, "rpc.server.call", CALL)
        plain = await s.read("KVS.Get", KVSGet("k"), QueryOptions())  # the short path
        full = await s.read("KVS.Get", {"key": "k"}, QueryOptions())  # a map: the full path
        assert plain == full
        assert plain[1][0]["Value"] == b"v"
        assert count(COUNTER, "rpc.query") == queries + 2
        assert count(SAMPLE, "rpc.server.call", CALL) == calls + 2
        assert await s.read("KVS.Get", KVSGet("missing"), QueryOptions()) == await s.read(
            "KVS.Get", {"key": "missing"}, QueryOptions()
        )

    asyncio.run(go())


def test_plain_path_refuses_what_the_full_path_refuses() -> None:
    async def go() -> None:
        s, _ = make_server()
        errored = tuple((k, "true" if k == "errored" else v) for k, v in CALL)
        before = count(COUNTER, "rpc.query"), count(SAMPLE, "rpc.server.call", errored)
        with pytest.raises(RequestError) as plain:
            await s.read("KVS.Get", KVSGet("k\ud800"), QueryOptions())
        with pytest.raises(RequestError) as full:
            await s.read("KVS.Get", {"key": "k\ud800"}, QueryOptions())
        assert str(plain.value) == str(full.value)
        # a payload refused before the call counts as no call, on either path
        after = count(COUNTER, "rpc.query"), count(SAMPLE, "rpc.server.call", errored)
        assert after == before

    asyncio.run(go())


def test_a_leader_without_its_lease_confirms_leadership_first() -> None:
    async def go() -> None:
        s, applier = make_server()
        await s.apply("KVS.Apply", KVSApply("set", "k", b"v"))
        applier.lease = False
        confirmed = count(SAMPLE, "rpc.consistentRead")
        meta, result = await s.read("KVS.Get", KVSGet("k"), QueryOptions())
        assert applier.barriers == 1
        assert count(SAMPLE, "rpc.consistentRead") == confirmed + 1
        assert result[0]["Value"] == b"v"
        assert meta.known_leader and meta.last_contact_ms == 0

    asyncio.run(go())


def test_leadership_lost_in_the_round_goes_the_full_way() -> None:
    async def go() -> None:
        s, applier = make_server()
        applier.lease = False
        applier.lose_leadership_in_barrier = True
        with pytest.raises(NoLeaderError):  # no leader to forward to within the hold time
            await s.read("KVS.Get", KVSGet("k"), QueryOptions())
        assert applier.barriers == 1

    asyncio.run(go())
