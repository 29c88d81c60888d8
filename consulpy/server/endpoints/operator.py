"""Operator: Raft configuration, peer removal, leadership transfer, autopilot health; on the
leader (Consul's Operator endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.server import operator
from consulpy.server.endpoints.authz import Access, Resource, authorize
from consulpy.server.endpoints.base import leader
from consulpy.server.endpoints.request import Empty, Request
from consulpy.server.errors import RequestError

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class RaftRemovePeer:
    id: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class TransferLeader:
    id: str = ""  # empty: any other voter


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
]
