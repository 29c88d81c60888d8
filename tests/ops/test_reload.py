"""Reload: SIGHUP, `consulpy reload` and PUT /v1/agent/reload re-read the config files and
flags; a config that does not load is refused with its error and the agent keeps running."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli.agentproc import consulpy
from tests.helpers import eventually
from tests.ops.procs import DEV, call, get_json, start


async def test_sighup_adds_a_service_from_a_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "web.hcl").write_text('services { name = "web" port = 80 }\n')
    agent = start(*DEV, f"-config-dir={conf}", "-log-level=info")
    try:
        assert set(get_json(agent, "/v1/agent/services")) == {"web"}
        (conf / "db.hcl").write_text('services { name = "db" port = 5432 }\n')
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        await eventually(
            lambda: set(get_json(agent, "/v1/agent/services")) == {"web", "db"},
            what="db registered after SIGHUP",
        )
        await eventually(
            lambda: "db" in get_json(agent, "/v1/catalog/services"), what="db in the catalog"
        )
        assert agent.proc.poll() is None
    finally:
        agent.stop()


async def test_a_broken_file_is_refused_and_the_agent_keeps_running(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "web.hcl").write_text('services { name = "web" port = 80 }\n')
    agent = start(*DEV, f"-config-dir={conf}", "-log-level=info")
    try:
        (conf / "web.hcl").write_text('services { name = "web2" port = 81 }\n')
        (conf / "broken.hcl").write_text("services { name = \n")
        status, body = call(agent, "PUT", "/v1/agent/reload")
        assert status == 500
        assert b"broken.hcl" in body, body
        out = consulpy("reload", f"-http-addr={agent.http_addr}")
        assert out.returncode == 1
        assert out.stderr.startswith("Error reloading: Unexpected response code: 500"), out.stderr
        assert "broken.hcl" in out.stderr
        # SIGHUP with the same broken file: logged, ignored, still running.
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        await eventually(
            lambda: "Failed to reload configs" in agent.output(), what="the failure logged"
        )
        assert agent.proc.poll() is None
        assert set(get_json(agent, "/v1/agent/services")) == {"web"}  # the old config stays
        (conf / "broken.hcl").unlink()
        out = consulpy("reload", f"-http-addr={agent.http_addr}")
        assert out.returncode == 0, out.stderr
        assert out.stdout == "Configuration reload triggered\n"
        assert set(get_json(agent, "/v1/agent/services")) == {"web2"}
    finally:
        agent.stop()


async def test_an_invalid_service_definition_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "web.hcl").write_text('services { name = "web" port = 80 }\n')
    agent = start(*DEV, f"-config-dir={conf}", "-log-level=info")
    try:
        (conf / "web.hcl").write_text(
            'services { name = "web" port = 80 }\n'
            'services { name = "bad" check { ttl = "10s" interval = "10s" http = "x" } }\n'
        )
        status, body = call(agent, "PUT", "/v1/agent/reload")
        assert status == 500
        assert body.startswith(b"Failed reloading services: "), body
        assert set(get_json(agent, "/v1/agent/services")) == {"web"}
    finally:
        agent.stop()


async def test_log_level_changes_on_reload(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "level.hcl").write_text('log_level = "info"\n')
    agent = start(*DEV, f"-config-dir={conf}")
    try:
        get_json(agent, "/v1/agent/self")
        assert "Request finished" not in agent.output()  # a debug line
        (conf / "level.hcl").write_text('log_level = "debug"\n')
        assert call(agent, "PUT", "/v1/agent/reload")[0] == 200

        def debug_logged() -> bool:
            get_json(agent, "/v1/agent/members")
            return "[DEBUG] consulpy.http: Request finished" in agent.output()

        await eventually(debug_logged, what="debug lines after the reload")
    finally:
        agent.stop()


async def test_settings_that_need_a_restart_are_logged(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "a.hcl").write_text('datacenter = "dc1"\n')
    agent = start(*DEV, f"-config-dir={conf}", "-log-level=info")
    try:
        (conf / "a.hcl").write_text('datacenter = "dc2"\n')
        assert call(agent, "PUT", "/v1/agent/reload")[0] == 200
        await eventually(
            lambda: "needs a restart to apply setting=datacenter" in agent.output(),
            what="restart warning",
        )
        assert get_json(agent, "/v1/agent/self")["Config"]["Datacenter"] == "dc1"
    finally:
        agent.stop()
