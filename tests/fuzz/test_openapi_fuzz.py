"""The OpenAPI document fuzzed with schemathesis against a real dev agent process: no answer is a
5xx, every answer matches the document, and a rejected write changes nothing.

Bounded: FUZZ_EXAMPLES examples per operation (CONSULPY_FUZZ_EXAMPLES raises it for a long run).
Operations that end or stream the agent (leave, monitor, snapshot restore, ...) are left out:
fuzzing them would stop the agent under test rather than test its input handling.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from consulpy.http.app import api_routes
from consulpy.http.errors import DEFECT_500
from consulpy.http.openapi import document, document_json
from tests.cli.agentproc import AgentProcess
from tests.ops.procs import DEV

ROOT = Path(__file__).parent.parent.parent
FUZZ_EXAMPLES = int(os.environ.get("CONSULPY_FUZZ_EXAMPLES", "5"))

# Answering these ends the agent or never returns: not fuzzed (their input checks have tests).
UNFUZZED = (
    r"^/v1/agent/leave$",
    r"^/v1/agent/force-leave",
    r"^/v1/agent/monitor$",
    r"^/v1/agent/metrics/stream$",
    r"^/v1/agent/reload$",
    r"^/v1/snapshot$",
    r"^/v1/operator/raft/peer$",
    r"^/v1/operator/raft/transfer-leader$",
    r"^/v1/acl/bootstrap$",
    r"^/v1/agent/join/",
)

# What a rejected write must leave as it was: everything a user could have created.
STATE_READS = (
    "/v1/kv/?recurse",
    "/v1/catalog/services",
    "/v1/catalog/nodes",
    "/v1/agent/services",
    "/v1/session/list",
    "/v1/connect/intentions",
    "/v1/query",
    "/v1/config/service-defaults",
    "/v1/config/proxy-defaults",
    "/v1/config/service-intentions",
)
_VOLATILE = ("ModifyIndex", "CreateIndex", "LockIndex", "Output", "Status", "Coord")

schema = schemathesis.openapi.from_dict(document(api_routes())).exclude(
    path_regex="|".join(UNFUZZED)
)


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    agent = AgentProcess(
        *DEV,
        "-hcl",
        'max_query_time = "20ms"',
        "-hcl",
        'default_query_time = "20ms"',
        "-hcl",
        "enable_script_checks = false",
    ).start()
    try:
        yield f"http://{agent.http_addr}"
    finally:
        agent.kill()


def _stable(value: Any) -> Any:
    """`value` without what changes on its own (indexes, check output, coordinates)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


_READER = requests.Session()  # one keep-alive connection for the state reads


def _state(url: str) -> str:
    digest = hashlib.sha256()
    for path in STATE_READS:
        resp = _READER.get(url + path, timeout=30)
        body = _stable(resp.json()) if resp.status_code == 200 and resp.content else None
        digest.update(json.dumps([path, resp.status_code, body], sort_keys=True).encode())
    return digest.hexdigest()


def test_the_served_document_is_the_generated_one(agent_url: str) -> None:
    served = requests.get(agent_url + "/v1/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    assert served.content == document_json()


def test_the_document_in_docs_is_current() -> None:
    on_disk = (ROOT / "docs" / "openapi.json").read_bytes()
    assert on_disk == document_json(), (
        "docs/openapi.json is stale: python -m consulpy.http.openapi > docs/openapi.json"
    )


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_fuzz(case: schemathesis.Case, agent_url: str) -> None:
    writes = case.method.upper() != "GET"
    before = _state(agent_url) if writes else ""
    response = case.call(base_url=agent_url, timeout=30)
    # A 500 with Consul's text is a deliberate answer (docs/openapi.md); a defect answers
    # DEFECT_500 with a request ID, and no other 5xx is ever deliberate.
    deliberate = response.status_code == 500 and not response.text.startswith(DEFECT_500)
    case.validate_response(
        response,
        checks=[
            *([] if deliberate else [checks.not_a_server_error]),
            checks.status_code_conformance,
            # An empty answer (Consul's bare 400 for an unprintable path) has no content type.
            *([checks.content_type_conformance] if response.content else []),
            checks.response_schema_conformance,
        ],
    )
    if writes and 400 <= response.status_code < 500:
        assert _state(agent_url) == before, (
            f"a rejected {case.method} {case.formatted_path} ({response.status_code} "
            f"{response.text[:200]!r}) changed the agent's state"
        )
