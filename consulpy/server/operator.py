"""Operator calls on the Raft layer: configuration, peer removal, leadership transfer and
autopilot health. They run on the leader; other servers and client agents forward them."""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from consulpy.raft.errors import RaftError
from consulpy.server.errors import CommandError
from consulpy.util.durations import format_duration
from consulpy.version import CONSUL_COMPAT_VERSION

if TYPE_CHECKING:
    from consulpy.server.autopilot import AutopilotConfig
    from consulpy.server.server import Server
    from consulpy.state.store import StateStore
    from consulpy.state.watch import WatchSet


def _node_names(server: Server) -> dict[str, str]:
    """Raft peer ID to node name: gossip names first (known from the moment a server joins),
    then the catalog (a server that has left gossip but is still a Raft peer)."""
    names = {
        row.get("ID", ""): name for name, row in server.store.catalog.nodes.items() if row.get("ID")
    }
    names.update({sid: name for sid, name in server.serf_names().items() if sid})
    return names


def _raft(server: Server) -> Any:
    if server.raft is None:
        raise CommandError("this server does not run Raft")
    return server.raft.node


def raft_configuration(server: Server) -> dict[str, Any]:
    node = _raft(server)
    names = _node_names(server)
    leader_id, _ = node.leader()
    return {
        "Servers": [
            {
                "ID": s["id"],
                "Node": names.get(s["id"], "(unknown)"),
                "Address": s["address"],
                "Leader": s["id"] == leader_id,
                "ProtocolVersion": "3",
                "Voter": s.get("suffrage", "voter") == "voter",
            }
            for s in node.configuration()
        ],
        # Consul (hashicorp/raft >= 1.3) answers GetConfiguration without its index: 0.
        "Index": 0,
    }


async def remove_peer(server: Server, peer_id: str, address: str) -> None:
    node = _raft(server)
    config = node.configuration()
    if peer_id:
        match = [s for s in config if s["id"] == peer_id]
        missing = f'id "{peer_id}" was not found in the Raft configuration'
    else:
        match = [s for s in config if s["address"] == address]
        missing = f'address "{address}" was not found in the Raft configuration'
    if not match:
        raise CommandError(missing)
    try:
        await node.remove_server(match[0]["id"])
    except RaftError as exc:
        raise CommandError(str(exc)) from exc


async def transfer_leader(server: Server, target_id: str) -> dict[str, Any]:
    node = _raft(server)
    voters = [s for s in node.configuration() if s.get("suffrage", "voter") == "voter"]
    if len(voters) < 2:
        raise CommandError("cannot transfer leadership: there is no other voter")
    if target_id and not any(s["id"] == target_id for s in voters):
        raise CommandError(f'cannot find voter with id "{target_id}" to transfer leadership to')
    try:
        await node.transfer_leadership(target_id or None)
    except RaftError as exc:
        raise CommandError(f"failed to transfer leadership: {exc}") from exc
    return {"Success": True}


