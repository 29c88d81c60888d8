"""The one compiler: what write-time validation compiles is the chain the endpoint serves,
and nested splitters are flattened the same way for everyone."""

from __future__ import annotations

from typing import Any

import pytest

from consulpy.connect import config_entries as ce
from tests.connect.chain_scenario import ENTRIES, NODES, ROUTES, TARGETS, routes_of


def stored() -> list[dict[str, Any]]:
    return [ce.normalize(e) for e in ENTRIES]


def test_validation_accepts_the_scenario_and_compiles_the_same_chain() -> None:
    entries: list[dict[str, Any]] = []
    for entry in stored():  # written one by one, each checked against what is stored so far
        lookup = ce.lookup_in(entries)
        ce.check_graph(entry, lookup, list_entries=lambda k: [e for e in entries if e["Kind"] == k])
        entries.append(entry)
    validated = ce.compile_chain(
        "api",
        ce.lookup_in(entries),
        datacenter=ce.VALIDATE_DATACENTER,
        trust_domain=ce.VALIDATE_TRUST_DOMAIN,
    ).to_api()
    served = ce.compile_chain(
        "api", ce.lookup_in(entries), datacenter="dc1", trust_domain="td.consul"
    ).to_api()
    assert routes_of(validated) == routes_of(served) == ROUTES
    assert set(served["Targets"]) == TARGETS
    assert set(served["Nodes"]) == NODES  # api-next's splitter was flattened away


def test_nested_splitter_weights_multiply() -> None:
    chain = ce.compile_chain(
        "api", ce.lookup_in(stored()), datacenter="dc1", trust_domain="td.consul"
    )
    assert chain.resolver_targets("splitter:api.default.default") == [
        ("v1.api.default.default.dc1", 80.0),
        ("v2.api.default.default.dc1", 10.0),
        ("api-canary.default.default.dc1", 10.0),
    ]


def test_splitter_loop_is_a_graph_error_with_consuls_text() -> None:
    entries = [
        ce.normalize(e)
        for e in (
            {"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}},
            {"Kind": "service-splitter", "Name": "a", "Splits": [{"Weight": 100, "Service": "b"}]},
            {"Kind": "service-splitter", "Name": "b", "Splits": [{"Weight": 100, "Service": "a"}]},
        )
    ]
    with pytest.raises(ce.GraphError) as err:
        ce.compile_chain("a", ce.lookup_in(entries), datacenter="dc1", trust_domain="td")
    assert str(err.value) == (
        "detected circular reference: [splitter:a.default.default -> "
        "splitter:b.default.default -> splitter:a.default.default]"
    )


def test_upstream_settings_are_compile_overrides() -> None:
    from consulpy.agent.proxycfg import compile_upstream

    upstream = {
        "DestinationName": "api",
        "Config": {"protocol": "tcp", "connect_timeout_ms": 1500},
        "MeshGateway": {"Mode": "remote"},
    }
    chain = compile_upstream(upstream, ce.lookup_in(stored()), "dc1", "td.consul").to_api()
    assert chain["Protocol"] == "tcp"
    assert chain["StartNode"] == "resolver:v1.api.default.default.dc1"
    target = chain["Targets"]["v1.api.default.default.dc1"]
    assert target["ConnectTimeout"] == "1.5s"
    assert target["MeshGateway"] == {"Mode": "remote"}
    assert len(chain["CustomizationHash"]) == 8


def test_the_read_needs_an_initialized_ca() -> None:
    from consulpy.server.reads import READS, ReadError
    from consulpy.state.store import StateStore

    with pytest.raises(ReadError, match=r"^no cluster ca config setup$"):
        READS["DiscoveryChain.Get"](StateStore(), {"name": "web", "compile_dc": "dc1"}, None)
