"""disable_http_unprintable_char_filter: by default a URL path with a non-printable character
(after percent-decoding) gets Consul's 400 with an empty body and changes nothing; with the
setting, such paths are served (old KV keys with control characters stay reachable)."""

from __future__ import annotations

from typing import Any

import aiohttp

from consulpy.testing import DevAgent
from tests.conftest import HTTP


async def _run(config: dict[str, Any]) -> dict[str, Any]:
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        http = HTTP(session, dev.url)
        put = await http.put("/v1/kv/bell%07key", "v")
        get = await http.get("/v1/kv/bell%07key?raw")
        catalog = await http.get("/v1/catalog/service/we%C2%A0b")  # NO-BREAK SPACE
        listing = await http.get("/v1/kv/?keys")
        return {"put": put, "get": get, "catalog": catalog, "keys": listing}


async def test_unprintable_paths_are_refused_by_default() -> None:
    seen = await _run({})
    for name in ("put", "get", "catalog"):
        status, _, body = seen[name]
        assert (status, body) == (400, b""), name
    assert b"bell" not in seen["keys"][2]  # nothing was written


async def test_the_filter_can_be_turned_off() -> None:
    seen = await _run({"disable_http_unprintable_char_filter": True})
    assert seen["put"][0] == 200 and seen["put"][2].strip() == b"true"
    assert seen["get"][:3:2] == (200, b"v")
    assert seen["catalog"][0] == 200
