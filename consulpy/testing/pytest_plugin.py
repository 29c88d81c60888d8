"""pytest fixtures for testing against a real consulpy dev agent.

Enable with `pytest -p consulpy.testing.pytest_plugin` or `pytest_plugins = [...]` in a
conftest.py:

- `consulpy_agent`: an async fixture; the agent runs in the test's event loop.
- `consulpy_agent_thread`: a synchronous fixture; the agent runs in a background thread, for
  synchronous clients (py-consul, requests, subprocesses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from consulpy.testing import DevAgent

try:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def consulpy_agent() -> AsyncIterator[DevAgent]:
        async with DevAgent() as agent:
            yield agent

except ImportError:  # pragma: no cover - pytest-asyncio is part of the test extra
    pass


@pytest.fixture
def consulpy_agent_thread() -> Iterator[DevAgent]:
    with DevAgent().in_thread() as agent:
        yield agent
