"""Real network faults under a checked workload.

Three servers and a client agent, each in its own namespace, while workers on every agent run
KV puts, reads (default and ?consistent), CAS and session locks. A seeded nemesis cuts links,
partitions with nftables (both ways, one way, non-transitive), and drops packets at random;
heals; repeats. At the end the cluster must serve writes again and the recorded history must be
linearizable. CONSULPY_NEMESIS_SECONDS sets the fault phase (60 in CI; 1800 for the long run
of docs/reliability.md), CONSULPY_NEMESIS_SEED the schedule.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path

import pytest

from tests.netns.agents import NsAgent, eventually, formed, start_servers
from tests.netns.faults import Faults, Nemesis
from tests.netns.harness import Host, Network, in_netns
from tests.netns.workload import History, Worker
from tests.raft.linearizability import INF, check_history

SECONDS = float(os.environ.get("CONSULPY_NEMESIS_SECONDS", "60"))
SEED = int(os.environ.get("CONSULPY_NEMESIS_SEED", str(secrets.randbelow(1 << 30))))
WORKERS_PER_AGENT = 2


@pytest.mark.timeout(SECONDS + 240)  # the run's length plus start, recovery and the check
def test_nemesis_partitions_and_loss_keep_the_history_linearizable(
    net: Network, agents: list[NsAgent], tmp_path: Path
) -> None:
    servers = start_servers(net, tmp_path, agents)
    client_host = net.add_host("c1")
    join = [f"-retry-join={a.host.ip}" for a in servers]
    client = NsAgent(net, client_host, tmp_path, [f"-advertise={client_host.ip}", *join])
    agents.append(client)
    client.start()
    expected = {f"{a.host.ip}:8300" for a in servers}
    eventually(lambda: formed(servers, expected), what="3 voters and a leader")
    everyone = [*servers, client]
    eventually(
        lambda: all(
            a.host.json("PUT", f"/v1/kv/ready/{a.host.name}", b"1") is True
            and a.host.json("GET", "/v1/catalog/node/c1")
            for a in everyone
        ),
        what="every agent writes through the leader and sees the client",
    )

    faults = Faults(net)
    by_address = {f"{a.host.ip}:8300": a.host for a in servers}

    def leader() -> Host | None:
        """The leader as the first server that answers names it (None if none knows)."""
        for agent in servers:
            try:
                status, raw = agent.host.http("GET", "/v1/status/leader", timeout=2)
            except OSError:
                continue
            if status == 200 and json.loads(raw) in by_address:
                return by_address[json.loads(raw)]
        return None

    nemesis = Nemesis(faults, [a.host for a in servers], [client.host], SEED, leader)
    history = History()
    stop = threading.Event()
    workers = [
        Worker(len(everyone) * k + i, history, stop)
        for k in range(WORKERS_PER_AGENT)
        for i in range(len(everyone))
    ]
    threads: list[threading.Thread] = []
    for worker in workers:
        agent = everyone[worker.cid % len(everyone)]
        assert in_netns(agent.host.ns, worker.create_session), f"session on {agent.host.name}"

        def body(w: Worker = worker, ns: str = agent.host.ns) -> None:
            in_netns(ns, w.run)

        threads.append(threading.Thread(target=body, name=f"worker-{worker.cid}", daemon=True))
    try:
        for t in threads:
            t.start()
        # The schedule: a quiet start, then fault / heal rounds until the time is up. These
        # waits are the test's timeline, not synchronisation.
        clock = threading.Event()  # never set
        clock.wait(3)
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            nemesis.strike(history.now())
            clock.wait(nemesis.rng.uniform(3, 8))
            nemesis.heal(history.now())
            clock.wait(nemesis.rng.uniform(2, 5))
        nemesis.heal(history.now())
        # Healed: the cluster converges and every agent's writes succeed again.
        eventually(lambda: formed(servers, expected), timeout=60, what="a leader after healing")
        eventually(
            lambda: all(a.host.json("PUT", "/v1/kv/healed", b"1") is True for a in everyone),
            timeout=60,
            what="every agent writes after healing",
        )
        clock.wait(2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        faults.heal()

    ops = history.ops
    completed = [op for op in ops if op.ret != INF]
    kinds = history.kinds()
    schedule = "\n".join(f"  {s.at:7.1f}s {s.what}" for s in nemesis.steps)
    summary = (
        f"nemesis seed={SEED} faults={SECONDS:.0f}s run={history.now():.0f}s: {len(ops)} ops "
        f"({len(completed)} answered, {len(ops) - len(completed)} unknown), "
        f"{len(history.stale_reads)} stale reads; kinds={dict(sorted(kinds.items()))}; "
        f"errors={dict(history.errors)}\nschedule:\n{schedule}"
    )
    print(summary)
    assert all(not t.is_alive() for t in threads), "a worker did not stop"
    assert len(completed) > 200, f"too little work got done\n{summary}"
    for kind in ("put", "get", "cas_ok", "acquire_ok", "release_ok"):
        assert kinds[kind] > 0, f"no {kind} in the history\n{summary}"
    verdict = check_history(ops)
    print(f"linearizability verdict: {verdict}")
    assert verdict == (True, None), f"history of key {verdict[1]} is not linearizable\n{summary}"
    never_written = [
        v for v in history.stale_reads if v not in (None, "") and v not in history.written
    ]
    assert never_written == [], f"stale reads returned values nobody wrote: {never_written}"
