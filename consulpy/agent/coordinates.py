"""Every agent sends its LAN network coordinate to the servers (Consul's sendCoordinate).

Why: the servers keep every node's coordinate in the catalog, where `?near=` sorting and
/v1/coordinate read it. The interval scales with the cluster so the servers see about
`rate_target` updates a second: max(interval_min, members / rate_target), plus a random
stagger of up to as much again so agents do not report in step.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Protocol

import structlog

from consulpy.gossip.coordinate import Coordinate
from consulpy.server.endpoints.authz import PermissionDenied
from consulpy.server.endpoints.coordinate import CoordinateUpdate

log = structlog.get_logger("consulpy.agent.coordinates")

SYNC_INTERVAL_MIN = 15.0  # Consul's sync_coordinate_interval_min
SYNC_RATE_TARGET = 64.0  # Consul's sync_coordinate_rate_target (updates per second)


class CoordinateHost(Protocol):
    node_name: str
    delegate: Any

    def lan_coordinate(self) -> Coordinate | None: ...
    def lan_member_count(self) -> int: ...


def scaled_interval(rate: float, minimum: float, members: int) -> float:
    """Consul's lib.RateScaledInterval."""
    if rate <= 0:
        return minimum
    return max(minimum, members / rate)


class CoordinateSender:
    def __init__(
        self,
        host: CoordinateHost,
        *,
        interval_min: float = SYNC_INTERVAL_MIN,
        rate_target: float = SYNC_RATE_TARGET,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.interval_min = interval_min
        self.rate_target = rate_target
        self.rng = rng or random.Random()
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            interval = scaled_interval(
                self.rate_target, self.interval_min, self.host.lan_member_count()
            )
            await asyncio.sleep(interval + self.rng.uniform(0.0, interval))
            await self.send_once()

    async def send_once(self) -> bool:
        coord = self.host.lan_coordinate()
        if coord is None:
            return False
        update = CoordinateUpdate(node=self.host.node_name, coord=coord.to_api())
        try:
            await self.host.delegate.apply("Coordinate.Update", update, None)
        except PermissionDenied:
            log.warning("Coordinate update blocked by ACLs")
            return False
        except Exception as exc:  # no leader yet, servers unreachable: the next round retries
            log.error("Coordinate update error", error=str(exc))
            return False
        self.sent += 1
        return True
