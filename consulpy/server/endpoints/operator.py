"""Operator: Raft configuration, peer removal, leadership transfer, autopilot health and
state (on the leader); the autopilot configuration (a replicated row: read and CAS write)
and usage (a read of the catalog), as Consul's Operator endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.server import operator, reads
from consulpy.server.autopilot import AutopilotConfig
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import leader, read, write
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import RequestError
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server
    from consulpy.state.store import StateStore


@dataclass(frozen=True, slots=True)
class RaftRemovePeer:
    id: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class TransferLeader:
    id: str = ""  # empty: any other voter


_DEFAULT = AutopilotConfig()  # Consul's defaults, which a PUT body is decoded over


@dataclass(frozen=True, slots=True)
class AutopilotSetConfiguration:
    """A whole configuration (durations in nanoseconds) and an optional check-and-set index
    (None: unconditional; 0: only when none is stored; N: only at ModifyIndex N)."""

    cleanup_dead_servers: bool = _DEFAULT.cleanup_dead_servers
    last_contact_threshold_ns: int = round(_DEFAULT.last_contact_threshold * 1e9)
    max_trailing_logs: int = _DEFAULT.max_trailing_logs
    min_quorum: int = _DEFAULT.min_quorum
    server_stabilization_time_ns: int = round(_DEFAULT.server_stabilization_time * 1e9)
    redundancy_zone_tag: str = _DEFAULT.redundancy_zone_tag
    disable_upgrade_migration: bool = _DEFAULT.disable_upgrade_migration
    upgrade_version_tag: str = _DEFAULT.upgrade_version_tag
    cas: int | None = None

    def config(self) -> AutopilotConfig:
        return AutopilotConfig(
            cleanup_dead_servers=self.cleanup_dead_servers,
            last_contact_threshold=self.last_contact_threshold_ns / 1e9,
            max_trailing_logs=self.max_trailing_logs,
            min_quorum=self.min_quorum,
            server_stabilization_time=self.server_stabilization_time_ns / 1e9,
            redundancy_zone_tag=self.redundancy_zone_tag,
            disable_upgrade_migration=self.disable_upgrade_migration,
            upgrade_version_tag=self.upgrade_version_tag,
        )


def _check_autopilot(p: AutopilotSetConfiguration) -> None:
    for name, value in (
        ("LastContactThreshold", p.last_contact_threshold_ns),
        ("MaxTrailingLogs", p.max_trailing_logs),
        ("MinQuorum", p.min_quorum),
        ("ServerStabilizationTime", p.server_stabilization_time_ns),
        ("cas", p.cas or 0),
    ):
        if value < 0:
            raise RequestError(f"{name} must not be negative")


async def autopilot_set_configuration(
    server: Server, req: Request[AutopilotSetConfiguration]
) -> bool:
    p = req.payload
    _check_autopilot(p)
    authorize(req.token, Resource.OPERATOR, "", Access.WRITE)
    result = await server.propose(C.autopilot_set(p.config().to_row(), p.cas, ts=server.now()))
    return bool(result)


async def autopilot_state(server: Server, req: Request[Empty]) -> Any:
    authorize(req.token, Resource.OPERATOR, "", Access.READ)
    return operator.autopilot_state(server, server.serf_status())


def _operator_read(_store: StateStore, _payload: Any) -> list[Need]:
    return [Need(Resource.OPERATOR, "", Access.READ)]


async def raft_configuration(server: Server, req: Request[Empty]) -> Any:
    authorize(req.token, Resource.OPERATOR, "", Access.READ)
    return operator.raft_configuration(server)


async def remove_peer(server: Server, req: Request[RaftRemovePeer]) -> None:
    p = req.payload
    if not p.id and not p.address:
        raise RequestError(
            "Must specify either ?id with the server's ID or ?address with IP:port of peer "
            "to remove"
        )
    if p.id and p.address:
        raise RequestError("Must specify only one of ?id or ?address")
    authorize(req.token, Resource.OPERATOR, "", Access.WRITE)
    await operator.remove_peer(server, p.id, p.address)


async def transfer_leader(server: Server, req: Request[TransferLeader]) -> Any:
    authorize(req.token, Resource.OPERATOR, "", Access.WRITE)
    return await operator.transfer_leader(server, req.payload.id)


async def autopilot_health(server: Server, req: Request[Empty]) -> Any:
    authorize(req.token, Resource.OPERATOR, "", Access.READ)
    return operator.autopilot_health(server, server.serf_status())


ENDPOINTS = [
    leader("Operator.RaftConfiguration", Empty, raft_configuration),
    leader("Operator.RaftRemovePeer", RaftRemovePeer, remove_peer),
    leader("Operator.TransferLeader", TransferLeader, transfer_leader),
    leader("Operator.AutopilotHealth", Empty, autopilot_health),
    leader("Operator.AutopilotState", Empty, autopilot_state),
    read(
        "Operator.AutopilotGetConfiguration",
        Empty,
        reads.stored_configuration,
        _operator_read,
    ),
    write(
        "Operator.AutopilotSetConfiguration",
        AutopilotSetConfiguration,
        autopilot_set_configuration,
    ),
    read("Operator.Usage", Empty, reads.operator_usage, _operator_read),
]
