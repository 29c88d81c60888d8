"""The agent's own views: /v1/agent/self and /v1/agent/version."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

from consulpy.version import CONSUL_COMPAT_VERSION, __version__

if TYPE_CHECKING:
    from consulpy.agent.agent import Agent


def version_info() -> dict[str, Any]:
    return {
        "SHA": "",
        "BuildDate": "",
        "HumanVersion": CONSUL_COMPAT_VERSION,
        "FIPS": "",
        "consulpy": __version__,
    }


def _raft_stats(agent: Agent) -> dict[str, str]:
    if agent.server is None or agent.server.raft is None:
        return {}
    stats = agent.server.raft.node.stats()
    last_contact = stats.get("last_contact")
    return {
        "state": str(stats["state"]).capitalize(),
        "term": str(stats["term"]),
        "applied_index": str(stats["applied_index"]),
        "commit_index": str(stats["commit_index"]),
        "last_log_index": str(stats["last_log_index"]),
        "last_log_term": str(stats["last_log_term"]),
        "last_snapshot_index": str(stats["last_snapshot_index"]),
        "num_peers": str(stats["num_peers"]),
        "last_contact": "never" if last_contact is None else f"{last_contact * 1000:.0f}ms",
        "latest_configuration_index": str(stats["configuration_index"]),
        "protocol_version": "3",
    }


async def self_info(agent: Agent) -> dict[str, Any]:
    cfg = agent.config
    try:
        status = await agent.delegate.status()
    except Exception:  # no servers known yet: still describe this agent
        status = {"leader": "", "peers": []}
    is_leader = agent.server is not None and agent.server.applier.is_leader()
    local = agent.local
    return {
        "Config": {
            "Datacenter": agent.datacenter,
            "PrimaryDatacenter": cfg.primary_datacenter or agent.datacenter,
            "NodeName": agent.node_name,
            "NodeID": agent.node_id,
            "Revision": f"consulpy-{__version__}",
            "Server": bool(cfg.server),
            "Version": CONSUL_COMPAT_VERSION,
            "BuildDate": "",
        },
        "DebugConfig": cfg.as_debug_dict(),
        # The agent's LAN coordinate; null with disable_coordinates (as Consul).
        "Coord": coord.to_api() if (coord := agent.lan_coordinate()) is not None else None,
        "Member": agent.member(),
        "Stats": {
            "agent": {
                "check_monitors": "0",
                "check_ttls": str(
                    sum(1 for c in local.checks.values() if c.row.get("Type") == "ttl")
                ),
                "checks": str(len(local.checks)),
                "services": str(len(local.services)),
            },
            "build": {
                "prerelease": "",
                "revision": f"consulpy-{__version__}",
                "version": CONSUL_COMPAT_VERSION,
                "version_metadata": "",
            },
            "consul": {
                "acl": "disabled",
                "bootstrap": str(bool(cfg.bootstrap)).lower(),
                "known_datacenters": "1",
                "leader": str(is_leader).lower(),
                "leader_addr": status.get("leader", ""),
                "server": str(bool(cfg.server)).lower(),
                "known_servers": str(len(agent.gossip.servers())),
            },
            "raft": _raft_stats(agent),
            "serf_lan": {k: str(v) for k, v in agent.gossip.serf.stats().items()},
            "runtime": {
                "arch": platform.machine(),
                "os": platform.system().lower(),
                "version": f"python{platform.python_version()}",
            },
        },
        "Meta": agent.node_meta(),
        "xDS": agent.mesh.self_view(),
    }
