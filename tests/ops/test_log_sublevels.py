"""log_sublevels: a logger and its children log at their own level (names relative to
consulpy's, as Consul's are relative to its own), whatever log_level says for the rest."""

from __future__ import annotations

import logging

import pytest

from consulpy.config import ConfigError, load_agent_config
from consulpy.log import Logging, parse_sublevels
from tests.ops.procs import DEV, start


def _startup_log(*flags: str) -> str:
    agent = start(*DEV, *flags)  # returns once the banner is out: startup has been logged
    try:
        return agent.output()
    finally:
        agent.kill()


def test_a_sublevel_shows_more_than_log_level() -> None:
    out = _startup_log("-log-level=warn", "-hcl", 'log_sublevels = { runtime = "info" }')
    assert "[INFO] consulpy.runtime: agent started" in out
    assert "[INFO] consulpy.server: bootstrapped" not in out  # logged before, at warn


def test_a_sublevel_shows_less_than_log_level() -> None:
    out = _startup_log("-log-level=info", "-hcl", 'log_sublevels = { server = "warn" }')
    assert "[INFO] consulpy.runtime: agent started" in out
    assert "[INFO] consulpy.server: bootstrapped" not in out


def test_children_follow_the_longest_matching_name() -> None:
    logs = Logging()
    logs.level = logging.WARNING
    logs.sublevels = parse_sublevels({"server": "info", "server.membership": "error"})
    assert logs.level_for("consulpy.server") == logging.INFO
    assert logs.level_for("consulpy.server.endpoints") == logging.INFO
    assert logs.level_for("consulpy.server.membership") == logging.ERROR
    assert logs.level_for("consulpy.serverless") == logging.WARNING
    assert logs.level_for("consulpy.agent") == logging.WARNING


def test_a_bad_level_is_refused() -> None:
    with pytest.raises(ConfigError, match="log_sublevels"):
        load_agent_config(["-dev", "-hcl", 'log_sublevels = { server = "loud" }'])
