"""Restarting an agent: it finds its cluster again from the members it knew (a gossip snapshot
in its data dir), without a join address; after a graceful leave it does so only with
rejoin_after_leave (`-rejoin`), as Consul."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli.agentproc import AgentProcess
from tests.helpers import eventually
from tests.ops.procs import BASE, DEV, get_json, serf_addr, start


def _status(observer: AgentProcess, name: str) -> str:
    for member in get_json(observer, "/v1/agent/members"):
        if member["Name"] == name:
            return {1: "alive", 2: "leaving", 3: "left", 4: "failed"}.get(member["Status"], "?")
    return "none"


def _client(data: Path, *extra: str) -> AgentProcess:
    return start(*BASE, "-node=c1", f"-data-dir={data}", "-log-level=info", *extra)


async def test_restart_rejoins_known_members_unless_it_left(tmp_path: Path) -> None:
    server = start(*DEV, "-node=srv", "-log-level=warn")
    data = tmp_path / "c1"
    agents = [server]
    try:
        first = _client(data, f"-retry-join={serf_addr(server)}")
        agents.append(first)
        await eventually(lambda: _status(server, "c1") == "alive", timeout=30, what="c1 joined")
        assert first.stop(signal.SIGTERM) == 0  # a client leaves on SIGTERM
        await eventually(lambda: _status(server, "c1") == "left", timeout=30, what="c1 left")

        # left gracefully: no rejoin by default
        stays_out = _client(data)
        agents.append(stays_out)
        await eventually(
            lambda: "not rejoining the previously known members" in stays_out.output(),
            timeout=30,
            what="the decision not to rejoin",
        )
        assert [m["Name"] for m in get_json(stays_out, "/v1/agent/members")] == ["c1"]
        stays_out.kill()

        # -rejoin: back in the cluster from the snapshot alone
        rejoins = _client(data, "-rejoin")
        agents.append(rejoins)
        await eventually(lambda: _status(server, "c1") == "alive", timeout=30, what="rejoined")
        await eventually(
            lambda: "rejoined the previously known members" in rejoins.output(),
            what="the rejoin recorded",
        )

        # a crash is not a leave: the next start rejoins without being told
        # (on its old gossip port: a failed node may not come back from a new address at once)
        port = serf_addr(rejoins).rsplit(":", 1)[1]
        rejoins.kill()
        await eventually(lambda: _status(server, "c1") == "failed", timeout=60, what="c1 failed")
        after_crash = _client(data, f"-serf-lan-port={port}")
        agents.append(after_crash)
        await eventually(lambda: _status(server, "c1") == "alive", timeout=30, what="back")
    finally:
        for agent in agents:
            agent.kill()
