"""`translate_wan_addrs`: another datacenter's nodes and services shown at their WAN addresses.

With the setting on, the catalog and health reads answered for another datacenter (`?dc=`),
and prepared-query results that came from one (a failover), carry each node's `wan` tagged
address as `Address`, and each service's `wan` tagged address and port (when it has one) as
its address and port, as Consul's TranslateAddresses does; those endpoints then send
`X-Consul-Translate-Addresses: true`. Everything else in the rows (the tagged addresses
themselves) is left as stored. Pure functions over copies: the read's result may be shared
with other waiting requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = dict[str, Any]
HEADER = "X-Consul-Translate-Addresses"


def node_address(address: str, tagged: dict[str, Any] | None) -> str:
    return str((tagged or {}).get("wan") or address)


def _service_wan(tagged: dict[str, Any] | None) -> dict[str, Any]:
    wan = (tagged or {}).get("wan")
    return wan if isinstance(wan, dict) else {}


def service_address(address: str, tagged: dict[str, Any] | None) -> str:
    return str(_service_wan(tagged).get("Address") or address)


def service_port(port: int, tagged: dict[str, Any] | None) -> int:
    return int(_service_wan(tagged).get("Port") or port)


def _node(node: Row) -> Row:
    return {**node, "Address": node_address(node.get("Address", ""), node.get("TaggedAddresses"))}


def _service(svc: Row) -> Row:
    tagged = svc.get("TaggedAddresses")
    return {
        **svc,
        "Address": service_address(svc.get("Address", ""), tagged),
        "Port": service_port(int(svc.get("Port") or 0), tagged),
    }


def health_rows(rows: Any) -> Any:
    """Health.ServiceNodes / prepared-query rows: {Node, Service, Checks}."""
    if not isinstance(rows, list):
        return rows
    return [{**r, "Node": _node(r["Node"]), "Service": _service(r["Service"])} for r in rows]


def _catalog_service_rows(rows: Any) -> Any:
    if not isinstance(rows, list):
        return rows
    out = []
    for r in rows:
        tagged = r.get("ServiceTaggedAddresses")
        out.append(
            {
                **r,
                "Address": node_address(r.get("Address", ""), r.get("TaggedAddresses")),
                "ServiceAddress": service_address(r.get("ServiceAddress", ""), tagged),
                "ServicePort": service_port(int(r.get("ServicePort") or 0), tagged),
            }
        )
    return out


def _nodes(rows: Any) -> Any:
    return [_node(r) for r in rows] if isinstance(rows, list) else rows


def _node_services(result: Any) -> Any:
    if not isinstance(result, dict) or not isinstance(result.get("Node"), dict):
        return result
    services = result.get("Services")
    if isinstance(services, dict):
        services = {k: _service(v) for k, v in services.items()}
    elif isinstance(services, list):
        services = [_service(v) for v in services]
    return {**result, "Node": _node(result["Node"]), "Services": services}


# The reads whose HTTP answers Consul translates, by endpoint name.
READS: dict[str, Callable[[Any], Any]] = {
    "Catalog.ListNodes": _nodes,
    "Catalog.ServiceNodes": _catalog_service_rows,
    "Catalog.NodeServices": _node_services,
    "Health.ServiceNodes": health_rows,
}
