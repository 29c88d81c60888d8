"""Prepared queries end to end (spec sections 7 and 9): the HTTP API cases H1-H18 and the DNS
cases D32-D36, against one dev agent with the example catalog, plus templates, tag negation,
failover in one datacenter, blocking reads and deletion with the session."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import dns.asyncquery
import dns.edns
import dns.message
import dns.rcode
import pytest
import pytest_asyncio

from tests.dns.support import Client, dns_agent, is_nxdomain_soa, owned, rdatas, ttls

pytestmark = pytest.mark.asyncio(loop_scope="module")

P1 = {"Name": "web-v1", "Service": {"Service": "web", "Tags": ["v1"]}, "DNS": {"TTL": "10s"}}
P2 = {
    "Name": "geo-",
    "Template": {"Type": "name_prefix_match", "Regexp": "^geo-(.+)$"},
    "Service": {"Service": "${match(1)}", "OnlyPassing": True},
}
P3 = {"Name": "web-not-v2", "Service": {"Service": "web", "Tags": ["!v2"]}}


class Api:
    def __init__(self, client: Client, http: aiohttp.ClientSession) -> None:
        self.client = client
        self.http = http
        self.url = client.dev.url
        self.ids: dict[str, str] = {}

    async def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        async with self.http.request(method, self.url + path, data=data) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return resp.status, parsed, resp.headers

    async def create(self, body: dict[str, Any]) -> str:
        status, doc, _ = await self.call("POST", "/v1/query", body)
        assert status == 200, doc
        return str(doc["ID"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api() -> AsyncIterator[Api]:
    async with dns_agent() as c, aiohttp.ClientSession() as http:
        a = Api(c, http)
        for name, body in (("P1", P1), ("P2", P2), ("P3", P3)):
            a.ids[name] = await a.create(body)
        yield a


def node_names(doc: dict[str, Any]) -> list[str]:
    return [row["Node"]["Node"] for row in doc["Nodes"]]


# ------------------------------------------------------------------ CRUD (HTTP)
async def test_h1_create_answers_a_uuid(api: Api) -> None:
    for query_id in api.ids.values():
        assert str(uuid.UUID(query_id)) == query_id


@pytest.mark.parametrize("name", ["web-v1", "WEB-V1"])
async def test_h2_names_are_unique_case_insensitively(api: Api, name: str) -> None:
    status, text, _ = await api.call("POST", "/v1/query", dict(P1, Name=name))
    assert status == 500 and f"name '{name}' aliases an existing query name" in text


async def test_name_may_not_equal_another_query_id(api: Api) -> None:
    body = {"Name": api.ids["P3"], "Service": {"Service": "web"}}
    status, text, _ = await api.call("POST", "/v1/query", body)
    assert status == 500 and "aliases an existing query ID" in text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"Service": {"Service": "web"}}, "Invalid prepared query: Must be bound to a session"),
        ({"Name": "x", "Service": {}}, "Must provide a Service name to query"),
        (
            {"Name": "x", "Service": {"Service": "web"}, "DNS": {"TTL": "abc"}},
            "Bad DNS TTL 'abc'",
        ),
        (
            {"Name": "t", "Template": {"Type": "bogus"}, "Service": {"Service": "x"}},
            "Bad Template.Type 'bogus'",
        ),
        (
            {
                "Name": "x",
                "Service": {
                    "Service": "web",
                    "Failover": {"NearestN": 1, "Targets": [{"Peer": "p"}]},
                },
            },
            "Targets cannot be populated with NearestN or Datacenters",
        ),
        (
            {"Name": "x", "Session": "00000000-0000-0000-0000-000000000000", "Service": {}},
            "Must provide a Service name to query",
        ),
        (
            {
                "Name": "x",
                "Session": "00000000-0000-0000-0000-000000000000",
                "Service": {"Service": "db"},
            },
            'invalid session "00000000-0000-0000-0000-000000000000"',
        ),
        (
            {"Name": "x", "Session": "not-a-uuid", "Service": {"Service": "db"}},
            "invalid session: UUID must be 36 characters",
        ),
        ({"ID": "abc", "Name": "x", "Service": {"Service": "db"}}, "ID must be empty"),
        (
            {
                "Name": "x",
                "Template": {"Type": "name_prefix_match", "Regexp": "("},
                "Service": {"Service": "db"},
            },
            "failed compiling template: Bad Regexp",
        ),
        (
            {
                "Name": "x",
                "Template": {"Type": "name_prefix_match"},
                "Service": {"Service": "${nope}"},
            },
            "failed compiling template: Bad evaluation for '${nope}' in Service.Service",
        ),
        (
            {"Name": "x", "Service": {"Service": "db", "NodeMeta": {"consul-x": "1"}}},
            "Invalid prepared query: key 'consul-x' uses the reserved prefix",
        ),
    ],
    ids=[
        "h3",
        "h4",
        "h5",
        "h6",
        "h7",
        "h4-before-session",
        "h16",
        "bad-uuid",
        "id",
        "regexp",
        "variable",
        "node-meta",
    ],
)
async def test_h3_to_h7_h16_validation_errors_change_nothing(
    api: Api, body: dict[str, Any], text: str
) -> None:
    _, before, _ = await api.call("GET", "/v1/query")
    status, answer, _ = await api.call("POST", "/v1/query", body)
    assert status == 500 and text in answer, answer
    _, after, _ = await api.call("GET", "/v1/query")
    assert after == before


async def test_wrong_types_are_a_bad_request(api: Api) -> None:
    status, text, _ = await api.call("POST", "/v1/query", {"Name": 5})
    assert status == 400 and text.startswith("Request decode failed: json: cannot unmarshal")
    status, text, _ = await api.call("POST", "/v1/query", raw=b"{nope")
    assert status == 400 and text.startswith("Request decode failed")


async def test_h13_list_and_get(api: Api) -> None:
    status, listed, headers = await api.call("GET", "/v1/query")
    assert status == 200 and int(headers["X-Consul-Index"]) > 0
    by_name = {q["Name"]: q for q in listed}
    assert {"web-v1", "geo-", "web-not-v2"} <= set(by_name)
    assert by_name["web-v1"]["ID"] == api.ids["P1"]
    status, got, _ = await api.call("GET", f"/v1/query/{api.ids['P1']}")
    assert status == 200 and isinstance(got, list) and len(got) == 1
    row = got[0]
    assert row["Name"] == "web-v1" and row["Service"]["Tags"] == ["v1"]
    assert row["DNS"] == {"TTL": "10s"}
    assert row["CreateIndex"] > 0 and row["ModifyIndex"] == row["CreateIndex"]
    assert row["Template"] == {"Type": "", "Regexp": "", "RemoveEmptyTags": False}


async def test_h12_unknown_queries_are_404(api: Api) -> None:
    status, text, _ = await api.call("GET", "/v1/query/nope/execute")
    assert (status, text) == (404, "Query not found")
    status, text, _ = await api.call("GET", f"/v1/query/{uuid.uuid4()}")
    assert (status, text) == (404, "Query not found")
    status, text, _ = await api.call("GET", "/v1/query/nope/explain")
    assert (status, text) == (404, "Query not found")
    # GET by ID only: a name is not an ID (memdb's UUID error, a 500).
    status, text, _ = await api.call("GET", "/v1/query/web-v1")
    assert status == 500 and "UUID must be 36 characters" in text


async def test_h17_unknown_update_or_delete_is_500(api: Api) -> None:
    query_id = str(uuid.uuid4())
    status, text, _ = await api.call("DELETE", f"/v1/query/{query_id}")
    assert (status, text) == (500, f"Cannot modify non-existent prepared query: '{query_id}'")
    status, text, _ = await api.call("PUT", f"/v1/query/{query_id}", P1)
    assert (status, text) == (500, f"Cannot modify non-existent prepared query: '{query_id}'")


async def test_h18_methods(api: Api) -> None:
    status, _, headers = await api.call("POST", f"/v1/query/{api.ids['P1']}", P1)
    assert status == 405 and headers["Allow"] == "OPTIONS,GET,PUT,DELETE"
    status, _, headers = await api.call("PUT", "/v1/query/web-v1/execute")
    assert status == 405 and headers["Allow"] == "OPTIONS,GET"
    status, _, headers = await api.call("DELETE", "/v1/query")
    assert status == 405 and headers["Allow"] == "OPTIONS,GET,POST"


async def test_update_replaces_the_whole_definition_and_delete_removes(api: Api) -> None:
    query_id = await api.create({"Name": "tmp", "Service": {"Service": "db", "Tags": ["x"]}})
    # Full replacement: the fields not given go back to their zero values.
    status, body, _ = await api.call(
        "PUT", f"/v1/query/{query_id}", {"Name": "tmp2", "Service": {"Service": "db"}}
    )
    assert (status, body) == (200, None)
    _, got, _ = await api.call("GET", f"/v1/query/{query_id}")
    assert got[0]["Name"] == "tmp2" and got[0]["Service"]["Tags"] is None
    assert got[0]["ModifyIndex"] > got[0]["CreateIndex"]
    # An empty body is an empty definition: refused, nothing changes.
    status, text, _ = await api.call("PUT", f"/v1/query/{query_id}")
    assert status == 500 and "Must be bound to a session" in text
    status, body, _ = await api.call("DELETE", f"/v1/query/{query_id}")
    assert (status, body) == (200, None)
    status, _, _ = await api.call("GET", f"/v1/query/{query_id}")
    assert status == 404


# --------------------------------------------------------------- execute (HTTP)
async def test_h8_execute(api: Api) -> None:
    status, doc, headers = await api.call("GET", "/v1/query/web-v1/execute")
    assert status == 200
    assert doc["Service"] == "web"
    assert sorted(node_names(doc)) == ["n1", "n3"]  # web-4 (critical) dropped, web-3 warning kept
    assert doc["DNS"] == {"TTL": "10s"}
    assert (doc["Datacenter"], doc["Failovers"]) == ("dc1", 0)
    assert {r["Service"]["ID"] for r in doc["Nodes"]} == {"web-1", "web-3"}
    assert all({"Node", "Service", "Checks"} <= set(r) for r in doc["Nodes"])
    assert int(headers["X-Consul-Index"]) > 0
    # By ID as well as by name.
    _, by_id, _ = await api.call("GET", f"/v1/query/{api.ids['P1']}/execute")
    assert sorted(node_names(by_id)) == ["n1", "n3"]


async def test_h9_limit_and_near(api: Api) -> None:
    _, doc, _ = await api.call("GET", "/v1/query/web-v1/execute?limit=1")
    assert len(doc["Nodes"]) == 1
    for _ in range(8):  # the order is shuffled; near always moves n3 first
        _, doc, _ = await api.call("GET", "/v1/query/web-v1/execute?near=n3")
        assert node_names(doc)[0] == "n3"
    status, text, _ = await api.call("GET", "/v1/query/web-v1/execute?limit=x")
    assert status == 500 and text.startswith("Bad limit: ")
    status, text, _ = await api.call("GET", "/v1/query/web-v1/execute?connect=maybe")
    assert status == 500 and text.startswith("Error parsing 'connect' value: ")


async def test_near_ip_uses_the_forwarded_source(api: Api) -> None:
    for _ in range(8):
        async with api.http.get(
            api.url + "/v1/query/web-v1/execute?near=_ip",
            headers={"X-Forwarded-For": "2001:db8::3"},
        ) as resp:
            doc = await resp.json()
        assert node_names(doc)[0] == "n3"


async def test_h10_h11_template_explain_and_execute(api: Api) -> None:
    status, doc, _ = await api.call("GET", "/v1/query/geo-web/explain")
    assert status == 200
    query = doc["Query"]
    assert query["Name"] == "geo-" and query["Service"]["Service"] == "web"
    assert query["Service"]["OnlyPassing"] is True
    _, doc, _ = await api.call("GET", "/v1/query/geo-web/execute")
    assert sorted(node_names(doc)) == ["n1", "n2"]  # OnlyPassing drops web-3 (warning)
    status, doc, _ = await api.call("GET", "/v1/query/geo-cache/execute")
    assert status == 200 and doc["Nodes"] == [] and doc["Failovers"] == 0
    # A template is resolved by name only.
    status, text, _ = await api.call("GET", f"/v1/query/{api.ids['P2']}/execute")
    assert status == 500 and "templates can only be resolved up by name" in text


async def test_template_submatches_and_name_variables(api: Api) -> None:
    query_id = await api.create(
        {
            "Name": "geo-db",
            "Template": {
                "Type": "name_prefix_match",
                "Regexp": "^geo-db-(.*?)-([^\\-]+?)$",
                "RemoveEmptyTags": True,
            },
            "Service": {
                "Service": "mysql-${match(1)}",
                "Tags": ["${match(2)}", "${match(7)}", "s${name.suffix}"],
                "ServiceMeta": {"full": "${name.full}", "prefix": "${name.prefix}"},
            },
        }
    )
    try:
        _, doc, _ = await api.call("GET", "/v1/query/geo-db-customer-primary/explain")
        service = doc["Query"]["Service"]
        assert service["Service"] == "mysql-customer"
        # The empty ${match(7)} is dropped (RemoveEmptyTags).
        assert service["Tags"] == ["primary", "s-customer-primary"]
        assert service["ServiceMeta"] == {"full": "geo-db-customer-primary", "prefix": "geo-db"}
        # The longest template prefix wins.
        _, doc, _ = await api.call("GET", "/v1/query/geo-web/explain")
        assert doc["Query"]["Name"] == "geo-"
    finally:
        await api.call("DELETE", f"/v1/query/{query_id}")


async def test_second_empty_name_template_is_refused(api: Api) -> None:
    body = {"Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${name.full}"}}
    query_id = await api.create(body)
    try:
        _, doc, _ = await api.call("GET", "/v1/query/db/execute")  # matches everything
        assert node_names(doc) == ["n1"] and doc["Service"] == "db"
        status, text, _ = await api.call("POST", "/v1/query", body)
        assert status == 500 and text == "a query template with an empty name already exists"
    finally:
        await api.call("DELETE", f"/v1/query/{query_id}")
    status, _, _ = await api.call("GET", "/v1/query/nothing-matches/execute")
    assert status == 404


async def test_tag_negation_and_meta_filters(api: Api) -> None:
    _, doc, _ = await api.call("GET", "/v1/query/web-not-v2/execute")
    assert node_names(doc) == ["n1"]
    await api.create(
        {"Name": "web-prod", "Service": {"Service": "web", "NodeMeta": {"env": "prod"}}}
    )
    _, doc, _ = await api.call("GET", "/v1/query/web-prod/execute")
    assert node_names(doc) == ["n1"]


async def test_failover_in_one_datacenter(api: Api) -> None:
    await api.create(
        {
            "Name": "fo-dcs",
            "Service": {
                "Service": "cache",
                "Failover": {"NearestN": 2, "Datacenters": ["dc2", "dc3"]},
            },
        }
    )
    await api.create(
        {
            "Name": "fo-peer",
            "Service": {
                "Service": "cache",
                "Failover": {"Targets": [{"Peer": "p1"}, {"Datacenter": "dc2"}]},
            },
        }
    )
    _, doc, _ = await api.call("GET", "/v1/query/fo-dcs/execute")
    assert (doc["Nodes"], doc["Failovers"], doc["Datacenter"]) == ([], 0, "dc1")
    _, doc, _ = await api.call("GET", "/v1/query/fo-peer/execute")
    assert (doc["Nodes"], doc["Failovers"]) == ([], 1)
    status, text, _ = await api.call("GET", "/v1/query/fo-dcs/execute?dc=dc2")
    assert (status, text) == (500, "No path to datacenter")


async def test_list_blocks_until_a_query_changes(api: Api) -> None:
    _, _, headers = await api.call("GET", "/v1/query")
    index = int(headers["X-Consul-Index"])
    waiting = asyncio.ensure_future(api.call("GET", f"/v1/query?index={index}&wait=20s"))
    query_id = await api.create({"Name": "blocker", "Service": {"Service": "db"}})
    status, listed, headers = await asyncio.wait_for(waiting, 15)
    assert status == 200 and int(headers["X-Consul-Index"]) > index
    assert query_id in {q["ID"] for q in listed}


# --------------------------------------------------------------------- DNS
async def test_d32_query_a_with_its_ttl(api: Api) -> None:
    resp = await api.client.ask("web-v1.query.consul", "A")
    assert resp.rcode() == dns.rcode.NOERROR
    assert rdatas(resp.answer) == {"A 10.0.0.1"} and ttls(resp.answer) == {10}


async def test_d33_query_srv(api: Api) -> None:
    resp = await api.client.ask("_web-v1._tcp.query.consul", "SRV")
    assert rdatas(resp.answer) == {
        "SRV 1 1 8080 n1.node.dc1.consul.",
        "SRV 1 1 8082 n3.node.dc1.consul.",
    }
    assert owned(resp.additional) == {
        "n1.node.dc1.consul. A 10.0.0.1",
        'n1.node.dc1.consul. TXT "env=prod"',
        'n1.node.dc1.consul. TXT "rack 4"',
        "n3.node.dc1.consul. AAAA 2001:db8::3",
    }
    assert ttls(resp.answer) == {10} and ttls(resp.additional) == {10}


async def test_d34_query_by_id_aaaa(api: Api) -> None:
    resp = await api.client.ask(f"{api.ids['P1']}.query.consul", "AAAA")
    assert rdatas(resp.answer) == {"AAAA 2001:db8::3"} and ttls(resp.answer) == {10}


async def test_d35_template_in_dns(api: Api) -> None:
    resp = await api.client.ask("geo-db.query.consul", "A")
    assert rdatas(resp.answer) == {"A 10.0.0.1"}
    assert is_nxdomain_soa(await api.client.ask("geo-cache.query.consul", "A"))


async def test_d36_tag_negation_and_unknown(api: Api) -> None:
    resp = await api.client.ask("web-not-v2.query.consul", "A")
    assert rdatas(resp.answer) == {"A 10.0.0.1"}
    assert is_nxdomain_soa(await api.client.ask("nope.query.consul", "A"))
    assert is_nxdomain_soa(await api.client.ask("web-v1.query.dc2.consul", "A"))


async def test_h14_update_changes_the_dns_answer(api: Api) -> None:
    assert rdatas((await api.client.ask("web-v1.query.consul", "A")).answer) == {"A 10.0.0.1"}
    updated = dict(P1, Service={"Service": "web", "Tags": ["v2"]})
    status, body, _ = await api.call("PUT", f"/v1/query/{api.ids['P1']}", updated)
    assert (status, body) == (200, None)
    try:
        resp = await api.client.ask("web-v1.query.consul", "A")
        assert rdatas(resp.answer) == {"A 10.0.1.2"}
    finally:
        await api.call("PUT", f"/v1/query/{api.ids['P1']}", P1)


async def test_h15_query_goes_with_its_session(api: Api) -> None:
    status, session, _ = await api.call("PUT", "/v1/session/create", {"Node": "n1", "Checks": []})
    assert status == 200, session
    sid = session["ID"]
    query_id = await api.create({"Session": sid, "Service": {"Service": "db"}})
    assert rdatas((await api.client.ask(f"{query_id}.query.consul", "A")).answer) == {"A 10.0.0.1"}
    status, _, _ = await api.call("PUT", f"/v1/session/destroy/{sid}")
    assert status == 200
    status, text, _ = await api.call("GET", f"/v1/query/{query_id}")
    assert (status, text) == (404, "Query not found")
    assert is_nxdomain_soa(await api.client.ask(f"{query_id}.query.consul", "A"))


async def test_query_goes_when_its_session_is_invalidated_by_a_check(api: Api) -> None:
    check = {
        "Node": "n2",
        "Address": "10.0.0.2",
        "Check": {"CheckID": "lock-check", "Name": "c", "Status": "passing"},
    }
    status, _, _ = await api.call("PUT", "/v1/catalog/register", check)
    assert status == 200
    status, session, _ = await api.call(
        "PUT", "/v1/session/create", {"Node": "n2", "NodeChecks": ["lock-check"]}
    )
    assert status == 200, session
    query_id = await api.create({"Session": session["ID"], "Service": {"Service": "db"}})
    check["Check"]["Status"] = "critical"
    status, _, _ = await api.call("PUT", "/v1/catalog/register", check)
    assert status == 200
    status, _, _ = await api.call("GET", f"/v1/query/{query_id}")
    assert status == 404


async def test_snapshot_save_and_restore_brings_queries_back(api: Api) -> None:
    query_id = await api.create({"Name": "snap-q", "Service": {"Service": "db"}})
    async with api.http.get(api.url + "/v1/snapshot") as resp:
        assert resp.status == 200
        archive = await resp.read()
    status, _, _ = await api.call("DELETE", f"/v1/query/{query_id}")
    assert status == 200
    assert is_nxdomain_soa(await api.client.ask("snap-q.query.consul", "A"))
    status, text, _ = await api.call("PUT", "/v1/snapshot", raw=archive)
    assert status == 200, text
    status, got, _ = await api.call("GET", f"/v1/query/{query_id}")
    assert status == 200 and got[0]["Name"] == "snap-q"
    resp = await api.client.ask("snap-q.query.consul", "A")
    assert rdatas(resp.answer) == {"A 10.0.0.1"}


async def test_dns_near_ip_sorts_by_the_client_subnet(api: Api) -> None:
    await api.create({"Name": "web-near", "Service": {"Service": "web", "Near": "_ip"}})
    client = api.client
    for _ in range(8):
        query = dns.message.make_query(
            "web-near.query.consul",
            "SRV",
            use_edns=0,
            payload=4096,
            options=[dns.edns.ECSOption("2001:db8::3", 128)],
        )
        resp = await dns.asyncquery.udp(query, client.host, port=client.port, timeout=5)
        first = next(iter(resp.answer[0]))
        assert first.target.to_text() == "n3.node.dc1.consul."
