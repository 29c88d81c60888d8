"""Health: the health reads (check state is written through Catalog.Register)."""

from __future__ import annotations

from consulpy.server import reads
from consulpy.server.endpoints.base import read

ENDPOINTS = [
    read("Health.NodeChecks", reads.health_node),
    read("Health.ServiceChecks", reads.health_checks),
    read("Health.ChecksInState", reads.health_state),
    read("Health.ServiceNodes", reads.health_service),
]
