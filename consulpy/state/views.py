"""Catalog rows rendered in the shapes Consul's endpoints return.

Rows are stored once; each endpoint shows them differently (a service instance is a
`NodeService` under /v1/catalog/node, a `CatalogService` row with its node's fields copied in
under /v1/catalog/service, part of a `ServiceEntry` under /v1/health/service). These functions
are those views, including Consul's quirks of which empty values are null, [] or omitted.
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]


def node_view(node: Row) -> Row:
    """Node; Locality (Consul 1.17+) omitted when empty."""
    out = {
        "ID": node.get("ID", ""),
        "Node": node["Node"],
        "Address": node.get("Address", ""),
        "Datacenter": node.get("Datacenter", ""),
        "TaggedAddresses": node.get("TaggedAddresses"),
        "Meta": node.get("Meta"),
    }
    if node.get("Locality"):
        out["Locality"] = node["Locality"]
    out["CreateIndex"] = node["CreateIndex"]
    out["ModifyIndex"] = node["ModifyIndex"]
    return out


def node_service_view(svc: Row) -> Row:
    """NodeService: Kind, Port, SocketPath, TaggedAddresses, Locality omitted when empty."""
    out: Row = {}
    if svc.get("Kind"):
        out["Kind"] = svc["Kind"]
    out["ID"] = svc["ID"]
    out["Service"] = svc["Service"]
    out["Tags"] = list(svc.get("Tags") or [])
    out["Address"] = svc.get("Address", "")
    if svc.get("TaggedAddresses"):
        out["TaggedAddresses"] = svc["TaggedAddresses"]
    out["Meta"] = svc.get("Meta")
    if svc.get("Port"):
        out["Port"] = svc["Port"]
    if svc.get("SocketPath"):
        out["SocketPath"] = svc["SocketPath"]
    out["Weights"] = svc.get("Weights") or {"Passing": 1, "Warning": 1}
    out["EnableTagOverride"] = bool(svc.get("EnableTagOverride"))
    if svc.get("Locality"):
        out["Locality"] = svc["Locality"]
    out["Proxy"] = svc.get("Proxy") or {"Mode": "", "MeshGateway": {}, "Expose": {}}
    out["Connect"] = svc.get("Connect") or {}
    out["PeerName"] = ""
    out["CreateIndex"] = svc["CreateIndex"]
    out["ModifyIndex"] = svc["ModifyIndex"]
    return out


def catalog_service_view(node: Row, svc: Row) -> Row:
    """CatalogService: the instance with its node's fields; ServiceTags and ServiceMeta are
    never null, ServiceTaggedAddresses omitted when empty."""
    out: Row = {
        "ID": node.get("ID", ""),
        "Node": node["Node"],
        "Address": node.get("Address", ""),
        "Datacenter": node.get("Datacenter", ""),
        "TaggedAddresses": node.get("TaggedAddresses"),
        "NodeMeta": node.get("Meta"),
        "ServiceKind": svc.get("Kind", ""),
        "ServiceID": svc["ID"],
        "ServiceName": svc["Service"],
        "ServiceTags": list(svc.get("Tags") or []),
        "ServiceAddress": svc.get("Address", ""),
    }
    if svc.get("TaggedAddresses"):
        out["ServiceTaggedAddresses"] = svc["TaggedAddresses"]
    out.update(
        {
            "ServiceWeights": svc.get("Weights") or {"Passing": 1, "Warning": 1},
            "ServiceMeta": svc.get("Meta") or {},
            "ServicePort": svc.get("Port", 0),
            "ServiceSocketPath": svc.get("SocketPath", ""),
            "ServiceEnableTagOverride": bool(svc.get("EnableTagOverride")),
            "ServiceProxy": svc.get("Proxy") or {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "ServiceConnect": svc.get("Connect") or {},
            "ServiceLocality": svc.get("Locality"),
            "CreateIndex": svc["CreateIndex"],
            "ModifyIndex": svc["ModifyIndex"],
        }
    )
    return out


def check_view(check: Row) -> Row:
    out = dict(check)
    out["ServiceTags"] = list(check.get("ServiceTags") or [])
    return out


def service_entry_view(node: Row, svc: Row, checks: list[Row]) -> Row:
    return {
        "Node": node_view(node),
        "Service": node_service_view(svc),
        "Checks": [check_view(c) for c in checks],
    }


def aggregated_status(checks: list[Row]) -> str:
    """Consul's api.HealthChecks.AggregatedStatus."""
    warning = critical = maintenance = False
    for check in checks:
        cid = check.get("CheckID", "")
        if cid == "_node_maintenance" or cid.startswith("_service_maintenance:"):
            maintenance = True
            continue
        status = check.get("Status")
        if status == "passing":
            continue
        if status == "warning":
            warning = True
        elif status == "critical":
            critical = True
        else:
            return ""
    if maintenance:
        return "maintenance"
    if critical:
        return "critical"
    if warning:
        return "warning"
    return "passing"
