"""TTL checks: the application pushes its status; silence longer than the TTL is critical."""

from __future__ import annotations

import asyncio

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.errors import CheckError
from consulpy.agent.checks.output import truncate_ttl_output
from consulpy.agent.checks.runner import CheckRunner, UpdateCallback
from consulpy.agent.checks.status import CRITICAL, is_valid_status


class TTLRunner(CheckRunner):
    """A dead man's switch: each `ttl_update` applies its status and re-arms the timer.

    The timer is armed by `start`; when it fires, the check turns critical with
    `TTL expired` (plus the last output, if any) and stays so until the next update.
    Updates are delivered even when unchanged: a push is a write the caller asked for.
    """

    def __init__(
        self,
        check_id: str,
        definition: CheckDefinition,
        update: UpdateCallback,
        *,
        output_max_size: int,
    ) -> None:
        super().__init__(check_id, definition, update)
        self.ttl = definition.ttl
        self.output_max_size = output_max_size
        self._last_output = ""
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    async def start(self) -> None:
        if not self._running:
            self._running = True
            self._arm()

    async def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def expires_at(self) -> float | None:
        """Loop time at which the TTL runs out, or None when not armed."""
        return self._timer.when() if self._timer is not None else None

    def ttl_update(self, status: str, output: str) -> None:
        if not is_valid_status(status):
            raise CheckError(f"Invalid check status: '{status}'", kind="status")
        output = truncate_ttl_output(output, self.output_max_size)
        self._last_output = output
        self._deliver(status, output, always=True)
        if self._running:
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.ttl, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if not self._running:
            return
        if self._last_output:
            output = f"TTL expired (last output before timeout follows): {self._last_output}"
        else:
            output = "TTL expired"
        self._deliver(CRITICAL, output, always=True)
