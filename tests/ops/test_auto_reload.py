"""`auto_reload_config = true`: editing a -config-file, adding a file to a -config-dir or
breaking one reloads the agent as SIGHUP would, with no signal and no API call."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import eventually
from tests.ops.procs import DEV, get_json, start


async def test_config_changes_reload_by_themselves(tmp_path: Path) -> None:
    main = tmp_path / "agent.hcl"
    main.write_text('auto_reload_config = true\nservices { name = "web" port = 80 }\n')
    conf = tmp_path / "conf"
    conf.mkdir()
    agent = start(*DEV, f"-config-file={main}", f"-config-dir={conf}", "-log-level=info")

    def services() -> set[str]:
        return set(get_json(agent, "/v1/agent/services"))

    try:
        assert services() == {"web"}
        # Edit the file in place.
        main.write_text('auto_reload_config = true\nservices { name = "web2" port = 81 }\n')
        await eventually(lambda: services() == {"web2"}, timeout=60, what="web2 after the edit")
        # A new file in the directory.
        (conf / "db.hcl").write_text('services { name = "db" port = 5432 }\n')
        await eventually(lambda: services() == {"web2", "db"}, timeout=60, what="db added")
        # A swap file or other non-config file is not read and triggers nothing visible;
        # a broken config file is refused and logged, the running config stays.
        (conf / "broken.hcl").write_text("services { name = \n")
        await eventually(
            lambda: "Failed to reload configs" in agent.output(), timeout=60, what="refusal"
        )
        assert services() == {"web2", "db"}
        # Fixing it (replaced by rename, as editors and config managers write) applies it.
        fixed = conf / "tmp.swp"
        fixed.write_text('services { name = "cache" port = 6379 }\n')
        fixed.rename(conf / "broken.hcl")
        await eventually(
            lambda: services() == {"web2", "db", "cache"}, timeout=60, what="cache after the fix"
        )
        # A removed file unregisters its services.
        (conf / "db.hcl").unlink()
        await eventually(lambda: services() == {"web2", "cache"}, timeout=60, what="db removed")
        assert agent.proc is not None and agent.proc.poll() is None
    finally:
        agent.stop()
