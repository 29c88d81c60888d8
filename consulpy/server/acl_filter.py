"""ACL filtering of the list reads Consul filters (Need.filtered): items the token may not read
are dropped instead of refusing the read, and the answer says something was removed
(`X-Consul-Results-Filtered-By-ACLs`). The filter wraps the read function, so a blocking query
filters again after every wake-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consulpy.acl.authorizer import Authorizer
from consulpy.acl.resolver import Resolved
from consulpy.server.endpoints.authz import Access, Resource, denied

Read = Callable[[Any, dict[str, Any], Any], tuple[int, Any]]
Keep = Callable[[Authorizer, Any], bool]


def _node_service(auth: Authorizer, node: str, service: str) -> bool:
    if node and not auth.node_read(node):
        return False
    return not service or auth.service_read(service)


def _kv(auth: Authorizer, item: Any) -> bool:
    return auth.key_read(item["Key"] if isinstance(item, dict) else item)


def _node(auth: Authorizer, item: Any) -> bool:
    return auth.node_read(item["Node"])


def _catalog_row(auth: Authorizer, item: Any) -> bool:
    return _node_service(auth, item.get("Node", ""), item.get("ServiceName", ""))


def _service_entry(auth: Authorizer, item: Any) -> bool:
    return _node_service(auth, item["Node"]["Node"], item["Service"]["Service"])


def _session(auth: Authorizer, item: Any) -> bool:
    return auth.session_read(item["Node"])


def _intention(auth: Authorizer, item: Any) -> bool:
    return auth.intention_read(item.get("DestinationName", ""))


def _config_entry(auth: Authorizer, item: Any) -> bool:
    """Spec 3.2: each kind's read rule (proxy-defaults and mesh are readable by anyone)."""
    kind, name = item.get("Kind", ""), item.get("Name", "")
    if kind == "service-intentions":
        return auth.intention_read(name)
    if kind in ("proxy-defaults", "mesh"):
        return True
    return auth.service_read(name)


def _prepared_query(auth: Authorizer, item: Any) -> bool:
    """Consul: a named query by query:read on its name; an unnamed one only to management."""
    name = item.get("Name") or ""
    return auth.query_read(name) if name else auth.acl_write()


# Endpoint -> what each item of its list needs.
LIST_RULES: dict[str, Keep] = {
    "KVS.List": _kv,
    "KVS.ListKeys": _kv,
    "Catalog.ListNodes": _node,
    "Catalog.ServiceNodes": _catalog_row,
    "Health.NodeChecks": _catalog_row,
    "Health.ServiceChecks": _catalog_row,
    "Health.ChecksInState": _catalog_row,
    "Health.ServiceNodes": _service_entry,
    "Catalog.GatewayServices": lambda auth, item: auth.service_read(item["Service"]["Name"]),
    "Session.List": _session,
    "Session.NodeSessions": _session,
    "Intention.List": _intention,
    "ConfigEntry.List": _config_entry,
    "PreparedQuery.List": _prepared_query,
    "Coordinate.ListNodes": _node,
}


# The filtered lists, whose answers say whether something was removed.
HEADER_READS = frozenset(
    {*LIST_RULES, "Catalog.ListServices", "Catalog.NodeServices", "PreparedQuery.Execute"}
)
# Every read whose result this module may change.
FILTERED_READS = HEADER_READS | {
    "ACL.TokenRead",
    "ACL.TokenList",
    "Intention.Get",
    "PreparedQuery.ExecuteRemote",
}


def _hide_secrets(result: Any, own: str) -> Any:
    """Consul shows SecretID as "<hidden>" without acl:write (a token's own secret stays)."""

    def hide(row: Any) -> Any:
        if isinstance(row, dict) and row.get("SecretID") not in (None, own):
            return {**row, "SecretID": "<hidden>"}
        return row

    if isinstance(result, list):
        return [hide(r) for r in result]
    return hide(result)


def _filter(name: str, auth: Authorizer, result: Any, self_secret: str = "") -> tuple[Any, bool]:
    """The result without what `auth` may not read, and whether anything was removed."""
    if result is None:
        return result, False
    keep = LIST_RULES.get(name)
    if keep is not None and isinstance(result, list):
        kept = [item for item in result if keep(auth, item)]
        if name.startswith("KVS.") and not kept:
            return None, bool(result)  # an empty KV list is a 404, as if nothing were there
        return kept, len(kept) != len(result)
    if name == "Catalog.ListServices" and isinstance(result, dict):
        kept_map = {k: v for k, v in result.items() if auth.service_read(k)}
        return kept_map, len(kept_map) != len(result)
    if name == "Catalog.NodeServices" and isinstance(result, dict):
        services = result.get("Services")
        if isinstance(services, list):
            kept = [s for s in services if auth.service_read(s["Service"])]
            return {**result, "Services": kept}, len(kept) != len(services)
        if isinstance(services, dict):
            kept_map = {k: s for k, s in services.items() if auth.service_read(s["Service"])}
            return {**result, "Services": kept_map}, len(kept_map) != len(services)
    if name in ("PreparedQuery.Execute", "PreparedQuery.ExecuteRemote") and isinstance(
        result, dict
    ):
        nodes = result.get("Nodes") or []
        kept = [n for n in nodes if _service_entry(auth, n)]
        return {**result, "Nodes": kept}, len(kept) != len(nodes)
    if name in ("ACL.TokenRead", "ACL.TokenList") and not auth.acl_write():
        return _hide_secrets(result, self_secret), False
    if name == "Intention.Get" and isinstance(result, dict):
        destination = result.get("DestinationName", "")
        if not auth.intention_read(destination):
            raise denied(Resource.INTENTION, destination, Access.READ)
    return result, False


class FilteredRead:
    """A read function that filters its result for one identity; `removed` tells whether the
    last run dropped something (for the response header)."""

    def __init__(self, name: str, read: Read, identity: Resolved) -> None:
        self.name = name
        self.read = read
        self.identity = identity
        self.removed = False

    def __call__(self, store: Any, args: dict[str, Any], ws: Any) -> tuple[int, Any]:
        index, result = self.read(store, args, ws)
        token = self.identity.token
        own = token.secret_id if token is not None else ""
        result, self.removed = _filter(self.name, self.identity.authorizer, result, own)
        return index, result


def filter_result(name: str, read: Read, identity: Resolved) -> FilteredRead:
    return FilteredRead(name, read, identity)
