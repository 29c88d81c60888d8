"""`consulpy bench dns`: output parsing, the dnsmasq reference's records, and a short real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from consulpy.bench import dns as bench

ROOT = Path(__file__).resolve().parents[2]

DNSPERF_OUTPUT = """\
[Status] Sending queries (to 127.0.0.1:8600)
> NOERROR web.service.consul A 0.000100
> NOERROR web.service.consul A 0.000300
> SERVFAIL web.service.consul A 0.002000
Statistics:

  Queries sent:         3
  Queries completed:    3 (100.00%)
  Queries lost:         0 (0.00%)
  Queries per second:   1500.5
"""


def test_parse_dnsperf() -> None:
    parsed = bench.parse_dnsperf(DNSPERF_OUTPUT)
    assert parsed["qps"] == 1500.5 and parsed["sent"] == 3 and parsed["lost"] == 0
    assert parsed["errors"] == 1
    assert parsed["p99_ms"] == pytest.approx(0.3)  # nearest-rank below on 3 samples
    with pytest.raises(RuntimeError):
        bench.parse_dnsperf("garbage")


def test_dnsmasq_serves_the_same_records() -> None:
    argv = bench.dnsmasq_argv(5353, 2)
    assert "--port=5353" in argv and "--no-resolv" in argv
    assert "--host-record=web.service.consul,10.1.0.1" in argv
    assert "--srv-host=web.service.consul,n2.node.dc1.consul,8002,1,1" in argv


def test_bad_options() -> None:
    assert bench.main(["--qtypes", "MX"]) == 2
    assert bench.main(["--duration", "0"]) == 2


@pytest.mark.slow
def test_short_run_prints_both_targets_and_the_ratio() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "consulpy",
            "bench",
            "dns",
            "--duration",
            "1",
            "--qtypes",
            "A",
            "--latency-qps",
            "200",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    targets = {line.get("target") for line in lines if "target" in line}
    assert targets == {"consulpy", "dnsmasq"}
    assert all(line["qps"] > 0 and line["lost"] == 0 for line in lines if "target" in line)
    assert any(line.get("ratio") == "consulpy/dnsmasq A" for line in lines)
    assert "consulpy/dnsmasq A:" in proc.stderr
