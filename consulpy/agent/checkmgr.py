"""Runs the health checks registered on this agent and feeds their results into local state.

One runner per check (from `consulpy.agent.checks`); results go to `LocalState.update_check`,
which triggers anti-entropy (a status change is pushed right away, output-only changes wait
for check_update_interval). Also the loop that deregisters services whose check stayed
critical past DeregisterCriticalServiceAfter, using the checks package's ledger.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from consulpy.agent.checks import (
    CheckDefinition,
    CheckError,
    CheckType,
    CriticalReaper,
    make_runner,
    parse_check_definition,
)
from consulpy.agent.checks.reap import REAP_INTERVAL
from consulpy.agent.checks.tls import CheckTLS
from consulpy.agent.definitions import DefinitionError
from consulpy.agent.local import LocalCheck
from consulpy.state.structs import check_row

if TYPE_CHECKING:
    from consulpy.agent.checks import AliasSource
    from consulpy.agent.local import LocalState
    from consulpy.config import AgentConfig

log = structlog.get_logger("consulpy.agent.checks")


def definition_error(exc: CheckError) -> DefinitionError:
    """Consul's wording and status for each kind of check error."""
    kind = exc.kind
    if kind in ("name", "status", "scripts_disabled", "unsupported"):
        return DefinitionError(str(exc))
    if kind == "decode":
        return DefinitionError(f"Request decode failed: {exc}")
    if kind == "ttl":
        return DefinitionError(str(exc), status=500)
    return DefinitionError(f"Invalid check: {exc}")


def agent_check_tls(cfg: AgentConfig) -> CheckTLS | None:
    """Consul's enable_agent_tls_for_checks: HTTPS, TCP+TLS, gRPC and H2PING checks trust the
    internal RPC CA and present the agent's certificate (for services that verify clients)."""
    if not cfg.enable_agent_tls_for_checks:
        return None
    tls = cfg.tls
    return CheckTLS(
        ca_file=tls.ca_file or "",
        ca_path=tls.ca_path or "",
        cert_file=tls.cert_file or "",
        key_file=tls.key_file or "",
    )


class CheckHost(Protocol):
    """What the check manager needs of the agent: the script-check settings, where results
    go, where alias checks read, and how a reaped service is deregistered."""

    config: AgentConfig
    node_name: str
    local: LocalState
    alias_source: AliasSource

    async def deregister_service(self, service_id: str) -> None: ...


class CheckManager:
    def __init__(self, agent: CheckHost, *, min_interval: float | None = None) -> None:
        self.agent = agent
        self.runners: dict[str, Any] = {}
        self.min_interval = min_interval
        self.reaper = CriticalReaper()
        self.reap_interval = REAP_INTERVAL
        self._reap_task: asyncio.Task[None] | None = None
        self._rng = random.Random()

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
        self._reap_task = asyncio.get_running_loop().create_task(self._reap_loop())

    async def stop(self) -> None:
        if self._reap_task is not None:
            self._reap_task.cancel()
            self._reap_task = None
        runners, self.runners = self.runners, {}
        await asyncio.gather(*(r.stop() for r in runners.values()), return_exceptions=True)

    # -------------------------------------------------------------- checks
    def prepare(self, defn: CheckDefinition, *, source: str) -> Any:
        """Build (without starting) the runner for a check; raise DefinitionError if this
        agent cannot run it. Callers prepare every runner before changing any state."""
        cfg = self.agent.config
        local_source = source == "config"
        try:
            return make_runner(
                defn.id,
                defn,
                self._on_update,
                enable_script_checks=bool(cfg.enable_script_checks)
                or (local_source and bool(cfg.enable_local_script_checks)),
                source="local" if local_source else "remote",
                alias_source=self.agent.alias_source,
                rng=self._rng,
                check_output_max_size=cfg.check_output_max_size,
                agent_tls=agent_check_tls(cfg),
            )
        except CheckError as exc:
            raise definition_error(exc) from exc

    async def add(
        self,
        defn: CheckDefinition,
        body: dict[str, Any],
        *,
        source: str,
        token: str = "",
        runner: Any = None,
    ) -> None:
        """Register (or replace) a check in local state and (re)start its runner."""
        agent = self.agent
        if runner is None:
            runner = self.prepare(defn, source=source)
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
            LocalCheck(row=row, definition=dict(body), token=token or defn.token, source=source)
        )
        self.reaper.track(defn.id, defn.service_id, defn.deregister_critical_service_after)
        self.reaper.observe(defn.id, agent.local.checks[defn.id].row["Status"], self._now())
        self.runners[defn.id] = runner
        await runner.start()

    def is_ttl(self, check_id: str) -> bool:
        runner = self.runners.get(check_id)
        return runner is not None and runner.definition.type == CheckType.TTL

    async def remove(self, check_id: str) -> None:
        runner = self.runners.pop(check_id, None)
        if runner is not None:
            await runner.stop()
        self.reaper.untrack(check_id)
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
        check = local.checks.get(check_id)
        if check is None:
            return
        old_status = check.row["Status"]
        if self.agent.config.discard_check_output:
            # Consul: the output is dropped before it is stored, so output-only changes cause
            # no catalog writes (read at each update: a reload applies it).
            output = ""
        self.reaper.observe(check_id, status, self._now())
        if local.update_check(check_id, status, output):
            # A status change is persisted (TTL checks come back as they were) and synced at
            # once; output-only changes wait for check_update_interval.
            local.changed(persist=old_status != status)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # -------------------------------------------------------------- reaper
    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval)
            await self.reap()

    async def reap(self) -> list[str]:
        """Deregister services whose check has been critical past its
        DeregisterCriticalServiceAfter (at least one minute, as in Consul)."""
        doomed = [sid for sid in self.reaper.due(self._now()) if sid in self.agent.local.services]
        for sid in doomed:
            log.info("deregistering service with a long-critical check", service=sid)
            await self.agent.deregister_service(sid)
        return doomed