def caught_up(node: Any, limits: AutopilotConfig, contact: float | None, behind: int) -> bool:
    """Autopilot's health rule for one server (status aside): heard from within
    LastContactThreshold and at most MaxTrailingLogs behind the leader's log. A follower's
    last contact is refreshed only when it answers a heartbeat, so it reads up to one
    heartbeat period old on a healthy cluster: that period is allowed on top."""
    heartbeat = node.config.tick_interval * node.config.heartbeat_ticks
    return (
        contact is not None
        and contact <= limits.last_contact_threshold + heartbeat
        and behind <= limits.max_trailing_logs
    )


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def autopilot_health(server: Server, serf_status: dict[str, str]) -> dict[str, Any]:
    """Autopilot's view of every server; Healthy when every voter is in contact (within
    last_contact_threshold) and at most max_trailing_logs behind the leader's log.
    `serf_status` maps server IDs to their gossip status."""
    node = _raft(server)
    stats = node.stats()
    peers = node.peer_stats()
    names = _node_names(server)
    leader_id, _ = node.leader()
    now = time.time()
    last_index = stats["last_log_index"]
    limits = server.autopilot_config()
    servers = []
    healthy_voters = 0
    voters = 0
    for s in node.configuration():
        sid = s["id"]
        is_voter = s.get("suffrage", "voter") == "voter"
        if sid == node.id:
            contact, match = 0.0, last_index
        else:
            peer = peers.get(sid, {})
            contact = peer.get("last_contact")
            match = peer.get("match_index", 0)
        status = serf_status.get(sid, "none")
        healthy = status == "alive" and caught_up(node, limits, contact, last_index - match)
        if is_voter:
            voters += 1
            healthy_voters += int(healthy)
        servers.append(
            {
                "ID": sid,
                "Name": names.get(sid, ""),
                "Address": s["address"],
                "SerfStatus": status,
                "Version": CONSUL_COMPAT_VERSION,
                "Leader": sid == leader_id,
                "LastContact": format_duration(contact or 0.0),
                "LastTerm": stats["term"],
                "LastIndex": match,
                "Healthy": healthy,
                "Voter": is_voter,
                "StableSince": _rfc3339(now),
            }
        )
    quorum = voters // 2 + 1
    return {
        "Healthy": all(s["Healthy"] for s in servers),
        "FailureTolerance": max(0, healthy_voters - quorum),
        "Servers": servers,
    }


def autopilot_state(server: Server, serf_status: dict[str, str]) -> dict[str, Any]:
    """/v1/operator/autopilot/state (Consul 1.9+, CE fields): the health view keyed by server
    ID, with each server's role in the Raft configuration."""
    health = autopilot_health(server, serf_status)
    node = _raft(server)
    leader_id, _ = node.leader()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    servers: dict[str, Any] = {}
    voters: list[str] = []
    for s in health["Servers"]:
        sid = s["ID"]
        if s["Voter"]:
            voters.append(sid)
        status = "leader" if sid == leader_id else "voter" if s["Voter"] else "non-voter"
        servers[sid] = {
            "ID": sid,
            "Name": s["Name"],
            "Address": s["Address"],
            "NodeStatus": s["SerfStatus"],
            "Version": s["Version"],
            "LastContact": s["LastContact"],
            "LastTerm": s["LastTerm"],
            "LastIndex": s["LastIndex"],
            "Healthy": s["Healthy"],
            "StableSince": now,
            "ReadReplica": False,
            "Status": status,
            "Meta": {"consul-network-segment": ""},
            "NodeType": "voter",
        }
    return {
        "Healthy": health["Healthy"],
        "FailureTolerance": health["FailureTolerance"],
        "OptimisticFailureTolerance": 0,
        "Servers": servers,
        "Leader": leader_id,
        "Voters": voters,
    }


MESH_KINDS = (
    "api-gateway",
    "connect-native",
    "connect-proxy",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
)


def usage(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """Operator.Usage for this datacenter: service names, instances, mesh instances by kind,
    billable instances (neither mesh proxies/gateways nor the `consul` service) and nodes."""
    if ws is not None:
        ws.add(("t", "services"))
        ws.add(("t", "nodes"))
    catalog = store.catalog
    kinds = dict.fromkeys(MESH_KINDS, 0)
    names: set[str] = set()
    billable = 0
    for svc in catalog.services.values():
        names.add(svc["Service"])
        kind = svc.get("Kind") or ""
        if kind in kinds:
            kinds[kind] += 1
        if (svc.get("Connect") or {}).get("Native"):
            kinds["connect-native"] += 1
        if not kind and svc["Service"] != "consul":
            billable += 1
    return store.table_index("services", "nodes"), {
        "Services": len(names),
        "ServiceInstances": len(catalog.services),
        "ConnectServiceInstances": kinds,
        "BillableServiceInstances": billable,
        "Nodes": len(catalog.nodes),
    }
