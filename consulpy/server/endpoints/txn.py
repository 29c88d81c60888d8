"""Txn: Txn.Apply (a write transaction, all or nothing, at the leader's clock) and Txn.Read
(a read-only transaction, no log entry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Request
from consulpy.server.errors import RequestError
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server

OP_KINDS = frozenset({"KV", "Node", "Service", "Check", "Session"})


@dataclass(frozen=True, slots=True)
class TxnApply:
    ops: list[dict[str, Any]]


def validate(ops: list[Any]) -> None:
    for index, op in enumerate(ops):
        if not isinstance(op, dict) or len(op) != 1 or not set(op) <= OP_KINDS:
            raise RequestError(f"malformed transaction operation {index}")
        (body,) = op.values()
        if not isinstance(body, dict):
            raise RequestError(f"malformed transaction operation {index}")


async def apply(server: Server, req: Request[TxnApply]) -> Any:
    validate(req.payload.ops)
    authorize(req.token, "txn", "write")
    return await server.propose(C.txn(req.payload.ops, ts=server.now()))


ENDPOINTS = [
    write("Txn.Apply", TxnApply, apply),
    read("Txn.Read", reads.txn_read),
]
