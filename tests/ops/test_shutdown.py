"""Shutdown: what each signal does for clients and servers (Consul's defaults), exit codes,
and open blocking queries closed promptly."""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request
from pathlib import Path

from tests.cli.agentproc import AgentProcess
from tests.helpers import eventually, eventually_value
from tests.ops.procs import BASE, DEV, get_json, serf_addr, start

OPEN_QUERIES = 2000


def _index(agent: AgentProcess) -> int:
    try:
        urllib.request.urlopen(f"http://{agent.http_addr}/v1/kv/never", timeout=30)
    except urllib.error.HTTPError as exc:  # 404 carries the index too
        return int(exc.headers["X-Consul-Index"])
    raise AssertionError("the key exists")


async def test_sigterm_with_open_blocking_queries_closes_them_and_exits() -> None:
    # One client IP holds them all: lift the per-client connection cap (200 by default).
    agent = start(*DEV, "-log-level=warn", "-hcl", "limits { http_max_conns_per_client = 0 }")
    host, port = agent.http_addr.split(":")
    index = _index(agent)
    request = (
        f"GET /v1/kv/never?index={index}&wait=5m HTTP/1.1\r\nHost: {agent.http_addr}\r\n\r\n"
    ).encode()
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(OPEN_QUERIES):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request)
            conns.append((reader, writer))
        await asyncio.gather(*(w.drain() for _, w in conns))
        # Every query is parked: a normal request still gets through behind them.
        assert get_json(agent, "/v1/agent/self")["Config"]["NodeName"]
        assert all(not r.at_eof() for r, _ in conns)
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, agent.proc.wait, 60)
        # A server does not leave on SIGTERM: "Graceful shutdown disabled", exit 1.
        assert code == 1, agent.output()
        await _said(agent, "Graceful shutdown disabled. Exiting")

        async def closed(reader: asyncio.StreamReader) -> bool:
            try:
                data = await asyncio.wait_for(reader.read(), 30)
            except ConnectionResetError:
                return False
            return data == b""  # EOF, no half-written response

        results = await asyncio.gather(*(closed(r) for r, _ in conns))
        assert sum(results) == OPEN_QUERIES
    finally:
        for _, writer in conns:
            writer.close()
        agent.kill()


async def _said(agent: AgentProcess, text: str) -> None:
    """The process has exited; its last lines may still be on their way through the pipe."""
    await eventually(lambda: text in agent.output(), what=repr(text))


def _status(observer: AgentProcess, name: str) -> str:
    for member in get_json(observer, "/v1/agent/members"):
        if member["Name"] == name:
            return {1: "alive", 2: "leaving", 3: "left", 4: "failed"}.get(member["Status"], "?")
    return "absent"


def _client(server: AgentProcess, name: str, *extra: str) -> AgentProcess:
    return start(
        *BASE,
        f"-node={name}",
        f"-retry-join={serf_addr(server)}",
        "-log-level=info",
        *extra,
    )


async def test_clients_leave_on_sigterm_and_sigint_unless_told_not_to(tmp_path: Path) -> None:
    server = start(*DEV, "-node=srv", "-log-level=warn")
    clients: list[AgentProcess] = []
    try:
        term = _client(server, "c-term", f"-data-dir={tmp_path / 'a'}")
        intr = _client(server, "c-int", f"-data-dir={tmp_path / 'b'}")
        stay = _client(
            server, "c-stay", f"-data-dir={tmp_path / 'c'}", "-hcl", "leave_on_terminate = false"
        )
        clients = [term, intr, stay]
        for name in ("c-term", "c-int", "c-stay"):
            await eventually(
                lambda n=name: _status(server, n) == "alive", timeout=30, what=f"{name} joined"
            )
        assert term.stop(signal.SIGTERM) == 0
        await _said(term, "Graceful exit completed")
        assert intr.stop(signal.SIGINT) == 0
        assert stay.stop(signal.SIGTERM) == 1
        await _said(stay, "Graceful shutdown disabled. Exiting")
        await eventually(lambda: _status(server, "c-term") == "left", what="c-term left")
        await eventually(lambda: _status(server, "c-int") == "left", what="c-int left")
        await eventually(
            lambda: _status(server, "c-stay") == "failed", timeout=60, what="c-stay failed"
        )
    finally:
        for agent in [*clients, server]:
            agent.kill()


async def test_servers_skip_leave_on_sigint_by_default_and_leave_raft_when_told(
    tmp_path: Path,
) -> None:
    first = start(*BASE, "-server", "-bootstrap", "-node=s1", f"-data-dir={tmp_path / 's1'}")
    others: list[AgentProcess] = []
    try:
        join = f"-retry-join={serf_addr(first)}"
        leaver = start(
            *BASE,
            "-server",
            "-node=s2",
            join,
            f"-data-dir={tmp_path / 's2'}",
            "-hcl",
            "skip_leave_on_interrupt = false",
        )
        stayer = start(*BASE, "-server", "-node=s3", join, f"-data-dir={tmp_path / 's3'}")
        others = [leaver, stayer]

        def voters() -> int:
            return len(get_json(first, "/v1/operator/raft/configuration")["Servers"])

        await eventually(lambda: voters() == 3, timeout=60, what="three Raft servers")
        assert leaver.stop(signal.SIGINT) == 0, leaver.output()[-3000:]
        await eventually(lambda: _status(first, "s2") == "left", what="s2 left")
        await eventually(lambda: voters() == 2, timeout=30, what="s2 out of Raft")
        assert stayer.stop(signal.SIGINT) == 1
        await _said(stayer, "Graceful shutdown disabled. Exiting")
        await eventually(lambda: _status(first, "s3") == "failed", timeout=60, what="s3 failed")
    finally:
        for agent in [*others, first]:
            agent.kill()


async def test_a_leaving_leader_removes_itself_from_raft(tmp_path: Path) -> None:
    flags = ("-server", "-bootstrap-expect=3", "-hcl", "skip_leave_on_interrupt = false")
    first = start(*BASE, *flags, "-node=l1", f"-data-dir={tmp_path / 'l1'}")
    agents = [first]
    try:
        join = f"-retry-join={serf_addr(first)}"
        for name in ("l2", "l3"):
            agents.append(
                start(*BASE, *flags, f"-node={name}", join, f"-data-dir={tmp_path / name}")
            )

        def leader() -> str:
            for agent in agents:
                try:
                    config = get_json(agent, "/v1/operator/raft/configuration")
                except Exception:
                    continue
                leaders = [s["Node"] for s in config["Servers"] if s["Leader"]]
                if len(config["Servers"]) == 3 and leaders:
                    return str(leaders[0])
            return ""

        # One read decides the leader: a second read may land mid-election and see none.
        name = await eventually_value(leader, timeout=60, what="a leader of three")
        leaving = next(a for a, n in zip(agents, ("l1", "l2", "l3"), strict=True) if n == name)
        assert leaving.stop(signal.SIGINT) == 0
        await _said(leaving, "Graceful exit completed")
        rest = [a for a in agents if a is not leaving]

        def two_voters_with_a_leader() -> bool:
            try:
                config = get_json(rest[0], "/v1/operator/raft/configuration")
            except Exception:
                return False
            names = {s["Node"] for s in config["Servers"]}
            return (
                name not in names
                and len(names) == 2
                and any(s["Leader"] for s in config["Servers"])
            )

        await eventually(two_voters_with_a_leader, timeout=30, what="the old leader removed")
        await eventually(lambda: _status(rest[0], name) == "left", what="the old leader left")
    finally:
        for agent in agents:
            agent.kill()
