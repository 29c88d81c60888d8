"""The leader's coordinate queue: last report per node wins, batches of update_batch_size,
at most update_max_batches per period, the surplus dropped (Consul's Coordinate endpoint)."""

from __future__ import annotations

from typing import Any

from consulpy.server.coordinates import CoordinateBatcher
from consulpy.state import commands as C
from consulpy.state.fsm import FSM
from consulpy.state.store import StateStore


class FakeServer:
    def __init__(self) -> None:
        self.store = StateStore()
        self.fsm = FSM(self.store)
        self.index = 0
        self.commands: list[dict[str, Any]] = []

    def now(self) -> float:
        return 0.0

    async def propose(self, cmd: dict[str, Any]) -> Any:
        self.commands.append(cmd)
        self.index += 1
        return self.fsm.apply_command(self.index, cmd)


def coord(x: float) -> dict[str, Any]:
    return {"Vec": [x] + [0.0] * 7, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


async def register(server: FakeServer, *nodes: str) -> None:
    for n in nodes:
        await server.propose(C.register({"Node": n, "Address": "10.0.0.1"}, ts=0.0))
    server.commands.clear()


async def test_last_report_wins_and_unknown_nodes_are_skipped() -> None:
    server = FakeServer()
    await register(server, "a")
    b = CoordinateBatcher(server)  # type: ignore[arg-type]
    b.queue("a", "", coord(0.1))
    b.queue("a", "", coord(0.2))
    b.queue("ghost", "", coord(0.3))
    await b.flush()
    assert len(server.commands) == 1 and len(server.commands[0]["updates"]) == 2
    assert [r["Node"] for r in server.store.coordinates.list()] == ["a"]
    assert server.store.coordinates.get("a")["Coord"] == coord(0.2)
    await b.flush()  # nothing queued: no log entry
    assert len(server.commands) == 1


async def test_batches_and_surplus_dropped() -> None:
    server = FakeServer()
    names = [f"n{i:02d}" for i in range(25)]
    await register(server, *names)
    b = CoordinateBatcher(server, update_batch_size=4, update_max_batches=3)  # type: ignore[arg-type]
    for i, n in enumerate(names):
        b.queue(n, "", coord(i / 1000))
    await b.flush()
    assert [len(c["updates"]) for c in server.commands] == [4, 4, 4]
    assert b.discarded == 13
    assert len(server.store.coordinates.list()) == 12


async def test_deregistering_a_node_deletes_its_coordinates_and_snapshot_keeps_them() -> None:
    server = FakeServer()
    await register(server, "a", "b")
    b = CoordinateBatcher(server)  # type: ignore[arg-type]
    b.queue("a", "", coord(0.1))
    b.queue("b", "", coord(0.2))
    await b.flush()
    restored = StateStore()
    restored.restore(server.store.snapshot())
    assert [r["Node"] for r in restored.coordinates.list()] == ["a", "b"]
    await server.propose(C.deregister({"Node": "a"}, ts=0.0))
    assert [r["Node"] for r in server.store.coordinates.list()] == ["b"]
