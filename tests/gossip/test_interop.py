"""Interop with real Debian `serf agent` processes (memberlist 0.2.2, Serf protocol 5).

Agents use Serf's "local" timing profile on both sides to keep CI time down; the protocol and
every code path are the same as with the LAN defaults.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
from collections.abc import Callable

import pytest

from consulpy.gossip.keyring import generate_key
from consulpy.gossip.procs import SERF_BIN, AgentProcess
from consulpy.gossip.rpc import RPCError
from tests.gossip.helpers import all_see, cluster, eventually, sees

PROFILE = "local"
PUSH_PULL = 15.0  # memberlist DefaultLocalConfig PushPullInterval


def serf_cli(*args: str) -> str:
    out = subprocess.run([SERF_BIN, *args], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def listed(out: str, key: str, count: str = "3/3") -> bool:
    """``serf keys -list`` shows ``key`` installed on ``count`` members."""
    return re.search(rf"^{re.escape(key)}\s+\[{count}\]$", out, re.M) is not None


def agent(kind: str, name: str, **kw) -> AgentProcess:
    return AgentProcess(kind, name, profile=PROFILE, **kw)


async def test_join_both_ways_and_alive_past_push_pull() -> None:
    py1, go1, py2 = (
        agent("consulpy", "py1", tags={"role": "db"}),
        agent("serf", "go1"),
        agent("consulpy", "py2"),
    )
    async with cluster(py1, go1, py2) as agents:
        await py1.start()
        await go1.start(join=[py1.gossip_addr])  # a real serf joins us
        await py2.start(join=[go1.gossip_addr])  # we join a real serf
        names = ["py1", "go1", "py2"]
        await eventually(all_see(agents, names), 35, "every member alive everywhere")
        # Stay alive through push-pull rounds (full state exchange both ways).
        loop = asyncio.get_running_loop()
        end = loop.time() + PUSH_PULL + 2
        while loop.time() < end:
            assert await all_see(agents, names)()
            await asyncio.sleep(0.5)
        out = serf_cli("members", f"-rpc-addr={go1.rpc_addr}", "-detailed")
        assert "py1" in out and "role=db" in out and "Protocol Version: 5" in out
        out = serf_cli("members", f"-rpc-addr={py1.rpc_addr}")
        assert out.count("alive") == 3


async def test_kill9_detected_as_failed_on_both_sides() -> None:
    py1, py2 = agent("consulpy", "py1"), agent("consulpy", "py2")
    go1, go2 = agent("serf", "go1"), agent("serf", "go2")
    async with cluster(py1, py2, go1, go2) as agents:
        await py1.start()
        for a in (go1, go2, py2):
            await a.start(join=[py1.gossip_addr])
        await eventually(all_see(agents, ["py1", "py2", "go1", "go2"]), 35, "convergence")
        go2.kill9()
        py2.kill9()
        await eventually(
            all_see([py1, go1], ["go2", "py2"], "failed"),
            30,
            "kill -9 of a serf agent and of a consulpy agent seen as failed",
        )


async def test_graceful_leave_shows_left_both_ways() -> None:
    py1, py2, go1, go2 = (
        agent("consulpy", "py1"),
        agent("consulpy", "py2"),
        agent("serf", "go1"),
        agent("serf", "go2"),
    )
    async with cluster(py1, py2, go1, go2) as agents:
        await py1.start()
        for a in (go1, go2, py2):
            await a.start(join=[py1.gossip_addr])
        await eventually(all_see(agents, ["py1", "py2", "go1", "go2"]), 35, "convergence")
        assert "Graceful leave complete" in serf_cli("leave", f"-rpc-addr={py2.rpc_addr}")
        assert "Graceful leave complete" in serf_cli("leave", f"-rpc-addr={go2.rpc_addr}")
        await eventually(
            all_see([py1, go1], ["py2", "go2"], "left"), 15, "graceful leaves shown as left"
        )


async def test_user_events_cross_both_ways() -> None:
    py1, go1 = agent("consulpy", "py1"), agent("serf", "go1")
    async with cluster(py1, go1) as agents:
        await py1.start()
        await go1.start(join=[py1.gossip_addr])
        await eventually(all_see(agents, ["py1", "go1"]), 35, "convergence")
        got: dict[str, list[tuple[str, bytes]]] = {"py1": [], "go1": []}

        ready = {a.name: asyncio.Event() for a in agents}

        async def listen(a: AgentProcess) -> None:
            c = await a.client()
            async for rec in c.stream("user", ready[a.name]):
                got[a.name].append((rec["Name"], rec["Payload"]))

        tasks = [asyncio.create_task(listen(a)) for a in agents]
        try:
            for event in ready.values():  # both subscriptions acknowledged before firing
                await asyncio.wait_for(event.wait(), 10)
            serf_cli("event", f"-rpc-addr={go1.rpc_addr}", "-coalesce=false", "from-go", "g")
            serf_cli("event", f"-rpc-addr={py1.rpc_addr}", "-coalesce=false", "from-py", "p")

            async def both_delivered() -> bool:
                return all({("from-go", b"g"), ("from-py", b"p")} <= set(v) for v in got.values())

            await eventually(both_delivered, 10, "user events delivered on both sides")
        finally:
            for t in tasks:
                t.cancel()


async def test_serf_query_is_acked_by_consulpy_members() -> None:
    py1, go1 = agent("consulpy", "py1"), agent("serf", "go1")
    async with cluster(py1, go1) as agents:
        await py1.start()
        await go1.start(join=[py1.gossip_addr])
        await eventually(all_see(agents, ["py1", "go1"]), 35, "convergence")
        out = serf_cli("query", f"-rpc-addr={go1.rpc_addr}", "-timeout=2s", "uptime", "x")
        assert "Ack from 'py1'" in out and "Total Acks: 2" in out
        out = serf_cli("query", f"-rpc-addr={py1.rpc_addr}", "-timeout=2s", "uptime", "x")
        assert "Ack from 'go1'" in out and "Total Acks: 2" in out


async def test_encryption_same_key_joins_other_key_does_not_and_keys_work() -> None:
    key, other = generate_key(), generate_key()
    py1 = agent("consulpy", "py1", encrypt=key)
    go1 = agent("serf", "go1", encrypt=key)
    py2 = agent("consulpy", "py2", encrypt=key)
    bad_go = agent("serf", "bad-go", encrypt=other)
    bad_py = agent("consulpy", "bad-py", encrypt=other)
    plain = agent("serf", "plain")
    async with cluster(py1, go1, py2, bad_go, bad_py, plain):
        await py1.start()
        await go1.start(join=[py1.gossip_addr])
        await py2.start(join=[go1.gossip_addr])
        await eventually(all_see([py1, go1, py2], ["py1", "go1", "py2"]), 35, "convergence")
        for outsider in (bad_go, bad_py, plain):
            await outsider.start()
            c = await outsider.client()
            try:
                with pytest.raises(RPCError):
                    await c.call("join", {"Existing": [py1.gossip_addr], "Replay": False})
            finally:
                await c.close()
        ms = await py1.members()
        assert set(ms) == {"py1", "go1", "py2"}

        # serf keys against the mixed cluster: list, install, use, remove. A key command is a
        # Serf query, delivered by gossip on a best-effort basis: with the "local" profile
        # (RetransmitMult 2, three members) a query can be piggybacked twice to the same member
        # and miss the third, and serf then reports "2/3 nodes". Real serf behaves the same, so
        # each step is retried (all of them are idempotent) until every member answers.
        async def keys(*args: str, until: Callable[[str], bool]) -> str:
            out = ""

            async def answered() -> bool:
                nonlocal out
                out = await asyncio.to_thread(serf_cli, "keys", *args)
                return until(out)

            await eventually(answered, 20, f"serf keys {' '.join(args)}", interval=0.2)
            return out

        await keys(f"-rpc-addr={go1.rpc_addr}", "-list", until=lambda o: listed(o, key))
        new = base64.b64encode(os.urandom(16)).decode()
        await keys(
            f"-rpc-addr={go1.rpc_addr}",
            "-install",
            new,
            until=lambda o: "Successfully installed key" in o,
        )
        await keys(
            f"-rpc-addr={py1.rpc_addr}",
            "-list",
            until=lambda o: listed(o, new) and listed(o, key),
        )
        await keys(
            f"-rpc-addr={py2.rpc_addr}",
            "-use",
            new,
            until=lambda o: "Successfully changed primary key" in o,
        )
        await keys(
            f"-rpc-addr={go1.rpc_addr}",
            "-remove",
            key,
            until=lambda o: "Successfully removed key" in o,
        )
        await keys(
            f"-rpc-addr={go1.rpc_addr}",
            "-list",
            until=lambda o: key not in o and listed(o, new),
        )
        # Everyone still talks (now with the new primary key).
        await eventually(all_see([py1, go1, py2], ["py1", "go1", "py2"]), 10, "still alive")
        await sees(py1, "go1", "alive")()
