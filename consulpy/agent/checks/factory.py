"""make_runner: the one place that turns a definition into a runner for its type.

It has no side effects until the runner is started, so the agent can call it during
registration and turn a CheckError into a 400 before it changes any state.
"""

from __future__ import annotations

import random
from typing import Literal

from consulpy.agent.checks import h2client
from consulpy.agent.checks.alias import AliasRunner, AliasSource
from consulpy.agent.checks.definition import CheckDefinition, CheckType
from consulpy.agent.checks.errors import CheckError
from consulpy.agent.checks.output import DEFAULT_OUTPUT_MAX_SIZE
from consulpy.agent.checks.runner import CheckRunner, IntervalRunner, Probe, UpdateCallback
from consulpy.agent.checks.tls import CheckTLS
from consulpy.agent.checks.ttl import TTLRunner

SCRIPTS_DISABLED_LOCAL = (
    "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or "
    "'enable_local_script_checks' to true"
)
SCRIPTS_DISABLED_REMOTE = (
    "Scripts are disabled on this agent from remote calls; to enable, configure "
    "'enable_script_checks' to true"
)
DOCKER_UNSUPPORTED = (
    "Docker checks are not supported by consulpy: they run `docker exec` through a Docker "
    "engine, which this agent does not drive; use a script check that calls `docker exec`"
)
OS_SERVICE_UNSUPPORTED = (
    "OSService checks are not supported by consulpy: they query systemd over D-Bus, which "
    "this agent does not do; use a script check running `systemctl is-active <unit>`"
)


def effective_output_max_size(definition: CheckDefinition, agent_max: int) -> int:
    """Consul: the agent's check_output_max_size, lowered by the check's own OutputMaxSize."""
    size = agent_max if agent_max > 0 else DEFAULT_OUTPUT_MAX_SIZE
    if 0 < definition.output_max_size < size:
        size = definition.output_max_size
    return size


def make_runner(
    check_id: str,
    definition: CheckDefinition,
    update: UpdateCallback,
    *,
    enable_script_checks: bool = False,
    source: Literal["local", "remote"] = "remote",
    alias_source: AliasSource | None = None,
    rng: random.Random | None = None,
    check_output_max_size: int = DEFAULT_OUTPUT_MAX_SIZE,
    agent_tls: CheckTLS | None = None,
) -> CheckRunner:
    """Build the runner for a check; raises CheckError if this agent cannot run it.

    enable_script_checks: whether script checks from `source` are allowed (Consul: remote =
    API registrations need enable_script_checks; local = config files also accept
    enable_local_script_checks); the refusal text depends on `source`.
    alias_source: required for alias checks (see AliasSource).
    agent_tls: the agent's TLS material when enable_agent_tls_for_checks is set.
    """
    out_max = effective_output_max_size(definition, check_output_max_size)
    kind = definition.type
    if kind == CheckType.TTL:
        return TTLRunner(check_id, definition, update, output_max_size=out_max)
    if kind == CheckType.ALIAS:
        if alias_source is None:
            raise CheckError("alias checks need the agent's alias source", kind="unsupported")
        return AliasRunner(check_id, definition, update, source=alias_source)
    probe: Probe
    if kind == CheckType.HTTP:
        from consulpy.agent.checks.http import HTTPProbe

        probe = HTTPProbe(definition, output_max_size=out_max, agent_tls=agent_tls)
    elif kind == CheckType.TCP:
        from consulpy.agent.checks.tcp import TCPProbe

        probe = TCPProbe(definition, agent_tls=agent_tls)
    elif kind == CheckType.UDP:
        from consulpy.agent.checks.tcp import UDPProbe

        probe = UDPProbe(definition)
    elif kind in (CheckType.GRPC, CheckType.H2PING):
        if not h2client.available():
            raise CheckError(
                f"{kind.value} checks need the Python package 'h2', which is not installed",
                kind="unsupported",
            )
        if kind == CheckType.GRPC:
            from consulpy.agent.checks.grpc import GRPCProbe

            probe = GRPCProbe(definition, agent_tls=agent_tls)
        else:
            from consulpy.agent.checks.h2ping import H2PingProbe

            probe = H2PingProbe(definition, agent_tls=agent_tls)
    elif kind == CheckType.SCRIPT:
        if not enable_script_checks:
            raise CheckError(
                SCRIPTS_DISABLED_LOCAL if source == "local" else SCRIPTS_DISABLED_REMOTE,
                kind="scripts_disabled",
            )
        from consulpy.agent.checks.script import ScriptProbe

        probe = ScriptProbe(definition, output_max_size=out_max)
    elif kind == CheckType.DOCKER:
        raise CheckError(DOCKER_UNSUPPORTED, kind="unsupported")
    else:
        raise CheckError(OS_SERVICE_UNSUPPORTED, kind="unsupported")
    return IntervalRunner(check_id, definition, update, probe, rng=rng)
