"""DiscoveryChain: DiscoveryChain.Get, the compiled chain of a service (a read)."""

from __future__ import annotations

from consulpy.server import reads
from consulpy.server.endpoints.base import read

ENDPOINTS = [read("DiscoveryChain.Get", reads.discovery_chain_get)]
