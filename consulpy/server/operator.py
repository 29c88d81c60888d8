"""Operator calls on the Raft layer: configuration, peer removal, leadership transfer and
autopilot health. They run on the leader; other servers and client agents forward them."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.raft.errors import RaftError
from consulpy.server.errors import CommandError
from consulpy.util.durations import format_duration

if TYPE_CHECKING:
    from consulpy.server.server import Server

LAST_CONTACT_THRESHOLD = 0.2  # autopilot's default last_contact_threshold (seconds)
MAX_TRAILING_LOGS = 250


@dataclass(frozen=True, slots=True)
class AutopilotHealth:
    """The agent's autopilot.last_contact_threshold (seconds) and max_trailing_logs."""

    last_contact_threshold: float = LAST_CONTACT_THRESHOLD
    max_trailing_logs: int = MAX_TRAILING_LOGS


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
    stats = node.stats()
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
        "Index": stats["configuration_index"],
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
    limits = server.autopilot_limits
    # A follower's last contact is only refreshed when a heartbeat is answered, so it reads
    # up to one heartbeat period old on a healthy cluster: that period is allowed on top.
    heartbeat = node.config.tick_interval * node.config.heartbeat_ticks
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
        healthy = (
            status == "alive"
            and contact is not None
            and contact <= limits.last_contact_threshold + heartbeat
            and last_index - match <= limits.max_trailing_logs
        )
        if is_voter:
            voters += 1
            healthy_voters += int(healthy)
        servers.append(
            {
                "ID": sid,
                "Name": names.get(sid, ""),
                "Address": s["address"],
                "SerfStatus": status,
                "Version": "1.19.2",
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
