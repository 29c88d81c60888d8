"""Alias checks: mirror the health of another service instance (or node).

The agent supplies an AliasSource: it answers "which checks does this node/service have" and
tells us when they may have changed. We re-evaluate on every notification, and once a minute
anyway so a missed notification cannot leave the alias wrong forever.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, Protocol

import structlog

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.runner import CheckRunner, UpdateCallback
from consulpy.agent.checks.status import CRITICAL, PASSING, WARNING
from consulpy.util.goquote import go_quote

log = structlog.get_logger("consulpy.agent.checks")

REFRESH_INTERVAL = 60.0
MAX_RETRY_WAIT = 60.0

ChecksResult = Sequence[Mapping[str, Any]] | None


class AliasSource(Protocol):
    """What an alias check needs from the agent.

    checks_for(node, service_id): the HealthCheck dicts (keys `Node`, `CheckID`, `Name`,
    `Status`, `Output`, `ServiceID`) of the node (None = this agent's own local state)
    that bear on the service: its node-level checks and the service instance's checks; other
    services' checks may be included, they are filtered out here. Returns None when the
    service instance (or, with service_id None, the node) does not exist. May be a coroutine.

    subscribe(callback) -> unsubscribe: call `callback()` (on the event loop, cheaply) whenever
    checks or services that checks_for reads may have changed.
    """

    def checks_for(
        self, node: str | None, service_id: str | None
    ) -> ChecksResult | Awaitable[ChecksResult]: ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...


def aggregate_alias(
    checks: ChecksResult, *, node: str, service_id: str, own_check_id: str = ""
) -> tuple[str, str]:
    """The alias's (status, output) for the checks found (None: service not found)."""
    if checks is None:
        return CRITICAL, f"Service {service_id} could not be found on node {node}"
    health, message = PASSING, "No checks found."
    for chk in checks:
        if own_check_id and chk.get("CheckID") == own_check_id and not node:
            continue  # a node-level alias of a local service must not watch itself
        chk_node = str(chk.get("Node") or "")
        if node and chk_node and chk_node.lower() != node.lower():
            continue
        chk_service = str(chk.get("ServiceID") or "")
        if chk_service and chk_service != service_id:
            continue
        status = chk.get("Status")
        if status in (CRITICAL, WARNING):
            health = str(status)
            message = f"Aliased check {go_quote(str(chk.get('Name', '')))} failing: " + str(
                chk.get("Output", "")
            )
            if status == CRITICAL:
                break
        elif health == PASSING:
            message = "All checks passing."
    return health, message


class AliasRunner(CheckRunner):
    def __init__(
        self,
        check_id: str,
        definition: CheckDefinition,
        update: UpdateCallback,
        *,
        source: AliasSource,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        super().__init__(check_id, definition, update)
        self.source = source
        self.node = definition.alias_node
        self.service_id = definition.alias_service
        self.refresh_interval = refresh_interval
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._unsubscribe = self.source.subscribe(self._changed.set)
        self._task = asyncio.create_task(self._loop(), name=f"check:{self.check_id}")

    async def stop(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        failures = 0
        while True:
            self._changed.clear()
            wait = self.refresh_interval
            try:
                result = self.source.checks_for(self.node or None, self.service_id or None)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("alias source failed", check=self.check_id, error=str(exc))
                self._deliver(CRITICAL, f"Failure checking aliased node or service: {exc}")
                wait = min(2.0 ** (failures - 1), MAX_RETRY_WAIT)
            else:
                failures = 0
                self._deliver(
                    *aggregate_alias(
                        result,
                        node=self.node,
                        service_id=self.service_id,
                        own_check_id=self.check_id,
                    )
                )
            with suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()
