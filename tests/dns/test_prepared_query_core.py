"""The prepared-query core (not wired to HTTP/FSM/DNS yet): validation texts, templates,
name resolution and local execution, with the spec's example queries P1-P3."""

from __future__ import annotations

import random

import pytest

from consulpy.config.checks import node_meta_entry
from consulpy.server.prepared_query import execute
from consulpy.state import prepared_queries as pq

P1 = {
    "ID": "5e1e24e5-1329-f86f-18c6-3d3734edb2cd",
    "Name": "web-v1",
    "Service": {"Service": "web", "Tags": ["v1"]},
    "DNS": {"TTL": "10s"},
}
P2 = {
    "ID": "6e1e24e5-1329-f86f-18c6-3d3734edb2cd",
    "Name": "geo-",
    "Template": {"Type": "name_prefix_match", "Regexp": "^geo-(.+)$"},
    "Service": {"Service": "${match(1)}", "OnlyPassing": True},
}
P3 = {
    "ID": "7e1e24e5-1329-f86f-18c6-3d3734edb2cd",
    "Name": "web-not-v2",
    "Service": {"Service": "web", "Tags": ["!v2"]},
}


def row(node: str, tags: list[str], status: str, **meta: str) -> dict:
    return {
        "Node": {"Node": node, "Address": "10.0.0.1", "Meta": dict(meta)},
        "Service": {"ID": f"web-{node}", "Service": "web", "Tags": tags, "Meta": {}},
        "Checks": [
            {"CheckID": "serfHealth", "Status": "passing"},
            {"CheckID": "c", "Status": status},
        ],
    }


WEB = [
    row("n1", ["v1"], "passing", env="prod"),
    row("n2", ["v2"], "passing"),
    row("n3", ["v1", "v2"], "warning"),
    row("n4", ["v1"], "critical"),
]


@pytest.mark.parametrize(
    ("query", "creating", "message"),
    [
        ({"ID": "x", "Name": "a", "Service": {"Service": "web"}}, True, "ID must be empty"),
        ({"Service": {"Service": "web"}}, True, "Must be bound to a session"),  # H3
        ({"Name": "x", "Service": {}}, True, "Must provide a Service name to query"),  # H4
        (
            {"Name": "x", "Service": {"Service": "web"}, "DNS": {"TTL": "abc"}},
            True,
            "Bad DNS TTL 'abc'",
        ),  # H5
        (
            {"Name": "x", "Token": "<hidden>", "Service": {"Service": "web"}},
            True,
            "redacted token",
        ),
        (
            {
                "Name": "x",
                "Service": {
                    "Service": "web",
                    "Failover": {"NearestN": 1, "Targets": [{"Peer": "p"}]},
                },
            },
            True,
            "Targets cannot be populated with NearestN or Datacenters",
        ),  # H7
        (
            {"Name": "x", "Service": {"Service": "web", "Failover": {"NearestN": -1}}},
            True,
            "Bad NearestN '-1'",
        ),
        (
            {"Name": "x", "Service": {"Service": "web", "NodeMeta": {"consul-x": "1"}}},
            True,
            "reserved prefix",
        ),
    ],
)
def test_validation_texts(query: dict, creating: bool, message: str) -> None:
    with pytest.raises(pq.QueryError, match=message):
        pq.validate(query, creating=creating, check_node_meta=node_meta_entry)


def test_aliases_and_templates_at_write_time() -> None:
    with pytest.raises(pq.QueryError, match="aliases an existing query name"):  # H2
        pq.check_against({"Name": "WEB-V1"}, [P1])
    with pytest.raises(pq.QueryError, match="aliases an existing query ID"):
        pq.check_against({"Name": P1["ID"]}, [P1])
    empty = {"Template": {"Type": "name_prefix_match"}, "Service": {"Service": "x"}}
    with pytest.raises(pq.QueryError, match="a query template with an empty name already exists"):
        pq.check_against(empty, [dict(empty, ID="1")])
    with pytest.raises(pq.QueryError, match=r"Bad Template\.Type 'bogus'"):  # H6
        pq.compile_template({"Name": "t", "Template": {"Type": "bogus"}, "Service": {}})
    with pytest.raises(pq.QueryError, match="Bad Regexp"):
        pq.compile_template(
            {"Name": "t", "Template": {"Type": "name_prefix_match", "Regexp": "("}, "Service": {}}
        )
    with pytest.raises(pq.QueryError, match="Bad evaluation"):
        pq.compile_template(
            {"Name": "t", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${x}"}}
        )
    with pytest.raises(pq.QueryError, match="Bad format"):
        pq.compile_template(
            {"Name": "t", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${x"}}
        )


def test_template_variables() -> None:
    template = {
        "Name": "geo-db",
        "Template": {
            "Type": "name_prefix_match",
            "Regexp": r"^geo-db-(.*?)-([^\-]+?)$",
            "RemoveEmptyTags": True,
        },
        "Service": {
            "Service": "mysql-${match(1)}",
            "Tags": ["${match(2)}", "${match(7)}", "${name.suffix}", "${name.full}"],
            "ServiceMeta": {"k": "${name.prefix}"},
        },
    }
    rendered = pq.compile_template(template).render("geo-db-customer-primary")  # type: ignore[union-attr]
    service = rendered["Service"]
    assert service["Service"] == "mysql-customer"
    assert service["Tags"] == ["primary", "-customer-primary", "geo-db-customer-primary"]
    assert service["ServiceMeta"] == {"k": "geo-db"}


def test_resolution_precedence() -> None:
    queries = [P1, P2, P3, dict(P2, ID="8e1e24e5-1329-f86f-18c6-3d3734edb2cd", Name="geo-w")]
    assert pq.resolve(queries, "WEB-V1") is P1
    assert pq.resolve(queries, P1["ID"]) is P1
    assert pq.resolve(queries, "geo-db")["Service"]["Service"] == "db"  # type: ignore[index]
    # The longer template prefix wins.
    assert pq.resolve(queries, "geo-web")["Name"] == "geo-w"  # type: ignore[index]
    assert pq.resolve(queries, "nope") is None
    with pytest.raises(pq.QueryError, match="resolved up by name, not by ID"):
        pq.resolve(queries, P2["ID"])


def test_execute_filters_tags_health_and_limit() -> None:
    rng = random.Random(3)
    result = execute(P1, WEB, rng=rng)  # H8: web-1 + web-3 (warning kept, critical dropped)
    assert {r["Node"]["Node"] for r in result.nodes} == {"n1", "n3"}
    assert result.to_api()["DNS"] == {"TTL": "10s"} and result.to_api()["Failovers"] == 0
    assert {r["Node"]["Node"] for r in execute(P3, WEB, rng=rng).nodes} == {"n1"}
    passing = execute({"Service": {"Service": "web", "OnlyPassing": True}}, WEB, rng=rng)
    assert {r["Node"]["Node"] for r in passing.nodes} == {"n1", "n2"}
    ignoring = {"Service": {"Service": "web", "IgnoreCheckIDs": ["c"]}}
    assert len(execute(ignoring, WEB, rng=rng).nodes) == 4
    meta = {"Service": {"Service": "web", "NodeMeta": {"env": "prod"}}}
    assert [r["Node"]["Node"] for r in execute(meta, WEB, rng=rng).nodes] == ["n1"]
    assert len(execute(P1, WEB, limit=1, rng=rng).nodes) == 1  # H9
    for seed in range(10):
        first = execute(P1, WEB, near="N3", rng=random.Random(seed)).nodes[0]
        assert first["Node"]["Node"] == "n3"
