"""SPIFFE ID building and parsing (consulpy.connect.spiffe)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consulpy.connect import spiffe

TD = "11111111-2222-3333-4444-555555555555.consul"


def test_trust_domain_is_cluster_id_dot_consul_lower_case() -> None:
    assert spiffe.trust_domain("ABCDEF-01") == "abcdef-01.consul"


def test_service_uri_format_and_parse() -> None:
    uri = spiffe.service_uri(TD, "dc1", "web")
    assert uri == f"spiffe://{TD}/ns/default/dc/dc1/svc/web"
    parsed = spiffe.parse(uri)
    assert parsed == spiffe.ServiceID(TD, "default", "dc1", "web")
    assert isinstance(parsed, spiffe.ServiceID)
    assert parsed.partition == "default"
    assert parsed.uri() == uri


def test_service_with_namespace_and_partition() -> None:
    assert spiffe.service_uri(TD, "dc2", "db", namespace="team") == (
        f"spiffe://{TD}/ns/team/dc/dc2/svc/db"
    )
    parsed = spiffe.parse(f"spiffe://{TD}/ap/part1/ns/team/dc/dc2/svc/db")
    assert parsed == spiffe.ServiceID(TD, "team", "dc2", "db", partition="part1")
    assert parsed.uri() == f"spiffe://{TD}/ap/part1/ns/team/dc/dc2/svc/db"


def test_percent_encoded_segments_are_decoded_after_matching() -> None:
    parsed = spiffe.parse(f"spiffe://{TD}/ns/default/dc/dc1/svc/my%20svc")
    assert isinstance(parsed, spiffe.ServiceID)
    assert parsed.service == "my svc"
    # An escaped "/" stays inside its segment: it cannot forge an extra path level.
    parsed = spiffe.parse(f"spiffe://{TD}/ns/default/dc/dc1/svc/a%2Fsvc%2Fb")
    assert isinstance(parsed, spiffe.ServiceID)
    assert parsed.service == "a/svc/b"
    assert parsed.datacenter == "dc1"


def test_agent_server_gateway_and_signing_ids() -> None:
    agent = spiffe.parse(spiffe.agent_uri(TD, "dc1", "node-uuid"))
    assert agent == spiffe.AgentID(TD, "dc1", "node-uuid")
    assert spiffe.agent_uri(TD, "dc1", "n1") == f"spiffe://{TD}/agent/client/dc/dc1/id/n1"
    server = spiffe.parse(spiffe.server_uri(TD, "dc1"))
    assert server == spiffe.ServerID(TD, "dc1")
    assert server.uri() == f"spiffe://{TD}/agent/server/dc/dc1"
    gateway = spiffe.parse(f"spiffe://{TD}/gateway/mesh/dc/dc1")
    assert gateway == spiffe.MeshGatewayID(TD, "dc1")
    signing = spiffe.parse(f"spiffe://{TD}")
    assert signing == spiffe.SigningID("11111111-2222-3333-4444-555555555555", "consul")
    assert signing.uri() == spiffe.signing_uri(TD) == f"spiffe://{TD}"


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        (f"https://{TD}/ns/default/dc/dc1/svc/web", "'spiffe' scheme"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/web/extra", "not in the expected format"),
        (f"spiffe://{TD}/ns/default/svc/web", "not in the expected format"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/", "not in the expected format"),
        (f"spiffe://{TD}/agent/web", "not in the expected format"),
        ("spiffe://nodot", "not in the expected format"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/web?x=1", "query or fragment"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/web#frag", "query or fragment"),
        (f"spiffe://{TD}:8443/ns/default/dc/dc1/svc/web", "port or user info"),
        (f"spiffe://user@{TD}/ns/default/dc/dc1/svc/web", "port or user info"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/we\tb", "printable ASCII"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/wéb", "printable ASCII"),
        ("not a uri at all", "printable ASCII"),
        (f"spiffe://{TD}/ns/default/dc/dc1/svc/%ff%fe", "Invalid service"),
    ],
)
def test_parse_rejects(uri: str, fragment: str) -> None:
    with pytest.raises(spiffe.SpiffeError, match=fragment.replace("?", r"\?")):
        spiffe.parse(uri)


def test_can_sign_compares_trust_domains_case_insensitively() -> None:
    signer = spiffe.SigningID("11111111-2222-3333-4444-555555555555")
    assert signer.can_sign(spiffe.ServiceID(TD.upper(), "default", "dc1", "web"))
    assert not signer.can_sign(spiffe.ServiceID("other.consul", "default", "dc1", "web"))
    assert signer.can_sign(spiffe.SigningID("11111111-2222-3333-4444-555555555555"))
    assert not signer.can_sign(spiffe.AgentID(TD, "dc1", "n1"))


_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
)


@given(namespace=_names, datacenter=_names, service=_names)
def test_service_ids_round_trip(namespace: str, datacenter: str, service: str) -> None:
    ident = spiffe.ServiceID(TD, namespace, datacenter, service)
    assert spiffe.parse(ident.uri()) == ident
