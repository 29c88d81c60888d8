"""The named reads a server answers, each `fn(store, args, ws) -> (index, result)`.

Reads are addressed by name with msgpack-encodable arguments and results, so the same read
runs locally on a dev agent or on a server that a client agent forwarded it to. Results are
in Consul's wire shape (bytes where Consul renders base64); `None` means "not found" where
Consul answers 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consulpy.server.acl_reads import ACL_READS
from consulpy.server.rtt import entry_node, node_field, sort_by_distance
from consulpy.state.snapshot_stream import FrozenState
from consulpy.state.store import StateStore
from consulpy.state.txnops import apply_op
from consulpy.state.views import (
    catalog_service_view,
    check_view,
    node_service_view,
    node_view,
    service_entry_view,
)
from consulpy.state.watch import WatchSet

ReadFn = Callable[[StateStore, dict[str, Any], WatchSet | None], tuple[int, Any]]


def kv_get(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, entry = store.kv_get(ws, args["key"])
    return index, ([entry.to_wire()] if entry is not None else None)


def kv_list(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, entries = store.kv_list(ws, args["key"])
    return index, ([e.to_wire() for e in entries] if entries else None)


def kv_keys(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    prefix = args["key"]
    index, keys = store.kv_keys(ws, prefix, args.get("separator", ""))
    if not keys and prefix:
        return index, None
    return index, keys


def session_info(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, session = store.session_get(ws, args["id"])
    return index, ([session.to_wire()] if session is not None else [])


def session_list(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, sessions = store.session_list(ws)
    return index, [s.to_wire() for s in sessions]


def session_node(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    index, sessions = store.session_node(ws, args["node"])
    return index, [s.to_wire() for s in sessions]


def txn_read(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """A read-only transaction, evaluated against the local store without a log entry."""
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    txn = store.txn(store.last_index)
    try:
        for op_index, op in enumerate(args["ops"]):
            outcome = apply_op(store, txn, op, 0.0)
            if isinstance(outcome, str):
                errors.append({"OpIndex": op_index, "What": outcome})
            else:
                results.extend(outcome)
    finally:
        txn.abort()
    if errors:
        return store.last_index, {"Results": None, "Errors": errors}
    return store.last_index, {"Results": results, "Errors": None}


READS: dict[str, ReadFn] = {
    "KVS.Get": kv_get,
    "KVS.List": kv_list,
    "KVS.ListKeys": kv_keys,
    "Session.Get": session_info,
    "Session.List": session_list,
    "Session.NodeSessions": session_node,
    "Txn.Read": txn_read,
}


# ------------------------------------------------------------------ catalog
class ReadError(Exception):
    """A read the server refuses (Consul answers these with 500 and the text)."""


def _apply_filter(items: list[Any], expr: str, schema: str) -> list[Any]:
    if not expr:
        return items
    from consulpy.server.filtering import filter_items

    try:
        return filter_items(items, expr, schema)
    except ValueError as exc:
        raise ReadError(f"Failed to create boolean expression evaluator: {exc}") from exc


def _meta_ok(node: dict[str, Any] | None, pairs: list[list[str]]) -> bool:
    if not pairs:
        return True
    meta = (node or {}).get("Meta") or {}
    return all(k in meta and meta[k] == v for k, v in pairs)


def _has_tags(svc: dict[str, Any], tags: list[str]) -> bool:
    """Consul compares tags case-insensitively (serviceTagFilter lower-cases both sides)."""
    if not tags:
        return True
    have = {t.lower() for t in svc.get("Tags") or ()}
    return all(t.lower() in have for t in tags if t)


def _near(store: StateStore, args: dict[str, Any], items: Any, node_of: Any) -> Any:
    """`?near=`: sort by estimated RTT from the named node (the HTTP layer resolved
    `_agent` to the agent's node name)."""
    near = args.get("near") or ""
    if not near or not isinstance(items, list):
        return items
    return sort_by_distance(store, near, items, node_of)


def _service_index(store: StateStore, name: str, exists: bool) -> int:
    """Consul's maxIndexForService: the service's own index when it has instances, the last
    service extinction otherwise, falling back to the catalog tables' index."""
    if not exists:
        extinct = store.table_index("service_extinction")
        if extinct:
            return extinct
    idx = store.catalog.service_index.get(name)
    if idx:
        return idx
    return store.table_index("nodes", "services")


def catalog_nodes(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    if ws is not None:
        ws.add(("t", "nodes"))
    nodes = [
        node_view(store.catalog.nodes[name])
        for name in sorted(store.catalog.nodes)
        if _meta_ok(store.catalog.nodes[name], args.get("node_meta", []))
    ]
    nodes = _apply_filter(nodes, args.get("filter", ""), "node")
    return store.table_index("nodes"), _near(store, args, nodes, node_field)


def catalog_services(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    if ws is not None:
        ws.add(("t", "services"))
        if args.get("node_meta"):
            ws.add(("t", "nodes"))
    catalog = store.catalog
    pairs = args.get("node_meta", [])
    rows = [
        (catalog.nodes.get(svc["Node"]), svc)
        for svc in catalog.services.values()
        if _meta_ok(catalog.nodes.get(svc["Node"]), pairs)
    ]
    expr = args.get("filter", "")
    if expr:
        views = [catalog_service_view(n, s) for n, s in rows if n is not None]
        views = _apply_filter(views, expr, "catalog_service")
        pairs_out = [(v["ServiceName"], v["ServiceTags"]) for v in views]
    else:
        pairs_out = [(s["Service"], s.get("Tags") or []) for _, s in rows]
    result: dict[str, list[str]] = {}
    for name, tags in pairs_out:
        bucket = result.setdefault(name, [])
        for tag in tags:
            if tag not in bucket:
                bucket.append(tag)
    index = store.table_index("services", "nodes") if pairs else store.table_index("services")
    return index, {name: sorted(result[name]) for name in sorted(result)}


def gateway_services(store: StateStore, gateway: str) -> list[dict[str, Any]]:
    """Consul's gateway-services mapping for one gateway, from its ingress-gateway or
    terminating-gateway config entry: one row per linked service (a wildcard "*" listed in
    an ingress listener stands for every service of the catalog but the gateway itself)."""
    rows: list[dict[str, Any]] = []
    ingress = store.connect.entry("ingress-gateway", gateway)
    if ingress is not None:
        for listener in ingress.get("Listeners") or []:
            for svc in listener.get("Services") or []:
                name = svc.get("Name") or ""
                names = [name]
                if name == "*":
                    names = sorted(
                        n
                        for n in store.catalog.services_by_name
                        if n not in (gateway, "consul") and store.catalog.service_instances(n)
                    )
                for one in names:
                    row: dict[str, Any] = {
                        "Gateway": {"Name": gateway},
                        "Service": {"Name": one},
                        "GatewayKind": "ingress-gateway",
                        "Port": listener.get("Port") or 0,
                        "Protocol": listener.get("Protocol") or "tcp",
                    }
                    if svc.get("Hosts"):
                        row["Hosts"] = list(svc["Hosts"])
                    if name == "*":
                        row["FromWildcard"] = True
                    row["CreateIndex"] = ingress.get("CreateIndex", 0)
                    row["ModifyIndex"] = ingress.get("ModifyIndex", 0)
                    rows.append(row)
    terminating = store.connect.entry("terminating-gateway", gateway)
    if terminating is not None:
        linked = _terminating_links(store, terminating)
        for name in sorted(linked):
            svc, wildcard = linked[name]
            row = {
                "Gateway": {"Name": gateway},
                "Service": {"Name": name},
                "GatewayKind": "terminating-gateway",
            }
            for key in ("CAFile", "CertFile", "KeyFile", "SNI"):
                if svc.get(key):
                    row[key] = svc[key]
            if wildcard:
                row["FromWildcard"] = True
            row["CreateIndex"] = terminating.get("CreateIndex", 0)
            row["ModifyIndex"] = terminating.get("ModifyIndex", 0)
            rows.append(row)
    return rows


def _typical_services(store: StateStore) -> list[str]:
    """The names a gateway wildcard stands for: services of the typical kind (no proxies, no
    gateways), `consul` aside, as Consul's wildcard links them."""
    catalog = store.catalog
    return sorted(
        name
        for name in catalog.services_by_name
        if name != "consul" and any(not s.get("Kind") for s in catalog.service_instances(name))
    )


def _terminating_links(
    store: StateStore, entry: dict[str, Any]
) -> dict[str, tuple[dict[str, Any], bool]]:
    """Service name -> (the entry's item for it, linked through the wildcard) for one
    terminating-gateway entry: a "*" item links every typical service with its TLS settings;
    a service's own item wins over the wildcard's."""
    out: dict[str, tuple[dict[str, Any], bool]] = {}
    items = entry.get("Services") or []
    for svc in items:
        if svc.get("Name") == "*":
            for name in _typical_services(store):
                out[name] = (svc, True)
    for svc in items:
        name = svc.get("Name") or ""
        if name != "*":
            out[name] = (svc, False)
    return out


def catalog_gateway_services(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    if ws is not None:
        ws.add(("t", "config_entries"))
        ws.add(("t", "services"))
    index = store.table_index("config_entries", "services")
    return index, gateway_services(store, args["gateway"])


def _ingress_gateways(store: StateStore, name: str) -> list[str]:
    """The ingress gateways whose configuration routes to service `name`."""
    found = []
    for entry in store.connect.list_entries("ingress-gateway"):
        gateway = entry["Name"]
        if any(row["Service"]["Name"] == name for row in gateway_services(store, gateway)):
            found.append(gateway)
    return found


def _terminating_gateways(store: StateStore, name: str) -> list[str]:
    """The terminating gateways whose config entry links service `name` (by name or by a
    wildcard)."""
    return [
        entry["Name"]
        for entry in store.connect.list_entries("terminating-gateway")
        if _links(store, entry, name)
    ]


def _links(store: StateStore, entry: dict[str, Any], name: str) -> bool:
    """Whether a terminating-gateway entry links `name` (the one-name check of
    `_terminating_links`, without listing the catalog)."""
    names = {svc.get("Name") or "" for svc in entry.get("Services") or []}
    if name in names:
        return True
    return (
        "*" in names
        and name != "consul"
        and any(not s.get("Kind") for s in store.catalog.service_instances(name))
    )


def _instances(
    store: StateStore, name: str, connect: bool, ingress: bool = False
) -> list[dict[str, Any]]:
    catalog = store.catalog
    if connect:
        # A service linked to a terminating gateway is reached through the gateway: its
        # connect instances are the gateway's, as in Consul.
        gateways = [
            svc
            for gateway in _terminating_gateways(store, name)
            for svc in catalog.service_instances(gateway)
            if svc.get("Kind") == "terminating-gateway"
        ]
        if gateways:
            keys = sorted(catalog.connect_by_dest.get(name, ()))
            return [catalog.services[k] for k in keys] + gateways
    if ingress:
        return [
            svc
            for gateway in _ingress_gateways(store, name)
            for svc in catalog.service_instances(gateway)
            if svc.get("Kind") == "ingress-gateway"
        ]
    if connect:
        keys = sorted(catalog.connect_by_dest.get(name, ()))
        return [catalog.services[k] for k in keys]
    return catalog.service_instances(name)


def catalog_service(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    name = args["service"]
    if ws is not None:
        ws.add(("svc", name))
        ws.add(("svc_extinction",))
    catalog = store.catalog
    instances = _instances(store, name, args.get("connect", False))
    index = _service_index(store, name, bool(instances))
    tags = args.get("tags", [])
    pairs = args.get("node_meta", [])
    rows = []
    for svc in instances:
        node = catalog.nodes.get(svc["Node"])
        if node is None or not _has_tags(svc, tags) or not _meta_ok(node, pairs):
            continue
        rows.append(catalog_service_view(node, svc))
    rows = _apply_filter(rows, args.get("filter", ""), "catalog_service")
    return index, _near(store, args, rows, node_field)


def catalog_node(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    name = args["node"]
    if ws is not None:
        ws.add(("node", name))
    catalog = store.catalog
    node = catalog.node(name)
    if node is None:
        return store.table_index("nodes", "services"), None
    services = [node_service_view(s) for s in catalog.node_services(name)]
    services = _apply_filter(services, args.get("filter", ""), "node_service")
    index = catalog.node_index.get(name) or store.table_index("nodes", "services")
    if args.get("as_list"):
        return index, {"Node": node_view(node), "Services": services}
    return index, {"Node": node_view(node), "Services": {s["ID"]: s for s in services}}


# ------------------------------------------------------------------- health
def _checks_index(store: StateStore) -> int:
    return store.table_index("checks")


def health_node(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    name = args["node"]
    if ws is not None:
        ws.add(("node", name))
    checks = [check_view(c) for c in store.catalog.node_checks(name)]
    return _checks_index(store), _apply_filter(checks, args.get("filter", ""), "health_check")


def health_checks(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    name = args["service"]
    if ws is not None:
        ws.add(("svc", name))
    catalog = store.catalog
    pairs = args.get("node_meta", [])
    checks = []
    for svc in catalog.service_instances(name):
        if not _meta_ok(catalog.nodes.get(svc["Node"]), pairs):
            continue
        for check in catalog.node_checks(svc["Node"]):
            if check.get("ServiceID") == svc["ID"]:
                checks.append(check_view(check))
    checks = _apply_filter(checks, args.get("filter", ""), "health_check")
    return _checks_index(store), _near(store, args, checks, node_field)


def health_state(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    state = args["state"]
    if ws is not None:
        ws.add(("t", "checks"))
        if args.get("node_meta"):
            ws.add(("t", "nodes"))
    catalog = store.catalog
    pairs = args.get("node_meta", [])
    checks = [
        check_view(c)
        for key, c in sorted(catalog.checks.items())
        if (state == "any" or c["Status"] == state) and _meta_ok(catalog.nodes.get(key[0]), pairs)
    ]
    checks = _apply_filter(checks, args.get("filter", ""), "health_check")
    return _checks_index(store), _near(store, args, checks, node_field)


def health_service(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    name = args["service"]
    if ws is not None:
        ws.add(("svc", name))
        ws.add(("svc_extinction",))
    catalog = store.catalog
    ingress = args.get("ingress", False)
    connect = args.get("connect", False)
    if ingress and ws is not None:
        ws.add(("t", "config_entries"))
        ws.add(("t", "services"))
    if connect and ws is not None:  # a terminating gateway may link (or unlink) the service
        ws.add(("ce", "terminating-gateway"))
        for gateway in _terminating_gateways(store, name):
            ws.add(("svc", gateway))
    instances = _instances(store, name, connect, ingress)
    index = _service_index(store, name, bool(instances))
    if ingress or (connect and _terminating_gateways(store, name)):
        # (a linked service's index moves with the gateways' and the config entries')
        index = max(index, store.table_index("config_entries", "services", "checks"))
    tags = args.get("tags", [])
    pairs = args.get("node_meta", [])
    passing_only = args.get("passing", False)
    entries = []
    for svc in instances:
        node = catalog.nodes.get(svc["Node"])
        if node is None or not _has_tags(svc, tags) or not _meta_ok(node, pairs):
            continue
        checks = [
            c
            for c in catalog.node_checks(svc["Node"])
            if not c.get("ServiceID") or c.get("ServiceID") == svc["ID"]
        ]
        if passing_only and any(c["Status"] != "passing" for c in checks):
            continue
        entries.append(service_entry_view(node, svc, checks))
    entries = _apply_filter(entries, args.get("filter", ""), "service_entry")
    return index, _near(store, args, entries, entry_node)


def snapshot_state(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """The whole store, frozen at this point (for /v1/snapshot): serialised as it is
    streamed out, or to bytes when the read was forwarded (see Server._rpc_handler)."""
    return store.last_index, FrozenState(store.freeze())


READS.update(
    {
        "Snapshot.State": snapshot_state,
        "Catalog.ListNodes": catalog_nodes,
        "Catalog.ListServices": catalog_services,
        "Catalog.ServiceNodes": catalog_service,
        "Catalog.NodeServices": catalog_node,
        "Catalog.GatewayServices": catalog_gateway_services,
        "Health.NodeChecks": health_node,
        "Health.ServiceChecks": health_checks,
        "Health.ChecksInState": health_state,
        "Health.ServiceNodes": health_service,
    }
)


# ------------------------------------------------------------------ connect
def _ce_index(store: StateStore) -> int:
    return store.table_index("config_entries")


def config_entry_get(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    kind, name = args["kind"], args["name"]
    if ws is not None:
        ws.add(("ce", kind, name))
    return _ce_index(store), store.connect.entry(kind, name)


def config_entry_list(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    kind = args.get("kind")
    if ws is not None:
        ws.add(("ce", kind) if kind else ("t", "config_entries"))
    return _ce_index(store), store.connect.list_entries(kind)


def _intentions(store: StateStore) -> list[dict[str, Any]]:
    from consulpy.connect import intentions as ix

    return ix.from_entries(store.connect.list_entries("service-intentions"))


def intention_list(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    if ws is not None:
        ws.add(("ce", "service-intentions"))
    items = _intentions(store)
    expr = args.get("filter", "")
    if expr:
        from consulpy.connect import intentions as ix
        from consulpy.filter import FilterError

        try:
            items = ix.filter_intentions(items, expr)
        except FilterError as exc:
            raise ReadError(f"Failed to create boolean expression evaluator: {exc}") from exc
    return _ce_index(store), items


def intention_match(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    from consulpy.connect import intentions as ix

    if ws is not None:
        ws.add(("ce", "service-intentions"))
    return _ce_index(store), ix.match(_intentions(store), args["by"], args["names"])


def intention_exact(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    from consulpy.connect import intentions as ix

    if ws is not None:
        ws.add(("ce", "service-intentions"))
    src = ix.parse_target(args["source"])
    dst = ix.parse_target(args["destination"])
    for intention in _intentions(store):
        if (intention["SourceNS"], intention["SourceName"]) == src and (
            intention["DestinationNS"],
            intention["DestinationName"],
        ) == dst:
            return _ce_index(store), intention
    return _ce_index(store), None


def intention_by_id(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    if ws is not None:
        ws.add(("ce", "service-intentions"))
    from consulpy.connect import intentions as ix

    entries = store.connect.list_entries("service-intentions")
    return _ce_index(store), ix.find_legacy(entries, args["id"])


def intention_decide(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    from consulpy.connect import intentions as ix

    if ws is not None:
        ws.add(("ce", "service-intentions"))
    allowed, reason = ix.decide(
        _intentions(store),
        args["source"],
        args["destination"],
        default_allow=args.get("default_allow", True),
    )
    return _ce_index(store), {"Allowed": allowed, "Reason": reason}


def ca_roots(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    from consulpy.connect import ca, spiffe

    if ws is not None:
        ws.add(("t", "connect_ca"))
    connect = store.connect
    config = connect.ca_config or {}
    active = connect.active_root()
    cluster_id = config.get("ClusterID", "")
    return store.table_index("connect_ca"), {
        "ActiveRootID": active["ID"] if active else "",
        "TrustDomain": spiffe.trust_domain(cluster_id) if cluster_id else "",
        "Roots": [ca.public_root(r) for r in connect.ca_roots],
    }


_SECRET_CA_KEYS = ("PrivateKey", "RootCert")


def ca_config(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    if ws is not None:
        ws.add(("t", "connect_ca"))
    config = store.connect.ca_config
    if config is None:
        return store.table_index("connect_ca"), None
    return store.table_index("connect_ca"), {
        "Provider": config["Provider"],
        "Config": {k: v for k, v in config["Config"].items() if k not in _SECRET_CA_KEYS},
        "State": None,
        "ForceWithoutCrossSigning": bool(config.get("ForceWithoutCrossSigning")),
        "CreateIndex": config["CreateIndex"],
        "ModifyIndex": config["ModifyIndex"],
    }


def discovery_chain_get(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """The compiled discovery chain of `name` (`{"Chain": ...}`), for `compile_dc`."""
    from consulpy.connect import config_entries as ce
    from consulpy.connect import spiffe

    if ws is not None:
        ws.add(("t", "config_entries"))
        ws.add(("t", "connect_ca"))
    cluster_id = (store.connect.ca_config or {}).get("ClusterID", "")
    if not cluster_id:
        raise ReadError("no cluster ca config setup")
    overrides = ce.Overrides(
        protocol=args.get("override_protocol", ""),
        connect_timeout_ns=args.get("override_connect_timeout_ns", 0),
        mesh_gateway_mode=args.get("override_mesh_gateway_mode", ""),
    )
    try:
        chain = ce.compile_chain(
            args["name"],
            store.connect.entry,
            datacenter=args["compile_dc"],
            trust_domain=spiffe.trust_domain(cluster_id),
            overrides=overrides,
        )
    except ce.GraphError as exc:
        raise ReadError(str(exc)) from exc
    index = max(_ce_index(store), store.table_index("connect_ca"))
    return index, {"Chain": chain.to_api()}


READS.update(
    {
        "ConfigEntry.Get": config_entry_get,
        "ConfigEntry.List": config_entry_list,
        "Intention.List": intention_list,
        "Intention.Match": intention_match,
        "Intention.Exact": intention_exact,
        "Intention.Get": intention_by_id,
        "Intention.Decide": intention_decide,
        "ConnectCA.Roots": ca_roots,
        "ConnectCA.Config": ca_config,
        "DiscoveryChain.Get": discovery_chain_get,
    }
)


# --------------------------------------------------------- prepared queries
# (imported here, with the block that uses them)
from consulpy.server.prepared_query import execute as execute_query  # noqa: E402
from consulpy.state.prepared_queries import QueryError, uuid_problem  # noqa: E402


def prepared_query_get(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """[query] by ID, or None (Query not found)."""
    query_id = args["id"]
    problem = uuid_problem(query_id)
    if problem:
        raise ReadError(problem)
    index, row = store.prepared_query_get(ws, query_id)
    return index, ([row] if row is not None else None)


def prepared_query_list(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    return store.prepared_query_list(ws)


def _pq_resolve(store: StateStore, name: str, ws: WatchSet | None) -> tuple[int, Any]:
    try:
        return store.prepared_query_resolve(ws, name)
    except QueryError as exc:
        raise ReadError(str(exc)) from exc


def prepared_query_explain(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """{"Query": the rendered query}, or None."""
    index, query = _pq_resolve(store, args["query"], ws)
    return index, ({"Query": query} if query is not None else None)


def _pq_near_node(store: StateStore, near: str, args: dict[str, Any]) -> str:
    """A node name for `near`: `_agent` is the asking agent, `_ip` the node whose address
    is the caller's source IP ("" = none, no sort)."""
    if near == "_agent":
        return str(args.get("agent") or "")
    if near == "_ip":
        source = args.get("source_ip") or ""
        if source:
            for node in store.catalog.nodes.values():
                if node.get("Address") == source:
                    return str(node["Node"])
        return ""
    return near


def prepared_query_execute(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """The execute response of spec 7.6 in the local datacenter, or None (not found)."""
    index, query = _pq_resolve(store, args["query"], ws)
    if query is None:
        return index, None
    service = query["Service"]
    connect = bool(args.get("connect")) or bool((service.get("Connect") or {}).get("Enabled"))
    svc_index, rows = health_service(
        store, {"service": service.get("Service") or "", "connect": connect}, ws
    )
    near = _pq_near_node(store, args.get("near") or service.get("Near") or "", args)
    result = execute_query(
        query,
        list(rows or ()),
        near=near,
        sort=lambda nodes: sort_by_distance(store, near, nodes, entry_node),
        limit=int(args.get("limit") or 0),
        datacenter=str(args.get("dc") or "dc1"),
    )
    # An empty answer fails over to other datacenters after this read (the endpoint's
    # `after` step, server/failover.py): that needs RPCs, which a store read cannot make.
    return max(index, svc_index), result.to_api()


def prepared_query_execute_remote(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """Another datacenter's query (the whole definition comes with the request) run here,
    as Consul's ExecuteRemote: shuffled, no RTT sort, no further failover, the limit."""
    query = args["query"]
    service = query.get("Service") or {}
    connect = bool(args.get("connect")) or bool((service.get("Connect") or {}).get("Enabled"))
    index, rows = health_service(
        store, {"service": service.get("Service") or "", "connect": connect}, ws
    )
    local = {**query, "Service": {**service, "Near": ""}}
    result = execute_query(
        local,
        list(rows or ()),
        limit=int(args.get("limit") or 0),
        datacenter=str(args.get("dc") or ""),
    )
    return index, result.to_api()


READS.update(
    {
        "PreparedQuery.Get": prepared_query_get,
        "PreparedQuery.List": prepared_query_list,
        "PreparedQuery.Explain": prepared_query_explain,
        "PreparedQuery.Execute": prepared_query_execute,
        "PreparedQuery.ExecuteRemote": prepared_query_execute_remote,
    }
)


# -------------------------------------------------------------- coordinates
def coordinate_list(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """Every node's LAN coordinate; `segment` (when given) keeps that segment only."""
    index, rows = store.coordinate_list(ws)
    segment = args.get("segment")
    if segment is not None:
        rows = [r for r in rows if (r.get("Segment") or "") == segment]
    return index, [dict(r) for r in rows]


def coordinate_node(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """One node's coordinates (one per segment); [] when it has none."""
    index, rows = store.coordinate_node(ws, args["node"])
    return index, [dict(r) for r in rows]


READS.update(
    {
        "Coordinate.ListNodes": coordinate_list,
        "Coordinate.Node": coordinate_node,
    }
)
READS.update(ACL_READS)

from consulpy.server.ui_reads import UI_READS  # noqa: E402  (it imports this module's helpers)

READS.update(UI_READS)

# ---------------------------------------------------------------- operator
from consulpy.server.autopilot import stored_configuration  # noqa: E402
from consulpy.server.operator import usage as operator_usage  # noqa: E402

READS.update(
    {
        "Operator.AutopilotGetConfiguration": stored_configuration,
        "Operator.Usage": operator_usage,
    }
)
