"""Shape checks and normalization of the catalog and KV rows a request carries
(Catalog.Register, Txn.Apply).

The agent that received an HTTP call decodes and normalizes these rows; a server cannot rely
on that (a client agent, or anything on the RPC port, can send a hand-made payload), so it
checks every field's type here and fills the defaults the FSM relies on (a service's ID, a
check's status...) before a command is built: a row that would make the FSM fail (a
`Connect: 1`, a `Key: null`, a service without an ID) is refused or completed, never logged
as is. Normalizing an already normalized row changes nothing.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from consulpy.server.endpoints.request import type_checker
from consulpy.server.errors import CommandError, RequestError
from consulpy.state.structs import check_row, service_row

U64 = 1 << 64
_Schema = dict[str, Any]

NODE: _Schema = {
    "ID": str,
    "Node": str,
    "Address": str,
    "Datacenter": str,
    "TaggedAddresses": dict[str, str] | None,
    "Meta": dict[str, str] | None,
    "NodeMeta": dict[str, str] | None,
    "SkipNodeUpdate": bool,
    "Locality": dict[str, Any] | None,
    "ModifyIndex": int,
    "CreateIndex": int,
}
SERVICE: _Schema = {
    "Kind": str,
    "ID": str,
    "Service": str,
    "Tags": list[str],
    "Address": str,
    "TaggedAddresses": dict[str, dict[str, Any]] | None,
    "Meta": dict[str, str] | None,
    "Port": int,
    "SocketPath": str,
    "Weights": dict[str, int],
    "EnableTagOverride": bool,
    "Proxy": dict[str, Any] | None,
    "Connect": dict[str, Any] | None,
    "Locality": dict[str, Any] | None,
    "PeerName": str,
    "ModifyIndex": int,
    "CreateIndex": int,
}
CHECK: _Schema = {
    "Node": str,
    "CheckID": str,
    "Name": str,
    "Status": str,
    "Notes": str,
    "Output": str,
    "ServiceID": str,
    "ServiceName": str,
    "ServiceTags": list[str],
    "Type": str,
    "Interval": str,
    "Timeout": str,
    "ExposedPort": int,
    "Definition": dict[str, Any],
    "ModifyIndex": int,
    "CreateIndex": int,
}
KV: _Schema = {
    "Verb": str,
    "Key": str,
    "Value": bytes | None,
    "Flags": int,
    "Index": int,
    "Session": str,
}
STATUSES = ("passing", "warning", "critical")
# A delete/get op names the service by ID only.
SERVICE_REF: _Schema = {"ID": str, "ModifyIndex": int}
_CHECKERS: dict[int, dict[str, Any]] = {}  # by id() of the module-level schemas above


def check_fields(row: Any, schema: _Schema, what: str) -> dict[str, Any]:
    """`row` as a map whose known fields have their declared types (unknown fields refused)."""
    if not isinstance(row, dict):
        raise RequestError(f"malformed {what}: expected an object")
    checkers = _CHECKERS.get(id(schema))
    if checkers is None:
        checkers = _CHECKERS[id(schema)] = {k: type_checker(h) for k, h in schema.items()}
    for name, value in row.items():
        check = checkers.get(name)
        if check is None:
            raise RequestError(f"malformed {what}: unknown field {name!r}")
        if not check(value):
            raise RequestError(f"malformed {what}: field {name} has type {type(value).__name__}")
    for name in ("ModifyIndex", "CreateIndex", "Flags", "Index", "Port", "ExposedPort"):
        value = row.get(name, 0)
        if isinstance(value, int) and not 0 <= value < U64:
            raise RequestError(f"malformed {what}: {name} out of range")
    return row


def _is_any(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def check_service(svc: Any, what: str = "Service") -> dict[str, Any]:
    """A service row with Consul's servicePreApply rules (its 500 texts), normalized: the
    ID defaults to the name, weights out of range fall back to 1/1 (as the catalog does)."""
    svc = check_fields(svc, SERVICE, what)
    if svc.get("ID") and not svc.get("Service"):
        raise CommandError(
            "Must provide service name (Service.Service) when service ID is provided"
        )
    if svc.get("Address") and _is_any(svc["Address"]):
        raise CommandError("Invalid service address")
    weights = svc.get("Weights") or {}
    passing, warning = weights.get("Passing", 1), weights.get("Warning", 1)
    if not weights or passing < 1 or warning < 0:
        passing, warning = 1, 1
    return service_row(**dict(svc, Weights={"Passing": passing, "Warning": warning}))


def check_check(check: Any, node: str, what: str = "Check") -> dict[str, Any]:
    """A check row with Catalog.Register's rules, normalized (its node, CheckID defaulting
    to the name, status defaulting to critical)."""
    check = check_fields(check, CHECK, what)
    cid = check.get("CheckID") or check.get("Name") or ""
    if (check.get("Node") or node) != node:
        raise CommandError(
            f"Node '{check.get('Node')}' for check '{cid}' doesn't match register request "
            f"node '{node}'"
        )
    status = check.get("Status") or "critical"
    if status not in STATUSES:
        raise CommandError(f"Invalid check status: '{status}'")
    return check_row(**dict(check, Node=node, CheckID=cid, Status=status))


def check_node(row: Any, datacenter: str, what: str = "Node") -> dict[str, Any]:
    """A txn Node row, normalized (lower-case ID, the datacenter)."""
    row = check_fields(row, NODE, what)
    return {
        "ID": (row.get("ID") or "").lower(),
        "Node": row.get("Node") or "",
        "Address": row.get("Address") or "",
        "Datacenter": row.get("Datacenter") or datacenter,
        "TaggedAddresses": row.get("TaggedAddresses") or None,
        "Meta": row.get("Meta") or None,
        "Locality": row.get("Locality") or None,
        "ModifyIndex": row.get("ModifyIndex") or 0,
    }


def check_register(request: Any, datacenter: str) -> dict[str, Any]:
    """A RegisterRequest in the form agents send, with Consul's Catalog.Register rules;
    returns it normalized (datacenter, lower-case node ID, complete service and check
    rows)."""
    if not isinstance(request, dict):
        raise RequestError("malformed RegisterRequest: expected an object")
    top = {k: v for k, v in request.items() if k not in ("Service", "Checks")}
    check_fields(top, NODE, "RegisterRequest")
    node = request.get("Node") or ""
    if not node:
        raise CommandError("Must provide node")
    if not request.get("Address") and not request.get("SkipNodeUpdate"):
        raise CommandError("Must provide address if SkipNodeUpdate is not set")
    if request.get("ID"):
        try:
            uuid.UUID(request["ID"])
        except ValueError as exc:
            raise CommandError(
                f"Bad node ID: uuid string is wrong length: {request['ID']}"
            ) from exc
    dc = request.get("Datacenter") or datacenter
    if dc != datacenter:
        raise CommandError("No path to datacenter")
    out = dict(request, Datacenter=dc, ID=(request.get("ID") or "").lower())
    if request.get("Service"):
        out["Service"] = check_service(request["Service"], "RegisterRequest.Service")
    else:
        out.pop("Service", None)
    checks = request.get("Checks")
    if checks is not None and not isinstance(checks, list):
        raise RequestError("malformed RegisterRequest: Checks must be a list")
    out["Checks"] = [check_check(c, node, "RegisterRequest.Checks") for c in checks or ()]
    return out
