"""server_rejoin_age_max: a server records when it last ran (data_dir/server_metadata.json) and
refuses to start from a data dir last used longer ago than the setting (168h by default)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from consulpy.config import load_agent_config
from tests.helpers import eventually
from tests.ops.procs import BASE, start

SERVER = (*BASE, "-server", "-bootstrap", "-node=s1")


def _age(data_dir: Path, hours: float) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    last = int(time.time() - hours * 3600)
    (data_dir / "server_metadata.json").write_text(json.dumps({"LastSeenUnix": last}))


def test_a_server_offline_too_long_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _age(data, 200)
    argv = [sys.executable, "-m", "consulpy", "agent", *SERVER, f"-data-dir={data}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert (
        "refusing to rejoin cluster because server has been offline for more than the "
        "configured server_rejoin_age_max (168h0m0s)" in done.stderr + done.stdout
    )


async def test_a_longer_setting_lets_it_start_and_it_records_that_it_runs(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    _age(data, 200)
    agent = start(*SERVER, f"-data-dir={data}", "-hcl", 'server_rejoin_age_max = "300h"')
    try:

        def recent() -> bool:
            seen = json.loads((data / "server_metadata.json").read_text())["LastSeenUnix"]
            return bool(time.time() - seen < 3600)

        await eventually(recent, what="the server recording that it runs")
    finally:
        agent.kill()


def test_values_below_six_hours_use_six_hours() -> None:
    cfg = load_agent_config(["-dev", "-hcl", 'server_rejoin_age_max = "1h"'])
    assert cfg.server_rejoin_age_max == 6 * 3600
    assert any("server_rejoin_age_max" in w for w in cfg.warnings)
