"""Consistency checks of a store's rows, run on what a server loads at start (its snapshot).

Today's FSM applies an entry completely or not at all, and the endpoints refuse malformed
rows before the log. Stores written by older versions may hold what those let through: a
service whose `Connect` is a number, a check on a service that is not there, a lock held by
a session that no longer exists. Such rows are reported (one warning per problem, with the
row's key), not rewritten: only the FSM changes replicated state, and a server repairing its
own copy would diverge from the others. The operator fixes them with ordinary API calls
(deregister the service, delete the key), which replicate.
"""

from __future__ import annotations

from typing import Any

from consulpy.state.store import StateStore

# Fields of catalog rows and the types every reader of the row relies on.
_SERVICE_TYPES: dict[str, tuple[type, ...]] = {
    "ID": (str,),
    "Service": (str,),
    "Kind": (str,),
    "Tags": (list, type(None)),
    "Address": (str,),
    "Port": (int,),
    "Meta": (dict, type(None)),
    "TaggedAddresses": (dict, type(None)),
    "Weights": (dict, type(None)),
    "Proxy": (dict, type(None)),
    "Connect": (dict, type(None)),
    "EnableTagOverride": (bool,),
}
_CHECK_TYPES: dict[str, tuple[type, ...]] = {
    "CheckID": (str,),
    "Name": (str,),
    "Status": (str,),
    "ServiceID": (str,),
    "Output": (str,),
    "Notes": (str,),
}
_NODE_TYPES: dict[str, tuple[type, ...]] = {
    "Node": (str,),
    "Address": (str,),
    "Meta": (dict, type(None)),
    "TaggedAddresses": (dict, type(None)),
}


def _types(what: str, row: dict[str, Any], spec: dict[str, tuple[type, ...]]) -> list[str]:
    out = []
    for name, allowed in spec.items():
        if name not in row:
            if name in ("ID", "Service", "CheckID", "Node"):
                out.append(f"{what}: missing {name}")
            continue
        value = row[name]
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            out.append(f"{what}: {name} is a {type(value).__name__}")
    return out


def problems(store: StateStore) -> list[str]:
    """Every inconsistency found, as one line each (empty: the store is sound)."""
    out: list[str] = []
    catalog = store.catalog
    for name, row in catalog.nodes.items():
        out += _types(f"node {name!r}", row, _NODE_TYPES)
    for (node, sid), row in catalog.services.items():
        what = f"service {sid!r} on node {node!r}"
        out += _types(what, row, _SERVICE_TYPES)
        if node not in catalog.nodes:
            out.append(f"{what}: the node is not registered")
    for (node, cid), row in catalog.checks.items():
        what = f"check {cid!r} on node {node!r}"
        out += _types(what, row, _CHECK_TYPES)
        if node not in catalog.nodes:
            out.append(f"{what}: the node is not registered")
        sid = row.get("ServiceID")
        if sid and (node, sid) not in catalog.services:
            out.append(f"{what}: service {sid!r} is not registered")
        if row.get("Status") not in ("passing", "warning", "critical", "maintenance"):
            out.append(f"{what}: unknown status {row.get('Status')!r}")
    held = [(key, sid) for sid, keys in store.kv.held.items() for key in keys]  # no values read
    for key, sid in sorted(held):
        if store.sessions.get(sid) is None:
            out.append(f"key {key!r}: held by session {sid!r}, which is gone")
    for session in store.sessions.list():
        if session.node not in catalog.nodes:
            out.append(f"session {session.id!r}: node {session.node!r} is not registered")
    return out
