"""PUT /v1/txn: atomic multi-operation transactions.

Write transactions become one command (one log entry, one index for every write). Read-only
transactions skip the log and run on the store with the request's consistency mode.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consulpy.http.catalog import normalize_check, normalize_service
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    endpoint,
    meta_headers,
    query_options,
    read_body,
    respond,
)
from consulpy.http.specs import HEALTH_CHECK, NODE_SERVICE
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.txn import TxnApply
from consulpy.state.txnops import is_read_only
from consulpy.util.decode import DecodeError, MapOf, Struct, decode_struct, parse_json
from consulpy.util.goquote import go_quote

KV_OP = Struct(
    "KVTxnOp",
    {
        "Verb": "string",
        "Key": "string",
        "Value": "bytes",
        "Flags": "uint64",
        "Index": "uint64",
        "Session": "string",
        "Namespace": "string",
        "Partition": "string",
    },
)
OP_KINDS = ("KV", "Node", "Service", "Check")
TXN_OP = Struct("TxnOp", {kind: "any" for kind in OP_KINDS})
NODE = Struct(
    "Node",
    {
        "ID": "string",
        "Node": "string",
        "Address": "string",
        "Datacenter": "string",
        "TaggedAddresses": MapOf("string"),
        "Meta": MapOf("string"),
        "ModifyIndex": "uint64",
        "CreateIndex": "uint64",
        "Partition": "string",
        "PeerName": "string",
    },
)
NODE_OP = Struct("TxnNodeOp", {"Verb": "string", "Node": NODE})
SERVICE_OP = Struct(
    "TxnServiceOp",
    {
        "Verb": "string",
        "Node": "string",
        "Service": Struct(
            "NodeService",
            {**NODE_SERVICE.fields, "ModifyIndex": "uint64", "CreateIndex": "uint64"},
            strict=False,
        ),
    },
)
CHECK_OP = Struct(
    "TxnCheckOp",
    {
        "Verb": "string",
        "Check": Struct(
            "HealthCheck",
            {**HEALTH_CHECK.fields, "ModifyIndex": "uint64", "CreateIndex": "uint64"},
            strict=False,
            aliases={"ID": "CheckID"},
        ),
    },
)


def _catalog_op(kind: str, raw: Any, datacenter: str) -> dict[str, Any]:
    """Decode and normalise a Node/Service/Check operation into catalog rows."""
    if not isinstance(raw, dict):
        raise DecodeError(f"json: cannot unmarshal into Go struct field TxnOp.{kind}")
    if kind == "Node":
        op = decode_struct(raw, NODE_OP, "TxnOp.Node")
        node = op.get("Node") or {}
        row = {
            "ID": (node.get("ID") or "").lower(),
            "Node": node.get("Node") or "",
            "Address": node.get("Address") or "",
            "Datacenter": node.get("Datacenter") or datacenter,
            "TaggedAddresses": node.get("TaggedAddresses") or None,
            "Meta": node.get("Meta") or None,
            "ModifyIndex": node.get("ModifyIndex") or 0,
        }
        return {"Verb": op.get("Verb", ""), "Node": row}
    if kind == "Service":
        op = decode_struct(raw, SERVICE_OP, "TxnOp.Service")
        svc = op.get("Service") or {}
        writes = op.get("Verb") in ("set", "cas")
        row = normalize_service(svc) if writes else {"ID": svc.get("ID") or ""}
        row["ModifyIndex"] = svc.get("ModifyIndex") or 0
        return {"Verb": op.get("Verb", ""), "Node": op.get("Node") or "", "Service": row}
    op = decode_struct(raw, CHECK_OP, "TxnOp.Check")
    check = op.get("Check") or {}
    if op.get("Verb") in ("set", "cas"):
        row = normalize_check(check, check.get("Node") or "")
    else:
        row = {"Node": check.get("Node") or "", "CheckID": check.get("CheckID") or ""}
    row["ModifyIndex"] = check.get("ModifyIndex") or 0
    return {"Verb": op.get("Verb", ""), "Check": row}


def parse_ops(raw: bytes, datacenter: str = "dc1") -> list[dict[str, Any]]:
    """Decode the body into a list of ops, each {"KV": {...}} with canonical keys."""
    doc = parse_json(raw)
    if not isinstance(doc, list):
        kind = "object" if isinstance(doc, dict) else type(doc).__name__
        raise DecodeError(f"json: cannot unmarshal {kind} into Go value of type api.TxnOps")
    ops: list[dict[str, Any]] = []
    for index, element in enumerate(doc):
        if not isinstance(element, dict):
            raise DecodeError(
                f"json: cannot unmarshal into Go struct field TxnOps[{index}] of type api.TxnOp"
            )
        op = decode_struct(element, TXN_OP)
        op = {k: v for k, v in op.items() if v is not None}
        if not op:
            continue  # Consul silently drops empty elements
        if "KV" in op:
            if not isinstance(op["KV"], dict):
                raise DecodeError("json: cannot unmarshal into Go struct field TxnOp.KV")
            kv = decode_struct(op["KV"], KV_OP, "TxnOp.KV")
            for field in ("Namespace", "Partition"):
                if kv.pop(field, "") not in ("", None, "default"):
                    raise DecodeError(f"{field} is a Consul Enterprise feature")
            ops.append({"KV": kv})
        else:
            kind = next(iter(op))
            ops.append({kind: _catalog_op(kind, op[kind], datacenter)})
    return ops


@endpoint("PUT")
async def txn_endpoint(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    limits = agent.config.limits
    max_body = max(limits.txn_max_req_len, limits.kv_max_value_size)
    raw = await read_body(
        req, max_body, lambda n: f"Request body too large, max size: {max_body} bytes"
    )
    try:
        ops = parse_ops(raw, agent.datacenter)
    except DecodeError as exc:
        raise HTTPError(400, f"Failed to parse body: {exc}") from exc
    if len(ops) > limits.txn_max_ops:
        raise HTTPError(
            413,
            f"Transaction contains too many operations ({len(ops)} > {limits.txn_max_ops})",
        )
    for op in ops:
        kv = op.get("KV")
        if kv is None:
            continue
        value = kv.get("Value") or b""
        if len(value) > limits.kv_max_value_size:
            raise HTTPError(
                413,
                f"Value for key {go_quote(kv.get('Key', ''))} is too large "
                f"({len(value)} > {limits.kv_max_value_size} bytes)",
            )
    if is_read_only(ops):
        meta, result = await agent.delegate.read(
            "Txn.Read", {"ops": ops}, query_options(req), token=request_token(req)
        )
        status = 409 if result["Errors"] else 200
        return respond(req, result, status=status, headers=meta_headers(meta, with_index=False))
    result = await agent.delegate.apply("Txn.Apply", TxnApply(ops), request_token(req))
    status = 409 if result["Errors"] else 200
    return respond(req, result, status=status)


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/txn", txn_endpoint)]
