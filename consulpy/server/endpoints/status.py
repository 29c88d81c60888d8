"""Status: what /v1/status/leader and /peers show, answered by the server asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consulpy.server.endpoints.base import local
from consulpy.server.endpoints.request import Empty, Request

if TYPE_CHECKING:
    from consulpy.server.server import Server


async def info(server: Server, req: Request[Empty]) -> dict[str, Any]:
    """Public, as Consul's /v1/status (no authorize call: tests/server list it as public)."""
    return await server.status()


ENDPOINTS = [local("Status.Info", Empty, info)]
