"""The endpoint registry covers every store query: a read added to server/reads.py without an
endpoint would be unreachable (the RPC dispatcher serves only registered endpoints)."""

from __future__ import annotations

from consulpy.server.endpoints import REGISTRY, Kind
from consulpy.server.reads import READS


def test_every_read_is_an_endpoint() -> None:
    reads = {name for name, ep in REGISTRY.items() if ep.kind is Kind.READ}
    assert reads == set(READS)
    assert all(REGISTRY[name].read is fn for name, fn in READS.items())
