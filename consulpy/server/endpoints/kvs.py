"""KVS: KVS.Apply (set, cas, lock, unlock, delete, delete-cas, delete-tree) and the KV reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consulpy.server import reads
from consulpy.server.endpoints.authz import authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Request
from consulpy.server.errors import CommandError, RequestError
from consulpy.state import commands as C
from consulpy.util.goquote import go_quote

if TYPE_CHECKING:
    from consulpy.server.server import Server

U64 = 1 << 64


@dataclass(frozen=True, slots=True)
class KVSApply:
    verb: str
    key: str
    value: bytes = b""
    flags: int = 0
    index: int = 0  # the ModifyIndex a cas / delete-cas compares with
    session: str = ""  # the session a lock / unlock names


def validate(p: KVSApply) -> None:
    if p.verb not in C.KV_WRITE_VERBS:
        raise RequestError(f"unknown KV verb {go_quote(p.verb)}")
    if not p.key and p.verb != "delete-tree":
        raise RequestError("Missing key name")
    if not 0 <= p.flags < U64 or not 0 <= p.index < U64:
        raise RequestError("flags and index must be unsigned 64-bit integers")
    if p.verb in ("lock", "unlock") and not p.session:
        raise CommandError("missing session")


async def apply(server: Server, req: Request[KVSApply]) -> bool:
    p = req.payload
    validate(p)
    authorize(req.token, f"key:{p.key}", "write")
    cmd = C.kv(p.verb, p.key, p.value, p.flags, p.index, p.session, ts=server.now())
    return bool(await server.propose(cmd))


ENDPOINTS = [
    write("KVS.Apply", KVSApply, apply),
    read("KVS.Get", reads.kv_get),
    read("KVS.List", reads.kv_list),
    read("KVS.ListKeys", reads.kv_keys),
]
