"""check_output_max_size and discard_check_output set on the agent: what the health API shows
for a TTL check's note."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from consulpy.testing import DevAgent
from tests.conftest import HTTP


async def _ttl_output(config: dict[str, Any], note: str) -> str:
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        http = HTTP(session, dev.url)
        body = json.dumps({"Name": "t", "CheckID": "t", "TTL": "30s"})
        status, _, text = await http.put("/v1/agent/check/register", body)
        assert status == 200, text
        status, _, text = await http.put(f"/v1/agent/check/pass/t?note={note}")
        assert status == 200, text
        checks = await http.json("GET", "/v1/agent/checks")
        return str(checks["t"]["Output"])


async def test_agent_check_output_max_size_cuts_the_output() -> None:
    output = await _ttl_output({"check_output_max_size": 4}, "abcdef")
    assert output == "abcd ... (captured 4 of 6 bytes)"


async def test_discard_check_output_stores_no_output() -> None:
    assert await _ttl_output({"discard_check_output": True}, "hello") == ""
    # the default keeps it
    assert await _ttl_output({}, "hello") == "hello"
