"""Runner lifecycle and the interval scheduler shared by every polling check type.

A runner owns exactly one asyncio task (or, for TTL checks, one timer). `start` and `stop` are
idempotent; `stop` cancels the task and waits for it, so whatever a run had open (a socket, an
HTTP session, a child process group) is released before `stop` returns.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

import structlog

from consulpy.agent.checks.definition import CheckDefinition
from consulpy.agent.checks.errors import CheckError
from consulpy.agent.checks.status import CRITICAL, StatusFilter

log = structlog.get_logger("consulpy.agent.checks")

UpdateCallback = Callable[[str, str, str], None]
"""update(check_id, status, output): called on the event loop for each applied change."""

Result = tuple[str, str]


class Probe(Protocol):
    """One kind of check: `run` performs a single check and returns (status, output).

    It bounds its own time (the definition's timeout), reports failures as a critical result
    rather than raising, and releases everything it opened, including when cancelled.
    `close` releases what the probe keeps between runs.
    """

    async def run(self) -> Result: ...

    async def close(self) -> None: ...


class CheckRunner(ABC):
    """Base runner: holds the identity and reports results to the agent's callback.

    Interval checks deliver a result only when it differs from the last one delivered (the
    first is always delivered), so a steady check costs the agent nothing.
    """

    def __init__(self, check_id: str, definition: CheckDefinition, update: UpdateCallback):
        self.check_id = check_id
        self.definition = definition
        self._update = update
        self._last: Result | None = None

    @abstractmethod
    async def start(self) -> None:
        """Begin checking; calling it again while running does nothing."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop and release everything; safe to call more than once."""

    @property
    def last_result(self) -> Result | None:
        """The last (status, output) this runner delivered, if any."""
        return self._last

    def ttl_update(self, status: str, output: str) -> None:
        raise CheckError(f'CheckID "{self.check_id}" does not have associated TTL', kind="ttl")

    def _deliver(self, status: str, output: str, *, always: bool = False) -> None:
        if not always and self._last == (status, output):
            return
        self._last = (status, output)
        try:
            self._update(self.check_id, status, output)
        except Exception:
            log.exception("check update callback failed", check=self.check_id)


class IntervalRunner(CheckRunner):
    """Runs a probe every `interval` seconds after the previous run finished.

    The first run waits a random fraction of the interval (drawn from the injected rng) so
    that checks registered together do not fire together. Results pass through the
    StatusFilter before they are delivered.
    """

    def __init__(
        self,
        check_id: str,
        definition: CheckDefinition,
        update: UpdateCallback,
        probe: Probe,
        *,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(check_id, definition, update)
        self.probe = probe
        self.interval = definition.interval
        self._rng = rng or random.Random()
        self._filter = StatusFilter(
            definition.success_before_passing,
            definition.failures_before_warning,
            definition.failures_before_critical,
        )
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        """How many probe runs have finished (for observability and tests)."""

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"check:{self.check_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await self.probe.close()

    async def _loop(self) -> None:
        await asyncio.sleep(self._rng.random() * self.interval)
        while True:
            try:
                status, output = await self.probe.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a probe bug must not end the check's schedule
                log.exception("check probe failed", check=self.check_id)
                status, output = CRITICAL, f"check failed: {exc}"
            self.runs += 1
            applied = self._filter.apply(status, output)
            if applied is not None:
                self._deliver(*applied)
            await asyncio.sleep(self.interval)
