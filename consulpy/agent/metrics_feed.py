"""What an agent feeds the metrics registry beyond what its parts record themselves: the
registry handed to the Raft and gossip libraries (which import nothing from consulpy), and
the gauges refreshed once a second (Consul emits these on a timer too)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from consulpy.metrics import Registry

if TYPE_CHECKING:
    from consulpy.agent.agent import Agent


def connect(agent: Agent, registry: Registry) -> Callable[[], None]:
    """Hand `registry` to the agent's Raft node and gossip pools (LAN, and a server's WAN
    pool: the same memberlist/serf metrics labelled network="wan"); return the gauge
    collector to run every second."""
    pools = [agent.gossip.serf]
    wan = getattr(agent, "wan", None)
    if wan is not None:
        pools.append(wan.serf)
    for serf in pools:
        serf.metrics = registry
    server = agent.server
    if server is not None and server.raft is not None:
        server.raft.node.metrics = registry

    def collect() -> None:
        for serf in pools:
            with contextlib.suppress(Exception):  # not started yet, or shutting down
                registry.gauge(
                    "memberlist.health.score", serf.core.ml.health_score(), serf.metric_labels
                )
        mesh = getattr(agent, "mesh", None)
        if mesh is not None:  # refreshed here too: a gauge set only on change would expire
            servers = [getattr(mesh, n, None) for n in ("plaintext", "tls")]
            registry.gauge(
                "xds.server.streams", sum(len(s.streams()) for s in servers if s is not None)
            )
        if server is None:
            return
        registry.gauge("server.isLeader", 1.0 if server.applier.is_leader() else 0.0)
        store = server.store
        registry.gauge("state.nodes", len(store.catalog.nodes))
        registry.gauge("state.service_instances", len(store.catalog.services))
        registry.gauge("state.services", len(store.catalog.services_by_name))
        registry.gauge("state.kv_entries", len(store.kv.entries))
        registry.gauge("session_ttl.active", len(server.leader.sessions))
        members = _members(agent)
        registry.gauge("members.servers", sum(1 for m in members if m == "consul"))
        registry.gauge("members.clients", sum(1 for m in members if m != "consul"))
        raft = server.raft
        if raft is None:
            return
        node = raft.node
        with contextlib.suppress(Exception):
            stats = node.stats()
            registry.gauge("raft.applied_index", stats["applied_index"])
            registry.gauge("raft.last_index", stats["last_log_index"])
            registry.gauge("raft.commitNumLogs", stats["commit_index"])
            if node.is_leader:
                peers = node.peer_stats()
                contacts = [p["last_contact"] for p in peers.values() if p["last_contact"]]
                if contacts:
                    registry.sample("raft.leader.lastContact", max(contacts) * 1000.0)
                from consulpy.server.operator import autopilot_health

                health = autopilot_health(server, server.serf_status())
                registry.gauge("autopilot.healthy", 1.0 if health["Healthy"] else 0.0)
                registry.gauge("autopilot.failure_tolerance", health["FailureTolerance"])

    return collect


def _members(agent: Agent) -> list[str]:
    """The role tag of every alive LAN member."""
    with contextlib.suppress(Exception):
        return [
            m.tags.get("role", "node")
            for m in agent.gossip.serf.members()
            if m.status.name == "ALIVE"
        ]
    return []
