"""A deterministic hash of the replicated state, to compare servers and replays.

Two stores that applied the same log hold the same rows, but not necessarily in the same
dict order (a snapshot restore rebuilds tables in dump order; a live table keeps insertion
order). The digest canonicalises the snapshot document: maps by sorted key, the rows of each
table as a sorted set. Lists inside a row (tags, roots, rules) keep their order: it is data.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack

from consulpy.state.store import StateStore

# doc["sessions"] is a table (depth 1), doc["kv"]["entries"] is one (depth 2); deeper lists
# belong to rows.
_TABLE_DEPTH = 2


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _canonical(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        items = [(_pack(k), _canonical(v, depth + 1)) for k, v in value.items()]
        items.sort(key=lambda kv: kv[0])
        return [[k, v] for k, v in items]
    if isinstance(value, (list, tuple)):
        rows = [_canonical(v, depth + 1) for v in value]
        if depth <= _TABLE_DEPTH:
            rows.sort(key=_pack)
        return rows
    return value


def state_digest(store: StateStore, *, with_indexes: bool = True) -> str:
    """SHA-256 (hex) of the store's canonical content. `with_indexes=False` leaves out the
    Raft indexes (`last_index`, the table indexes), to compare contents alone."""
    doc = msgpack.unpackb(store.snapshot(), raw=False, strict_map_key=False)
    if not with_indexes:
        doc.pop("last_index", None)
        doc.pop("indexes", None)
    return hashlib.sha256(_pack(_canonical(doc, 0))).hexdigest()
