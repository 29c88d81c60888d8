"""Gossip under 10% packet loss on every link: no live member is ever declared failed.

Three servers and three clients, each in its own namespace; every host drops 10% of what it
receives (nftables `numgen random`), so every packet between two agents is lost with
probability 0.1. SWIM alone would suspect members often; Lifeguard's indirect probes, refutation
and local health awareness must keep every member alive in every agent's view for the whole
run. Watched two ways: each agent's /v1/agent/members, polled, and the leader's log line for a
member failure (which would also turn serfHealth critical). Faster probing than Consul's LAN
defaults gives more probes per second of test. CONSULPY_GOSSIP_LOSS_SECONDS sets the run,
CONSULPY_GOSSIP_LOSS_PERCENT the loss (a high one shows the watchers do see failures).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.netns.agents import NsAgent, eventually, formed, start_servers
from tests.netns.faults import Faults
from tests.netns.harness import Network, in_netns

SECONDS = float(os.environ.get("CONSULPY_GOSSIP_LOSS_SECONDS", "45"))
LOSS = int(os.environ.get("CONSULPY_GOSSIP_LOSS_PERCENT", "10"))
GOSSIP = (
    '-hcl=gossip_lan { gossip_interval = "100ms" probe_interval = "500ms" probe_timeout = "250ms" }'
)


@pytest.mark.timeout(SECONDS + 240)  # the run's length plus start, recovery and the check
def test_ten_percent_loss_on_every_link_never_fails_a_live_member(
    net: Network, agents: list[NsAgent], tmp_path: Path
) -> None:
    servers = start_servers(net, tmp_path, agents, extra=[GOSSIP])
    clients = []
    for i in (1, 2, 3):
        host = net.add_host(f"c{i}")
        join = [f"-retry-join={a.host.ip}" for a in servers]
        agent = NsAgent(net, host, tmp_path, [f"-advertise={host.ip}", GOSSIP, *join])
        agents.append(agent)
        clients.append(agent.start())
    everyone = [*servers, *clients]
    names = {a.host.name for a in everyone}
    expected = {f"{a.host.ip}:8300" for a in servers}
    eventually(lambda: formed(servers, expected), what="3 voters and a leader")

    def all_alive(agent: NsAgent) -> bool:
        members = agent.host.json("GET", "/v1/agent/members")
        return {m["Name"]: m["Status"] for m in members} == dict.fromkeys(names, 1)

    eventually(lambda: all(all_alive(a) for a in everyone), what="6 members alive everywhere")

    faults = Faults(net)
    for agent in everyone:
        faults.loss(agent.host, LOSS)
    stop = threading.Event()
    seen_failed: list[tuple[str, str, int]] = []  # (observer, member, status)
    polls = [0]
    errors: list[str] = []

    def watch(agent: NsAgent) -> None:
        def loop() -> None:
            while not stop.is_set():
                url = "http://127.0.0.1:8500/v1/agent/members"
                try:
                    with urllib.request.urlopen(url, timeout=10) as resp:
                        members = json.loads(resp.read())
                except OSError as exc:  # the agent's own API: must always answer
                    errors.append(f"{agent.host.name}: {exc}")
                    return
                polls[0] += 1
                for m in members:
                    if m["Status"] != 1 or m["Name"] not in names:
                        seen_failed.append((agent.host.name, m["Name"], m["Status"]))
                stop.wait(0.2)  # the polling rate, not a synchronisation

        in_netns(agent.host.ns, loop)

    watchers = [threading.Thread(target=watch, args=(a,), daemon=True) for a in everyone]
    try:
        for t in watchers:
            t.start()
        stop.wait(SECONDS)  # the run's length: loss stays on while the watchers poll
    finally:
        stop.set()
        for t in watchers:
            t.join(30)
        dropped = {a.host.name: faults.dropped(a.host) for a in everyone}
        faults.heal()

    logs = "".join(a.proc.output() for a in servers)
    print(
        f"gossip under {LOSS}% loss: {SECONDS:.0f}s, {len(everyone)} agents, {polls[0]} "
        f"member polls, packets dropped per host {dropped}, failures seen {len(seen_failed)}"
    )
    assert all(not t.is_alive() for t in watchers)
    assert errors == [], f"an agent's API did not answer: {errors}"
    assert all(n > 0 for n in dropped.values()), f"the loss rules dropped nothing: {dropped}"
    assert polls[0] >= len(everyone) * SECONDS, "the watchers stopped polling"
    distinct = sorted(set(seen_failed))  # (observer, member, status), once each
    assert distinct == [], f"members reported not alive under {LOSS}% loss: {distinct}"
    assert "member failed" not in logs, "the leader saw a member fail"
    assert all(all_alive(a) for a in everyone)
