"""In-process calls check their typed payload in place: the same refusals, with the same texts,
as the payload would get as a map over RPC, and the payload itself when it is fine."""

from __future__ import annotations

import pytest

from consulpy.server.endpoints import REGISTRY
from consulpy.server.endpoints.catalog import ServiceNodes
from consulpy.server.endpoints.kvs import KVSApply
from consulpy.server.endpoints.request import check_payload, decode_payload, payload_to_wire
from consulpy.server.errors import RequestError
from consulpy.server.server import read_payload


@pytest.mark.parametrize(
    "payload",
    [
        ServiceNodes("web", tags=["a", 1]),  # type: ignore[list-item]
        ServiceNodes("web", connect="yes"),  # type: ignore[arg-type]
        ServiceNodes("web\ud800"),
        ServiceNodes("web", node_meta=[["k\udc80", "v"]]),
        ServiceNodes("wéb\ud800", tags=[3]),  # type: ignore[list-item]
        KVSApply("set", "k", "not bytes"),  # type: ignore[arg-type]
    ],
)
def test_refusals_match_the_wire_checks(payload: object) -> None:
    with pytest.raises(RequestError) as wire:
        decode_payload(type(payload), payload_to_wire(payload))
    with pytest.raises(RequestError) as in_place:
        check_payload(type(payload), payload)
    assert str(in_place.value) == str(wire.value)


def test_a_good_payload_is_passed_through() -> None:
    payload = KVSApply("set", "clé/ünïcode", b"v", flags=3)
    assert check_payload(KVSApply, payload) is payload
    typed = ServiceNodes("web", tags=["v1"])
    assert read_payload(REGISTRY["Catalog.ServiceNodes"], typed) is typed
