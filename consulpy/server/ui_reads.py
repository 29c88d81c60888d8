"""The reads behind `/v1/internal/ui/*`: catalog dumps and summaries shaped for the web UI.

They filter by ACL themselves, while reading: a summary counts only the instances and checks
the caller may see (Consul filters the dump before summarising), which a filter applied to the
finished summary could not do. `authz.allowed` answers for the request's identity (always
true with ACLs off).
"""

from __future__ import annotations

from typing import Any

from consulpy.state.store import StateStore
from consulpy.state.views import check_view, node_service_view
from consulpy.state.watch import WatchSet

Row = dict[str, Any]

SIDECAR = "connect-proxy"


class _Can:
    """What the request's identity may read, asked once per name for one read."""

    def __init__(self) -> None:
        # Imported here: the endpoints package imports this module (through reads).
        from consulpy.server.endpoints import authz

        identity = authz.current_identity()
        self._auth = identity.authorizer if identity is not None else None
        self._nodes: dict[str, bool] = {}
        self._services: dict[str, bool] = {}

    def node(self, name: str) -> bool:
        if self._auth is None:
            return True
        ok = self._nodes.get(name)
        if ok is None:
            ok = self._nodes[name] = self._auth.node_read(name)
        return ok

    def service(self, name: str) -> bool:
        if self._auth is None:
            return True
        ok = self._services.get(name)
        if ok is None:
            ok = self._services[name] = self._auth.service_read(name)
        return ok

    def check(self, check: Row) -> bool:
        name = check.get("ServiceName") or ""
        return self.node(check["Node"]) and (not name or self.service(name))


def _watch_catalog(ws: WatchSet | None) -> None:
    if ws is not None:
        ws.add(("t", "nodes"))
        ws.add(("t", "services"))
        ws.add(("t", "checks"))


def _catalog_index(store: StateStore) -> int:
    return store.table_index("nodes", "services", "checks")


def _node_info(store: StateStore, node: Row, can: _Can) -> Row:
    catalog = store.catalog
    name = node["Node"]
    return {
        "ID": node.get("ID", ""),
        "Node": name,
        "Address": node.get("Address", ""),
        "Datacenter": node.get("Datacenter", ""),
        "TaggedAddresses": node.get("TaggedAddresses") or {},
        "Meta": node.get("Meta") or {},
        "Services": [
            node_service_view(s) for s in catalog.node_services(name) if can.service(s["Service"])
        ],
        "Checks": [check_view(c) for c in catalog.node_checks(name) if can.check(c)],
    }


