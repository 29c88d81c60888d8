"""Ten consulpy Serf members in one process over real UDP/TCP on 127.0.0.1 (LAN timings)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from consulpy.gossip.events import MemberEvent, MemberEventType, MemberStatus, UserEvent
from consulpy.gossip.serf import Serf, SerfConfig, SerfError
from tests.helpers import eventually

N = 10


async def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> float:
    return await eventually(cond, timeout, 0.05, what)


def status_of(s: Serf, name: str) -> MemberStatus | None:
    return next((m.status for m in s.members() if m.name == name), None)


def everyone_sees(serfs: list[Serf], name: str, status: MemberStatus) -> Callable[[], bool]:
    return lambda: all(status_of(s, name) == status for s in serfs if s.config.node_name != name)


def converged(serfs: list[Serf]) -> Callable[[], bool]:
    names = {s.config.node_name for s in serfs}
    return lambda: all(
        {m.name for m in s.members() if m.status == MemberStatus.ALIVE} >= names for s in serfs
    )


async def start(name: str, port: int = 0, **kw) -> Serf:
    s = Serf(SerfConfig(node_name=name, bind_addr="127.0.0.1", bind_port=port, **kw))
    await s.start()
    return s


@pytest.fixture
async def pool():
    serfs = [await start(f"n{i}", tags={"i": str(i)}) for i in range(N)]
    try:
        yield serfs
    finally:
        await asyncio.gather(*(s.shutdown() for s in serfs), return_exceptions=True)


async def join_all(serfs: list[Serf]) -> None:
    seed = f"127.0.0.1:{serfs[0].bound_port}"
    for s in serfs[1:]:
        assert await s.join([seed]) == 1


async def test_convergence_events_and_failure_detection(pool: list[Serf]) -> None:
    q = pool[0].subscribe()
    await join_all(pool)
    await wait_until(converged(pool), 10, "all ten members alive everywhere")
    # Member events arrive in order for each member: join first.
    seen: dict[str, list[MemberEventType]] = {}
    while not q.empty():
        ev = q.get_nowait()
        if isinstance(ev, MemberEvent):
            for m in ev.members:
                seen.setdefault(m.name, []).append(ev.type)
    assert set(seen) == {f"n{i}" for i in range(1, N)}  # n0 announced itself at start
    assert all(v[0] == MemberEventType.JOIN for v in seen.values())
    assert pool[3].members()[0].protocol_max == 5
    assert {m.name: m.tags for m in pool[5].members()}["n7"] == {"i": "7"}

    victim = pool.pop(7)
    await victim.shutdown()  # no leave: to the others this is a crash
    took = await wait_until(
        everyone_sees(pool, "n7", MemberStatus.FAILED), 30, "n7 failed everywhere"
    )
    assert took > 1.0  # suspicion must run its course; refutation had its chance
    st = pool[0].stats()
    assert st["failed"] == "1" and st["members"] == str(N)
    pool.append(victim)


async def test_graceful_leave_and_user_events(pool: list[Serf]) -> None:
    await join_all(pool)
    await wait_until(converged(pool), 10, "convergence")
    queues = [s.subscribe() for s in pool]
    await pool[2].user_event("deploy", b"v2", coalesce=False)
    with pytest.raises(SerfError, match="exceeds"):
        await pool[2].user_event("big", b"x" * 600, coalesce=False)

    def delivered(q: asyncio.Queue) -> bool:
        items = []
        while not q.empty():
            items.append(q.get_nowait())
        for it in items:
            q.put_nowait(it)
        return any(
            isinstance(e, UserEvent) and e.name == "deploy" and e.payload == b"v2" for e in items
        )

    await wait_until(lambda: all(delivered(q) for q in queues), 10, "event everywhere")
    await pool[4].leave()
    await wait_until(everyone_sees(pool, "n4", MemberStatus.LEFT), 10, "n4 left everywhere")
    await pool[4].shutdown()


async def test_rejoin_after_restart_with_new_incarnation(pool: list[Serf]) -> None:
    await join_all(pool)
    await wait_until(converged(pool), 10, "convergence")
    old = pool[6]
    port = old.bound_port
    await old.shutdown()
    others = [s for s in pool if s is not old]
    await wait_until(everyone_sees(others, "n6", MemberStatus.FAILED), 30, "n6 failed")
    old_inc = others[0].core.ml.node_map["n6"].incarnation
    new = await start("n6", port=port, tags={"i": "6", "gen": "2"})
    pool[6] = new
    assert await new.join([f"127.0.0.1:{pool[0].bound_port}"]) == 1
    await wait_until(everyone_sees(others, "n6", MemberStatus.ALIVE), 15, "n6 alive again")
    await wait_until(
        lambda: all(s.core.ml.node_map["n6"].incarnation > old_inc for s in others),
        10,
        "new incarnation everywhere",
    )
    assert {m.name: m.tags for m in others[0].members()}["n6"]["gen"] == "2"


async def test_queries_and_keyring_queries_in_process() -> None:
    from consulpy.gossip.keyring import generate_key

    key = generate_key()
    serfs = [await start(f"k{i}", encrypt_key=key) for i in range(3)]
    try:
        await join_all(serfs)
        await wait_until(converged(serfs), 10, "convergence")

        async def answer(s: Serf) -> None:
            async for ev in s.events():
                if getattr(ev, "name", None) == "whoami" and hasattr(ev, "respond"):
                    ev.respond(s.config.node_name.encode())

        tasks = [asyncio.create_task(answer(s)) for s in serfs]
        await asyncio.sleep(0)
        resp = await serfs[0].query("whoami", b"", request_ack=True, timeout=2.0)
        assert set(resp.acks) == {"k0", "k1", "k2"}
        assert resp.responses == {"k0": b"k0", "k1": b"k1", "k2": b"k2"}
        for t in tasks:
            t.cancel()
        report = await serfs[1].key_manager.list_keys()
        assert report.ok and report.keys == {key: 3}
        new = generate_key()
        assert (await serfs[2].key_manager.install_key(new)).ok
        assert (await serfs[0].key_manager.use_key(new)).ok
        bad = await serfs[0].key_manager.remove_key(new)
        assert not bad.ok and "primary" in next(iter(bad.messages.values()))
        assert (await serfs[0].key_manager.remove_key(key)).ok
        assert all(s.keyring.keys() == [s.keyring.primary()] for s in serfs)
        await wait_until(converged(serfs), 10, "still converged on the new key")
    finally:
        await asyncio.gather(*(s.shutdown() for s in serfs))


async def test_join_failure_is_a_clear_error() -> None:
    from consulpy.gossip.serf import JoinError

    s = await start("lonely")
    try:
        with pytest.raises(JoinError, match=r"127\.0\.0\.1:1"):
            await s.join(["127.0.0.1:1"])
    finally:
        await s.shutdown()


async def test_name_conflict_newcomer_loses_and_shuts_down() -> None:
    a = await start("dup")
    b = await start("other")
    c = await start("dup")  # same name, another port
    try:
        assert await b.join([f"127.0.0.1:{a.bound_port}"]) == 1
        await wait_until(converged([a, b]), 10, "a and b converged")
        # c joins through b: b already knows "dup" at a's address and says so when asked.
        await c.join([f"127.0.0.1:{b.bound_port}"])
        await wait_until(lambda: c.state == "shutdown", 15, "the newcomer to give up")
        assert a.state != "shutdown"
        assert {m.port for m in b.members() if m.name == "dup"} == {a.bound_port}
    finally:
        await asyncio.gather(*(s.shutdown() for s in (a, b, c)))


async def test_fallback_ping_to_a_closed_port_is_refused_not_timed_out() -> None:
    """The driver tells a refused connect (a host with nothing on that port: the agent is
    gone) from a timeout; the core fails the probe on it at once."""
    from consulpy.gossip import wire
    from consulpy.gossip.transport import ConnectionRefused, exchange
    from consulpy.util.ports import free_port

    port = free_port()
    with pytest.raises(ConnectionRefused):
        await exchange(("127.0.0.1", port), b"x", wire.Security(), 5.0)
