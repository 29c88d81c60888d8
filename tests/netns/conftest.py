"""Fixtures for tests/netns: a fresh Network per test, always torn down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.netns.agents import NsAgent
from tests.netns.harness import Network, available

_why_not = available()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/netns/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _namespaces_available() -> None:
    """.ci/run runs as root with iproute2 and nftables: a machine without them fails these
    tests (with the reason) instead of skipping them."""
    if _why_not is not None:
        pytest.fail(f"network namespaces unavailable: {_why_not}")


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network()
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def agents(net: Network) -> Iterator[list[NsAgent]]:
    """Agents to kill at the end (before the namespaces go)."""
    started: list[NsAgent] = []
    try:
        yield started
    finally:
        for agent in started:
            agent.kill()
