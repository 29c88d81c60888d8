"""Every endpoint's payload is a typed record: what a raw caller sends is checked field by
field (elements of lists and maps too) before any endpoint code runs."""

from __future__ import annotations

import pytest

from consulpy.server.endpoints import REGISTRY
from consulpy.server.endpoints.catalog import ServiceNodes
from consulpy.server.endpoints.request import Empty, decode_payload, payload_to_wire
from consulpy.server.errors import RequestError
from consulpy.server.server import read_payload


def test_every_endpoint_declares_its_own_payload_type() -> None:
    for name, ep in REGISTRY.items():
        assert ep.payload is Empty or ep.payload.__dataclass_params__.frozen, name


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"service": "web", "tags": ["a", 1]}, "field tags"),
        ({"service": "web", "node_meta": [["k", 2]]}, "field node_meta"),
        ({"service": "web", "connect": "yes"}, "field connect"),
        ({"service": "web", "segment": "alpha"}, "unknown field"),
        ({"service": "web\ud800"}, "not valid UTF-8"),
        ({"service": "web", "node_meta": [["k\udc80", "v"]]}, "not valid UTF-8"),
        ({}, "missing 1 required"),
    ],
)
def test_wrong_fields_are_refused(data: dict[str, object], why: str) -> None:
    with pytest.raises(RequestError, match=why):
        decode_payload(ServiceNodes, data)


def test_a_read_takes_its_payload_or_the_same_fields_as_a_map() -> None:
    ep = REGISTRY["Catalog.ServiceNodes"]
    typed = ServiceNodes("web", tags=["v1"])
    assert read_payload(ep, typed) == typed
    assert read_payload(ep, payload_to_wire(typed)) == typed
    with pytest.raises(RequestError):
        read_payload(ep, {"key": "web"})


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_anywhere_in_a_payload_are_refused(number: float) -> None:
    """msgpack carries NaN and infinities; a raw RPC caller could store one in a free-form
    field (a register's Proxy config) and every later JSON read of the row would be invalid."""
    from consulpy.server.endpoints.catalog import CatalogRegister

    payload = {"request": {"Node": "n", "Address": "1.2.3.4", "Service": {"Proxy": {"x": number}}}}
    with pytest.raises(RequestError, match="not a finite number"):
        decode_payload(CatalogRegister, payload)