def ui_nodes(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """Every node the caller may read, with its services and checks."""
    _watch_catalog(ws)
    nodes = store.catalog.nodes
    can = _Can()
    out = [_node_info(store, nodes[n], can) for n in sorted(nodes) if can.node(n)]
    return _catalog_index(store), _filter(out, args.get("filter", ""), "node_info")


def ui_node(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """One node as `ui_nodes` shows it; None (404) when unknown or not readable."""
    _watch_catalog(ws)
    node = store.catalog.node(args["node"])
    can = _Can()
    if node is None or not can.node(node["Node"]):
        return _catalog_index(store), None
    return _catalog_index(store), _node_info(store, node, can)


def _visible_instances(store: StateStore, can: _Can) -> list[tuple[Row, Row]]:
    """(node, service) for every instance whose node and service the caller may read."""
    catalog = store.catalog
    out = []
    for (node_name, _sid), svc in sorted(catalog.services.items()):
        node = catalog.nodes.get(node_name)
        if node is None or not can.node(node_name) or not can.service(svc["Service"]):
            continue
        out.append((node, svc))
    return out


def _summaries(store: StateStore, rows: list[tuple[Row, Row]], can: _Can) -> list[Row]:
    """Consul's ServiceSummary per (kind, name): health counts over unique (node, check ID)
    including node checks; a sidecar's checks also count for its destination."""
    catalog = store.catalog
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    proxied: set[str] = set()
    checks_of: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
    checks_on: dict[str, list[Row]] = {}  # node -> the checks on it the caller may see
    for node, svc in rows:
        key = (svc.get("Kind") or "", svc["Service"])
        group = groups.setdefault(
            key,
            {
                "tags": set(),
                "nodes": set(),
                "sources": set(),
                "count": 0,
                "dc": node.get("Datacenter", ""),
                "tproxy": True,
                "native": False,
            },
        )
        group["count"] += 1
        group["tags"].update(svc.get("Tags") or ())
        group["nodes"].add(node["Node"])
        source = (svc.get("Meta") or {}).get("external-source")
        if source:
            group["sources"].add(source)
        proxy = svc.get("Proxy") or {}
        if proxy.get("Mode") != "transparent":
            group["tproxy"] = False
        if (svc.get("Connect") or {}).get("Native"):
            group["native"] = True
        own = checks_on.get(node["Node"])
        if own is None:
            own = checks_on[node["Node"]] = [
                c for c in catalog.node_checks(node["Node"]) if can.check(c)
            ]
        node_checks = [c for c in own if not c.get("ServiceID") or c["ServiceID"] == svc["ID"]]
        targets = [key]
        if key[0] == SIDECAR and proxy.get("DestinationServiceName"):
            dest = proxy["DestinationServiceName"]
            proxied.add(dest)
            targets.append(("", dest))
        for target in targets:
            bucket = checks_of.setdefault(target, {})
            for c in node_checks:
                bucket[(c["Node"], c["CheckID"])] = c["Status"]
    out = []
    for (kind, name), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        statuses = list(checks_of.get((kind, name), {}).values())
        row: Row = {}
        if kind:
            row["Kind"] = kind
        row.update(
            {
                "Name": name,
                "Datacenter": group["dc"],
                "Tags": sorted(group["tags"]) or None,
                "Nodes": sorted(group["nodes"]),
                "ExternalSources": sorted(group["sources"]) or None,
                "InstanceCount": group["count"],
                "ChecksPassing": statuses.count("passing"),
                "ChecksWarning": statuses.count("warning"),
                "ChecksCritical": statuses.count("critical"),
                "GatewayConfig": {},
                "TransparentProxy": group["tproxy"],
                "ConnectNative": group["native"],
                "ConnectedWithProxy": name in proxied and not kind,
                "ConnectedWithGateway": False,
            }
        )
        out.append(row)
    return out


def ui_services(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """Service summaries, name-sorted, sidecars as rows of their own."""
    _watch_catalog(ws)
    can = _Can()
    rows = _visible_instances(store, can)
    expr = args.get("filter", "")
    if expr:
        from consulpy.state.views import catalog_service_view

        keep = {
            (v["Node"], v["ServiceID"])
            for v in _filter([catalog_service_view(n, s) for n, s in rows], expr, "catalog_service")
        }
        rows = [(n, s) for n, s in rows if (n["Node"], s["ID"]) in keep]
    return _catalog_index(store), _summaries(store, rows, can)


def _filter(items: list[Any], expr: str, schema: str) -> list[Any]:
    if not expr:
        return items
    from consulpy.server.reads import _apply_filter

    return _apply_filter(items, expr, "node" if schema == "node_info" else schema)


# ------------------------------------------------------------------- topology
def _intentions(store: StateStore) -> list[Row]:
    from consulpy.connect import intentions as ix

    return ix.from_entries(store.connect.list_entries("service-intentions"))


def _decision(ixns: list[Row], source: str, destination: str, default_allow: bool) -> Row:
    """The UI's intention badge for source -> destination."""
    from consulpy.connect import intentions as ix

    candidates = sorted(
        (i for i in ixns if i["DestinationName"] in (destination, "*")), key=ix.sort_key
    )
    for ixn in candidates:
        if ixn["SourceName"] in (source, "*"):
            return {
                "DefaultAllow": False,
                "Allowed": ixn.get("Action") == "allow" and not ixn.get("Permissions"),
                "HasPermissions": bool(ixn.get("Permissions")),
                "ExternalSource": (ixn.get("Meta") or {}).get("external-source", ""),
                "HasExact": ixn["SourceName"] == source and ixn["DestinationName"] == destination,
            }
    return {
        "DefaultAllow": default_allow,
        "Allowed": default_allow,
        "HasPermissions": False,
        "ExternalSource": "",
        "HasExact": False,
    }


def ui_topology(store: StateStore, args: dict[str, Any], ws: WatchSet | None) -> tuple[int, Any]:
    """Upstreams (what the service's proxies name, or intentions let it call) and downstreams
    (whose proxies name it, or whom intentions let call it), each with the intention verdict."""
    _watch_catalog(ws)
    if ws is not None:
        ws.add(("ce", "service-intentions"))
    name = args["service"]
    default_allow = bool(args.get("default_allow", True))
    can = _Can()
    rows = _visible_instances(store, can)
    ixns = _intentions(store)
    filtered = len(rows) != len(store.catalog.services)
    by_name = {s["Service"] for _n, s in rows if (s.get("Kind") or "") != SIDECAR}
    upstream_src: dict[str, str] = {}
    downstream_src: dict[str, str] = {}
    protocol = "tcp"
    tproxy = False
    for _node, svc in rows:
        proxy = svc.get("Proxy") or {}
        if (svc.get("Kind") or "") != SIDECAR:
            continue
        dest = proxy.get("DestinationServiceName", "")
        upstreams = [u.get("DestinationName", "") for u in proxy.get("Upstreams") or ()]
        if dest == name:
            tproxy = tproxy or proxy.get("Mode") == "transparent"
            protocol = (proxy.get("Config") or {}).get("protocol", protocol)
            for up in upstreams:
                if up:
                    upstream_src.setdefault(up, "proxy-registration")
        elif name in upstreams and dest:
            downstream_src.setdefault(dest, "proxy-registration")
    for ixn in ixns:
        src, dst = ixn["SourceName"], ixn["DestinationName"]
        if src == name and dst != "*" and dst != name and dst in by_name:
            upstream_src.setdefault(dst, "specific-intention")
        if dst == name and src != name:
            if src == "*":
                for other in by_name - {name}:
                    downstream_src.setdefault(other, "wildcard-intention")
            elif src in by_name:
                downstream_src.setdefault(src, "specific-intention")
    summaries = {(s.get("Kind", ""), s["Name"]): s for s in _summaries(store, rows, can)}

    def side(found: dict[str, str], outgoing: bool) -> list[Row]:
        out = []
        for other in sorted(found):
            summary = summaries.get(("", other))
            if summary is None:
                continue
            src, dst = (name, other) if outgoing else (other, name)
            out.append(
                {
                    **summary,
                    "Source": found[other],
                    "Intention": _decision(ixns, src, dst, default_allow),
                }
            )
        return out

    return max(_catalog_index(store), store.table_index("config_entries")), {
        "Protocol": protocol,
        "TransparentProxy": tproxy,
        "Upstreams": side(upstream_src, True),
        "Downstreams": side(downstream_src, False),
        "FilteredByACLs": filtered,
    }


def ui_gateway_services(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """Summaries of the services a gateway's config entry links, with the gateway's
    addresses. Gateways are config entries (terminating/ingress); none -> []."""
    _watch_catalog(ws)
    if ws is not None:
        ws.add(("t", "config_entries"))
    gateway = args["gateway"]
    linked: set[str] = set()
    for kind in ("terminating-gateway", "ingress-gateway"):
        entry = store.connect.entry(kind, gateway)
        for item in (entry or {}).get("Services") or ():
            if item.get("Name"):
                linked.add(item["Name"])
        for listener in (entry or {}).get("Listeners") or ():
            for item in listener.get("Services") or ():
                if item.get("Name"):
                    linked.add(item["Name"])
    can = _Can()
    rows = [(n, s) for n, s in _visible_instances(store, can) if s["Service"] in linked]
    out = [s for s in _summaries(store, rows, can) if not s.get("Kind")]
    return max(_catalog_index(store), store.table_index("config_entries")), out


def ui_catalog_overview(
    store: StateStore, args: dict[str, Any], ws: WatchSet | None
) -> tuple[int, Any]:
    """Health totals of nodes, services and checks (the overview screen)."""
    _watch_catalog(ws)
    catalog = store.catalog
    can = _Can()
    checks = [c for c in catalog.checks.values() if can.check(c)]

    def counts(items: list[tuple[str, str]]) -> list[Row]:
        tally: dict[str, dict[str, int]] = {}
        for name, status in items:
            row = tally.setdefault(name, {"passing": 0, "warning": 0, "critical": 0, "total": 0})
            row[status] = row.get(status, 0) + 1
            row["total"] += 1
        return [
            {
                "Name": n,
                "Total": t["total"],
                "Passing": t["passing"],
                "Warning": t["warning"],
                "Critical": t["critical"],
            }
            for n, t in sorted(tally.items())
        ]

    return _catalog_index(store), {
        "Nodes": counts([("", c["Status"]) for c in checks if not c.get("ServiceID")]),
        "Services": counts([(c["ServiceName"], c["Status"]) for c in checks if c.get("ServiceID")]),
        "Checks": counts([(c["CheckID"], c["Status"]) for c in checks]),
    }


UI_READS = {
    "Internal.NodeDump": ui_nodes,
    "Internal.NodeInfo": ui_node,
    "Internal.ServiceDump": ui_services,
    "Internal.ServiceTopology": ui_topology,
    "Internal.GatewayServiceNodes": ui_gateway_services,
    "Internal.CatalogOverview": ui_catalog_overview,
}
