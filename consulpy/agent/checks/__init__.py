"""Health-check runners: parse a check definition, run it, report status changes.

The agent parses each registered check with `parse_check_definition`, builds its runner with
`make_runner` (which refuses what this agent cannot run), starts it, and receives
`update(check_id, status, output)` calls on the event loop whenever the check's applied
status or output changes. docs/health-checks.md describes every check type.
"""

from consulpy.agent.checks.alias import AliasSource, aggregate_alias
from consulpy.agent.checks.definition import (
    MIN_INTERVAL,
    CheckDefinition,
    CheckType,
    parse_check_definition,
)
from consulpy.agent.checks.errors import CheckError
from consulpy.agent.checks.factory import effective_output_max_size, make_runner
from consulpy.agent.checks.reap import CriticalReaper
from consulpy.agent.checks.runner import CheckRunner, IntervalRunner, UpdateCallback
from consulpy.agent.checks.status import CRITICAL, PASSING, WARNING, StatusFilter
from consulpy.agent.checks.tls import CheckTLS
from consulpy.agent.checks.ttl import TTLRunner

__all__ = [
    "CRITICAL",
    "MIN_INTERVAL",
    "PASSING",
    "WARNING",
    "AliasSource",
    "CheckDefinition",
    "CheckError",
    "CheckRunner",
    "CheckTLS",
    "CheckType",
    "CriticalReaper",
    "IntervalRunner",
    "StatusFilter",
    "TTLRunner",
    "UpdateCallback",
    "aggregate_alias",
    "effective_output_max_size",
    "make_runner",
    "parse_check_definition",
]
