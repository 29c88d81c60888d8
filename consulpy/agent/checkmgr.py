"""Runs the health checks registered on this agent and feeds their results into local state.

One runner per check (from `consulpy.agent.checks`); results go to `LocalState.update_check`,
and a status change triggers an anti-entropy push right away. Also the reaper for
`DeregisterCriticalServiceAfter`.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.agent.checks.definition import CheckDefinition, parse_check_definition
from consulpy.agent.checks.errors import CheckError
from consulpy.agent.definitions import DefinitionError
from consulpy.agent.local import LocalCheck
from consulpy.state.structs import check_row

if TYPE_CHECKING:
    from consulpy.agent.agent import Agent

log = structlog.get_logger("consulpy.agent.checks")

REAP_INTERVAL = 30.0
DEREGISTER_MIN = 60.0


def definition_error(exc: CheckError) -> DefinitionError:
    """Consul's wrappers for check errors (see CheckError.kind)."""
    kind = exc.kind
    if kind in ("name", "status"):
        return DefinitionError(str(exc))
    if kind == "decode":
        return DefinitionError(f"Request decode failed: {exc}")
    if kind == "scripts_disabled":
        return DefinitionError(str(exc), status=500)
    if kind == "ttl":
        return DefinitionError(str(exc), status=500)
    if kind == "unsupported":
        return DefinitionError(str(exc))
    return DefinitionError(f"Invalid check: {exc}")


class CheckManager:
    def __init__(self, agent: Agent, *, min_interval: float | None = None) -> None:
        self.agent = agent
        self.runners: dict[str, Any] = {}
        self.min_interval = min_interval
        self.reap_interval = REAP_INTERVAL
        self.deregister_min = DEREGISTER_MIN
        self._reaper: asyncio.Task[None] | None = None
        self._rng = random.Random()

    # ------------------------------------------------------------ parsing
    def parse(self, body: dict[str, Any], *, service_id: str = "") -> CheckDefinition:
        kwargs: dict[str, Any] = {"service_id": service_id}
        if self.min_interval is not None:
            kwargs["min_interval"] = self.min_interval
        try:
            return parse_check_definition(body, **kwargs)
        except CheckError as exc:
            raise definition_error(exc) from exc

    # ----------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        runners, self.runners = self.runners, {}
        await asyncio.gather(*(r.stop() for r in runners.values()), return_exceptions=True)

    # -------------------------------------------------------------- checks
    async def add(
        self, defn: CheckDefinition, body: dict[str, Any], *, source: str, token: str = ""
    ) -> None:
        """Register (or replace) a check in local state and (re)start its runner."""
        agent = self.agent
        old = self.runners.pop(defn.id, None)
        if old is not None:
            await old.stop()
        row = check_row(
            Node=agent.node_name,
            CheckID=defn.id,
            Name=defn.name,
            Status=defn.initial_status,
            Notes=defn.notes,
            ServiceID=defn.service_id,
            Type=str(defn.type),
            Interval=defn.interval_text,
            Timeout=defn.timeout_text,
        )
        agent.local.add_check(
            LocalCheck(
                row=row,
                definition=dict(body),
                token=token or defn.token,
                source=source,
                deregister_after=defn.deregister_critical_service_after,
            )
        )
        from consulpy.agent.checks import make_runner

        try:
            runner = make_runner(
                defn.id,
                defn,
                update=self._on_update,
                enable_script_checks=agent.script_checks_enabled(source),
                alias_source=agent.alias_source,
                rng=self._rng,
            )
        except CheckError as exc:
            agent.local.remove_check(defn.id)
            raise definition_error(exc) from exc
        self.runners[defn.id] = runner
        await runner.start()

    async def remove(self, check_id: str) -> None:
        runner = self.runners.pop(check_id, None)
        if runner is not None:
            await runner.stop()
        self.agent.local.remove_check(check_id)

    def ttl_update(self, check_id: str, status: str, output: str) -> None:
        runner = self.runners.get(check_id)
        if runner is None:
            raise DefinitionError(f'CheckID "{check_id}" does not have associated TTL', 500)
        try:
            runner.ttl_update(status, output)
        except CheckError as exc:
            raise definition_error(exc) from exc

    def _on_update(self, check_id: str, status: str, output: str) -> None:
        local = self.agent.local
        before = local.checks.get(check_id)
        old_status = before.row["Status"] if before is not None else None
        if local.update_check(check_id, status, output):
            # A status change is persisted (TTL checks come back as they were) and synced now;
            # output-only changes wait for check_update_interval.
            local.changed(persist=old_status != status)

    # -------------------------------------------------------------- reaper
    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval)
            await self.reap(time.monotonic())

    async def reap(self, now: float) -> list[str]:
        """Deregister services whose check has been critical longer than its
        DeregisterCriticalServiceAfter (at least `deregister_min`)."""
        doomed: set[str] = set()
        for check in list(self.agent.local.checks.values()):
            sid = check.row.get("ServiceID")
            after = check.deregister_after
            if not sid or not after or check.critical_since is None:
                continue
            if now - check.critical_since >= max(after, self.deregister_min):
                doomed.add(sid)
        for sid in sorted(doomed):
            log.info("deregistering service with a critical check", service=sid)
            await self.agent.deregister_service(sid)
        return sorted(doomed)
