"""A real one-server cluster with one client agent whose wall clock is an hour behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster

SKEW_S = -3600.0
SITECUSTOMIZE = """
import os
import time

_skew = float(os.environ.get("CONSULPY_TEST_CLOCK_SKEW", "0"))
if _skew:
    _real_time = time.time
    time.time = lambda: _real_time() + _skew
    with open(os.environ["CONSULPY_TEST_CLOCK_MARKER"], "w") as fh:
        fh.write(repr(time.time()))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = Path(tmp_path_factory.mktemp("clock"))
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    c = Cluster(tmp, servers=1, clients=1)
    mp = pytest.MonkeyPatch()
    try:
        c.start(c.servers[0])
        c.wait_leader()
        mp.setenv("PYTHONPATH", f"{site}:{Path(__file__).resolve().parents[2]}")
        mp.setenv("CONSULPY_TEST_CLOCK_SKEW", str(SKEW_S))
        mp.setenv("CONSULPY_TEST_CLOCK_MARKER", str(tmp / "skewed"))
        c.start(c.clients[0])  # only this process inherits the skew
        mp.undo()
        assert (tmp / "skewed").exists(), "the client agent did not load the skewed clock"
        c.wait_leader()
        yield c
    finally:
        mp.undo()
        c.stop_all()
