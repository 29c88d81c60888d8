"""Fixtures for the benchmark tests: reference servers started as real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consulpy.bench.procs import Target
from consulpy.bench.refservers import start_aiohttp


@pytest.fixture
def aiohttp_ref(tmp_path: Path) -> Iterator[Target]:
    target = start_aiohttp(tmp_path)
    try:
        yield target
    finally:
        target.stop()
