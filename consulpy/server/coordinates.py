"""The leader's queue of coordinate updates, applied to Raft in batches.

Why batch: every agent reports its coordinate every 15 s or more; one log entry per report
would cost a Raft round each. As in Consul, Coordinate.Update only queues (the last report of
a node and segment wins) and the leader applies the queue every `update_period`, in entries
of `update_batch_size` updates, at most `update_max_batches` entries per period; the rest is
dropped and logged.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server

log = structlog.get_logger("consulpy.server.coordinates")

UPDATE_PERIOD = 5.0
UPDATE_BATCH_SIZE = 128
UPDATE_MAX_BATCHES = 5


class CoordinateBatcher:
    def __init__(
        self,
        server: Server,
        *,
        update_period: float = UPDATE_PERIOD,
        update_batch_size: int = UPDATE_BATCH_SIZE,
        update_max_batches: int = UPDATE_MAX_BATCHES,
    ) -> None:
        self.server = server
        self.update_period = update_period
        self.update_batch_size = update_batch_size
        self.update_max_batches = update_max_batches
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.discarded = 0

    def queue(self, node: str, segment: str, coord: dict[str, Any]) -> None:
        self.pending[(node, segment)] = {"Node": node, "Segment": segment, "Coord": coord}

    async def run(self) -> None:
        """The leader's loop (one per leadership term)."""
        self.pending.clear()  # reports queued in an earlier term are stale
        while True:
            await asyncio.sleep(self.update_period)
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        updates = list(self.pending.values())
        self.pending.clear()
        limit = self.update_batch_size * self.update_max_batches
        if len(updates) > limit:
            dropped = len(updates) - limit
            self.discarded += dropped
            log.warning(f"Discarded {dropped} coordinate updates")
            updates = updates[:limit]
        for start in range(0, len(updates), self.update_batch_size):
            batch = updates[start : start + self.update_batch_size]
            try:
                await self.server.propose(C.coordinate_batch_update(batch, ts=self.server.now()))
            except Exception as exc:  # lost leadership, no quorum: the next reports retry
                log.warning("coordinate batch update failed", error=str(exc))
                return
