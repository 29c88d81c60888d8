"""A pytest plugin that runs py-consul's own ACL tests (from its sdist) against consulpy: it
provides their `acl_consul` fixture, (client, management token, version), backed by a fresh
dev agent with ACLs on instead of a Consul container. Loaded with
`--noconftest -p pyconsul_acl_fixtures` from the sdist's root (see test_pyconsul_upstream.py).
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator

import consul
import pytest

from consulpy.testing import DevAgent

ACLConsul = collections.namedtuple("ACLConsul", ["instance", "token", "version"])


@pytest.fixture
def acl_consul() -> Iterator[ACLConsul]:
    token = str(uuid.uuid4())
    config = {"acl": {"enabled": True, "tokens": {"initial_management": token}}}
    with DevAgent(config=config).in_thread() as dev:
        client = consul.Consul(host=dev.host, port=dev.port, token=token)
        deadline = 200
        while deadline:  # the leader creates the management token just after startup
            try:
                if client.acl.token.read_self()["SecretID"] == token:
                    break
            except consul.ConsulException:
                pass
            dev.call(_tick())
            deadline -= 1
        version = client.agent.self()["Config"]["Version"]
        yield ACLConsul(consul.Consul(host=dev.host, port=dev.port), token, version)


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.05)  # one poll interval of the readiness loop above
