"""Hostile and malformed input: a clear 4xx, nothing changed, never a 5xx or a dropped
connection. One test per defect found by fuzzing (issue 18), then a sweep over many routes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from consulpy.state.digest import state_digest
from consulpy.testing import DevAgent
from consulpy.util.decode import MAX_DEPTH
from tests.conftest import HTTP
from tests.helpers import eventually


def _digest(agent: DevAgent) -> str:
    assert agent.agent is not None and agent.agent.server is not None
    return state_digest(agent.agent.server.store, with_indexes=False)


@pytest.fixture
async def settled(agent: DevAgent) -> DevAgent:
    """The dev agent once its start-up writes (member registration, CA roots) are in, so the
    state digest only moves when a request changes something."""
    assert agent.agent is not None and agent.agent.server is not None
    store = agent.agent.server.store
    node = agent.config.node_name

    local_agent = agent.agent

    def ready() -> bool:
        row = store.catalog.node(node)
        local = local_agent.local
        return (
            bool(store.connect.ca_roots)
            and store.catalog.check(node, "serfHealth") is not None
            and row is not None
            and row.get("Meta") == local_agent.node_meta()
            and row.get("TaggedAddresses") == local_agent.tagged_addresses()
            and all(s.in_sync for s in local.services.values())
            and all(c.in_sync for c in local.checks.values())
        )

    await eventually(ready, what="dev agent start-up writes")
    return agent


async def _text(http: HTTP, method: str, path: str, data: Any = None) -> tuple[int, str]:
    status, _, body = await http.request(method, path, data=data)
    return status, body.decode("utf-8", "replace")


async def test_txn_service_with_int_connect_is_refused_and_check_writes_keep_working(
    http: HTTP, settled: DevAgent
) -> None:
    node = settled.config.node_name
    before = _digest(settled)
    status, text = await _text(
        http,
        "PUT",
        "/v1/txn",
        json.dumps(
            [
                {
                    "Service": {
                        "Verb": "set",
                        "Node": node,
                        "Service": {"ID": "p1", "Service": "p1", "Connect": 1},
                    }
                }
            ]
        ),
    )
    assert status == 400 and "Connect" in text, text
    assert _digest(settled) == before
    status, text = await _text(
        http,
        "PUT",
        "/v1/catalog/register",
        json.dumps({"Node": node, "Address": "127.0.0.1", "Check": {"CheckID": "c", "Name": "c"}}),
    )
    assert (status, text.strip()) == (200, "true")
    status, _, body = await http.get(f"/v1/catalog/node-services/{node}")
    assert status == 200
    assert all(s["ID"] != "p1" for s in json.loads(body)["Services"])


async def test_txn_kv_with_null_key_is_refused_before_the_log(
    http: HTTP, settled: DevAgent
) -> None:
    before = _digest(settled)
    status, text = await _text(
        http, "PUT", "/v1/txn", '[{"KV":{"Verb":"set","Key":null,"Value":"eA=="}}]'
    )
    assert 400 <= status < 500, text
    assert _digest(settled) == before


@pytest.mark.parametrize(
    "body",
    [
        '{"Name":"s\\ud800"}',
        '{"Name":"ok","Tags":["\\udfff"]}',
        '{"Name":"ok","Meta":{"k\\udc00":"v"}}',
        '{"Name":"ok","Check":{"TTL":"10s","Notes":"\\ud83d"}}',
    ],
)
async def test_lone_surrogate_in_a_service_is_refused_and_the_agent_keeps_serving(
    http: HTTP, settled: DevAgent, body: str
) -> None:
    assert (await http.put("/v1/agent/service/register", '{"Name":"good"}'))[0] == 200
    status, text = await _text(http, "PUT", "/v1/agent/service/register", body)
    assert status == 400 and "surrogate" in text, text
    status, _, services = await http.get("/v1/agent/services")
    assert status == 200
    assert set(json.loads(services)) == {"good"}
    # A valid astral character (a proper surrogate pair in JSON) is fine.
    status, text = await _text(
        http, "PUT", "/v1/agent/service/register", '{"Name":"\\ud83d\\ude00"}'
    )
    assert status == 200, text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/txn",
        "/v1/agent/service/register",
        "/v1/agent/check/register",
        "/v1/catalog/register",
        "/v1/session/create",
        "/v1/config",
        "/v1/query",
        "/v1/connect/intentions",
        "/v1/acl/policy",
    ],
)
async def test_deep_json_is_400_not_a_recursion_error(
    http: HTTP, settled: DevAgent, path: str
) -> None:
    before = _digest(settled)
    deep = "[" * 100_000 + "]" * 100_000
    method = "POST" if path in ("/v1/query", "/v1/connect/intentions") else "PUT"
    status, text = await _text(http, method, path, deep)
    assert 400 <= status < 500, (status, text)
    assert "max depth" in text or status != 400, text
    # Objects too, and brackets inside strings do not count.
    status, text = await _text(http, method, path, '{"a":' * 50_000 + "1" + "}" * 50_000)
    assert 400 <= status < 500, (status, text)
    assert _digest(settled) == before


async def test_depth_at_the_limit_parses(http: HTTP) -> None:
    meta = '{"k":' * (MAX_DEPTH - 2) + '"v"' + "}" * (MAX_DEPTH - 2)
    status, text = await _text(http, "PUT", "/v1/agent/service/register", meta)
    assert status == 400 and "max depth" not in text, text
    ok = json.dumps({"Name": "n", "Tags": ["[" * 10_000, "{" * 10_000]})
    assert (await http.put("/v1/agent/service/register", ok))[0] == 200


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e300"])
@pytest.mark.parametrize(
    "path,template",
    [
        ("/v1/agent/check/register", '{{"Name":"t","TTL":{n}}}'),
        ("/v1/agent/check/register", '{{"Name":"t","Interval":{n},"HTTP":"http://127.0.0.1:1"}}'),
        ("/v1/session/create", '{{"LockDelay":{n}}}'),
        ("/v1/session/create", '{{"TTL":{n}}}'),
        ("/v1/agent/service/register", '{{"Name":"s","Port":{n}}}'),
        ("/v1/agent/service/register", '{{"Name":"s","Meta":{{"a":{n}}}}}'),
        ("/v1/agent/service/register", '{{"Name":"s","Check":{{"TTL":{n}}}}}'),
        ("/v1/txn", '[{{"KV":{{"Verb":"set","Key":"k","Flags":{n}}}}}]'),
    ],
)
async def test_non_finite_and_huge_numbers_are_400(
    http: HTTP, settled: DevAgent, path: str, template: str, number: str
) -> None:
    before = _digest(settled)
    status, text = await _text(http, "PUT", path, template.format(n=number))
    assert status == 400, (status, text)
    assert _digest(settled) == before
    status, _, body = await http.get("/v1/agent/checks")
    assert status == 200 and json.loads(body) == {}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/kv/a?cas=%C2%B2",
        "/v1/kv/a?flags=%D9%A3",
        "/v1/kv/a?cas=%EF%BC%91",  # fullwidth 1
        "/v1/kv/a?cas=1_0",
        "/v1/kv/a?cas=+1",
        "/v1/kv/a?cas=%201",
    ],
)
async def test_unicode_digits_in_numeric_parameters_are_400(
    http: HTTP, settled: DevAgent, path: str
) -> None:
    before = _digest(settled)
    status, text = await _text(http, "PUT", path, b"x")
    assert status == 400 and "invalid syntax" in text, (status, text)
    assert _digest(settled) == before


@pytest.mark.parametrize(
    "path",
    [
        "/v1/kv/a?index=%C2%B2",
        "/v1/catalog/services?index=%C2%B2",
        "/v1/health/service/x?index=%D9%A3",
        "/v1/event/list?index=%C2%B2",
        "/v1/kv/a?wait=%C2%B2s",
        "/v1/catalog/nodes?wait=1%D9%A3s",
        "/v1/config/service-defaults/x?cas=%C2%B2",
        "/v1/operator/keyring?relay-factor=%C2%B2",
    ],
)
async def test_unicode_digits_in_read_parameters_are_4xx(http: HTTP, path: str) -> None:
    method = "DELETE" if path.startswith("/v1/config/") else "GET"
    status, text = await _text(http, method, path)
    assert 400 <= status < 500 or (path.startswith("/v1/operator/") and status != 200), text
    assert status < 500 or "Gossip encryption" in text, (status, text)


async def test_prepared_query_limit_takes_ascii_digits_only(http: HTTP) -> None:
    status, text = await _text(http, "GET", "/v1/query/none/execute?limit=%C2%B2")
    assert text.startswith("Bad limit: "), (status, text)


async def test_intentions_match_with_a_namespace_is_400(http: HTTP) -> None:
    status, text = await _text(http, "GET", "/v1/connect/intentions/match?by=source&name=a/b")
    assert status == 400 and "Namespaces" in text, text
    status, text = await _text(http, "GET", "/v1/connect/intentions/match?by=source&name=a/b/c/d")
    assert status == 400, text


@pytest.mark.parametrize("target", ["a/b", "a/b/c/d", "*/*", "/", "a%2Fb"])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/connect/intentions/check?source={t}&destination=web",
        "/v1/connect/intentions/check?source=web&destination={t}",
        "/v1/connect/intentions/exact?source={t}&destination=web",
        "/v1/connect/intentions/match?by=destination&name={t}",
    ],
)
async def test_malformed_intention_targets_are_400(http: HTTP, path: str, target: str) -> None:
    status, text = await _text(http, "GET", path.format(t=target))
    assert 400 <= status < 500, (status, text)


async def test_nul_and_newline_echoed_into_a_header_are_escaped() -> None:
    # Unprintable paths are refused (400) before any handler unless the filter is off.
    config = {"disable_http_unprintable_char_filter": True}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        await _echo_escaped(HTTP(session, dev.url))


async def _echo_escaped(http: HTTP) -> None:
    status, headers, _ = await http.get("/v1/agent/health/service/name/x%00y")
    assert status == 404
    assert headers["X-Consul-Reason"] == "ServiceName x\\x00y Not Found"
    status, headers, _ = await http.get("/v1/agent/health/service/name/x%1b%7fz%09")
    assert status == 404
    assert headers["X-Consul-Reason"] == "ServiceName x\\x1b\\x7fz\t Not Found"
    # The connection survived: the same session keeps working.
    assert (await http.get("/v1/agent/self"))[0] == 200


async def test_unhandled_error_answers_500_with_a_request_id_and_logs_it(
    http: HTTP, settled: DevAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consulpy.http import errors

    logged: list[dict[str, Any]] = []

    def capture(event: str, **kw: Any) -> None:
        logged.append({"event": event, **kw})

    monkeypatch.setattr(errors.log, "exception", capture)
    from consulpy.http import agent as agent_api

    def boom(*_a: Any, **_k: Any) -> Any:
        raise ZeroDivisionError("injected")

    # A defect in a handler's own code (a register first, so the view runs).
    assert (await http.put("/v1/agent/service/register", '{"Name":"s"}'))[0] == 200
    monkeypatch.setattr(agent_api, "agent_service_view", boom)
    status, headers, body = await http.get("/v1/agent/services")
    assert status == 500, body
    request_id = headers["X-Request-ID"]
    assert body.decode() == f"Internal Server Error (request ID: {request_id})\n"
    assert logged and logged[0]["request_id"] == request_id
    assert logged[0]["path"] == "/v1/agent/services"


async def test_invalid_json_texts_are_gos(http: HTTP) -> None:
    cases = {
        '{"Name": NaN}': "invalid character 'N' looking for beginning of value",
        '{"Name": "x"': "unexpected EOF",
        '{"Name": 1e400}': "json: cannot unmarshal number 1e400 into Go value of type float64",
    }
    for body, expected in cases.items():
        status, text = await _text(http, "PUT", "/v1/agent/service/register", body)
        assert status == 400 and expected in text, (body, text)


async def test_nul_in_path_keeps_the_connection(agent: DevAgent) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(agent.url + "/v1/agent/health/service/id/a%00b") as resp:
                assert resp.status == 400  # Consul's unprintable-path filter, empty body
    config = {"disable_http_unprintable_char_filter": True}
    async with DevAgent(config=config) as dev, aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(dev.url + "/v1/agent/health/service/id/a%00b") as resp:
                assert resp.status == 404
                assert "\\x00" in resp.headers["X-Consul-Reason"]
