"""DiscoveryChain: DiscoveryChain.Get, the compiled chain of a service (a read)."""

from __future__ import annotations

from dataclasses import dataclass

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource
from consulpy.server.endpoints.base import read


@dataclass(frozen=True, slots=True)
class DiscoveryChainGet:
    name: str
    compile_dc: str
    override_protocol: str = ""
    override_connect_timeout_ns: int = 0
    override_mesh_gateway_mode: str = ""


ENDPOINTS = [
    read(
        "DiscoveryChain.Get",
        DiscoveryChainGet,
        reads.discovery_chain_get,
        lambda _s, p: [Need(Resource.SERVICE, p.name, Access.READ)],
    )
]
