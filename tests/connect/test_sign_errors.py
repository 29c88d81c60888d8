"""A CSR the CA refuses gets Consul's error text from the running agent, never a crash.

`cryptography` 51 refuses to build or parse an empty subjectAltName; these CSRs go through the
real ConnectCA.Sign operation of a dev agent, so such a library change shows up here as the
wrong answer instead of reaching users as an unhandled error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from consulpy.connect import ca, spiffe
from consulpy.server.endpoints.connect_ca import CASign
from consulpy.server.errors import CommandError
from consulpy.testing import DevAgent
from tests.connect.test_ca import custom_csr, empty_san_csr
from tests.helpers import eventually


async def _ca_ready(agent: DevAgent) -> dict[str, Any]:
    assert agent.agent is not None
    connect = agent.agent.delegate.store.connect
    await eventually(lambda: connect.active_root() is not None, what="CA root")
    return connect.ca_config


@pytest.mark.parametrize(
    "make",
    [lambda: custom_csr(None), lambda: empty_san_csr(critical=True)],
    ids=["no SAN extension", "empty SAN extension"],
)
async def test_sign_without_uri_san_answers_consuls_error(
    agent: DevAgent, make: Callable[[], str]
) -> None:
    await _ca_ready(agent)
    assert agent.agent is not None
    with pytest.raises(CommandError, match="CSR SAN contains an invalid number of URIs: 0"):
        await agent.agent.delegate.apply("ConnectCA.Sign", CASign(make()))


async def test_sign_still_signs_a_good_csr(agent: DevAgent) -> None:
    config = await _ca_ready(agent)
    assert agent.agent is not None
    uri = spiffe.service_uri(spiffe.trust_domain(config["ClusterID"]), "dc1", "web")
    _, csr = ca.make_csr(uri)
    leaf = await agent.agent.delegate.apply("ConnectCA.Sign", CASign(csr))
    assert leaf["ServiceURI"] == uri
