"""Txn: Txn.Apply (a write transaction, all or nothing, at the leader's clock) and Txn.Read
(a read-only transaction, no log entry).

Every op is checked here, on the server, whatever agent sent it: its kind, its verb, each
field's type, the op count (limits.txn_max_ops) and KV value sizes (limits.kv_max_value_size).
An op the FSM could not evaluate never reaches the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import (
    Access,
    Need,
    Resource,
    authorize,
    authorize_key_write_prefix,
)
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.kvs import check_value_size
from consulpy.server.endpoints.limits import Limits
from consulpy.server.endpoints.request import Request
from consulpy.server.endpoints.rows import (
    CHECK,
    KV,
    SERVICE_REF,
    check_check,
    check_fields,
    check_node,
    check_service,
)
from consulpy.server.errors import RequestError
from consulpy.state import commands as C
from consulpy.state.store import StateStore
from consulpy.state.txnops import CATALOG_READ_VERBS, READ_VERBS

if TYPE_CHECKING:
    from consulpy.server.server import Server

OP_KINDS = frozenset({"KV", "Node", "Service", "Check"})


@dataclass(frozen=True, slots=True)
class TxnApply:
    ops: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TxnRead:
    ops: list[dict[str, Any]]  # read-only ops (get, check-*, catalog get)


def _op(index: int, op: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(op, dict) or len(op) != 1 or not set(op) <= OP_KINDS:
        raise RequestError(f"malformed transaction operation {index}")
    ((kind, body),) = op.items()
    if not isinstance(body, dict):
        raise RequestError(f"malformed transaction operation {index}")
    return kind, body


def _check_op(
    index: int, kind: str, body: dict[str, Any], limits: Limits, datacenter: str
) -> dict[str, Any]:
    """The op, checked and (catalog rows) normalized."""
    where = f"transaction operation {index} ({kind})"
    verb = body.get("Verb", "")
    if kind == "KV":
        # An unknown verb or an empty key is the op's own error, reported by the FSM (409).
        check_fields(body, KV, where)
        check_value_size(body.get("Key", ""), body.get("Value") or b"", limits.kv_max_value_size)
        return {"KV": body}
    if set(body) - {"Verb", kind, "Node"} or not isinstance(verb, str):
        raise RequestError(f"malformed {where}")
    writes = verb in ("set", "cas")
    if kind == "Node":
        return {"Node": {"Verb": verb, "Node": check_node(body.get("Node") or {}, datacenter)}}
    if kind == "Service":
        node = body.get("Node", "")
        if not isinstance(node, str):
            raise RequestError(f"malformed {where}: Node must be a string")
        svc = body.get("Service") or {}
        row = check_service(svc, where) if writes else dict(check_fields(svc, SERVICE_REF, where))
        row["ModifyIndex"] = svc.get("ModifyIndex") or 0
        return {"Service": {"Verb": verb, "Node": node, "Service": row}}
    check = body.get("Check") or {}
    if writes:
        node = check.get("Node") if isinstance(check, dict) else None
        row = check_check(check, node if isinstance(node, str) else "", where)
    else:
        row = dict(check_fields(check, CHECK, where))
    row["ModifyIndex"] = check.get("ModifyIndex") or 0
    return {"Check": {"Verb": verb, "Check": row}}


def validate(ops: Any, limits: Limits, datacenter: str) -> list[dict[str, Any]]:
    """The ops, checked and normalized (RequestError / CommandError on the first bad one)."""
    if not isinstance(ops, list):
        raise RequestError("malformed transaction: ops must be a list")
    if len(ops) > limits.txn_max_ops:
        raise RequestError(
            f"Transaction contains too many operations ({len(ops)} > {limits.txn_max_ops})"
        )
    out = []
    for index, op in enumerate(ops):
        kind, body = _op(index, op)
        out.append(_check_op(index, kind, body, limits, datacenter))
    return out


def needs(store: StateStore, ops: list[dict[str, Any]]) -> list[Need]:
    """What each op touches: its key, node or service (Consul's per-op ACL checks)."""
    out: list[Need] = []
    for op in ops:
        ((kind, body),) = op.items()
        verb = body.get("Verb", "")
        if kind == "KV":
            access = Access.READ if verb in READ_VERBS else Access.WRITE
            out.append(Need(Resource.KEY, body.get("Key", ""), access))
            continue
        access = Access.READ if verb in CATALOG_READ_VERBS else Access.WRITE
        if kind == "Node":
            out.append(Need(Resource.NODE, (body.get("Node") or {}).get("Node", ""), access))
        elif kind == "Service":
            svc = body.get("Service") or {}
            name = svc.get("Service") or ""
            if not name:
                existing = store.catalog.service(body.get("Node", ""), svc.get("ID", ""))
                name = existing["Service"] if existing is not None else ""
            out.append(Need(Resource.SERVICE, name, access))
        else:
            check = body.get("Check") or {}
            if check.get("ServiceName"):
                out.append(Need(Resource.SERVICE, check["ServiceName"], access))
            else:
                out.append(Need(Resource.NODE, check.get("Node", ""), access))
    return out


async def apply(server: Server, req: Request[TxnApply]) -> Any:
    ops = validate(req.payload.ops, server.limits, server.datacenter)
    for need in needs(server.store, ops):
        authorize(req.token, need.resource, need.segment, need.access)
    for op in ops:  # a recursive delete also needs no weaker rule under its prefix
        kv = op.get("KV")
        if kv is not None and kv.get("Verb") == "delete-tree":
            authorize_key_write_prefix(kv.get("Key", ""))
    return await server.propose(C.txn(ops, ts=server.now()))


def check_read(limits: Limits, p: TxnRead) -> None:
    validate(p.ops, limits, "")
    for op in p.ops:
        ((kind, body),) = op.items()
        verbs = READ_VERBS if kind == "KV" else CATALOG_READ_VERBS
        if body.get("Verb", "") not in verbs:
            raise RequestError("Txn.Read takes read-only operations (use Txn.Apply)")


def _read_needs(store: StateStore, p: TxnRead) -> list[Need]:
    return needs(store, p.ops)


ENDPOINTS = [
    write("Txn.Apply", TxnApply, apply),
    read("Txn.Read", TxnRead, reads.txn_read, _read_needs, check_read),
]
