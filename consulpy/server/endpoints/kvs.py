"""KVS: KVS.Apply (set, cas, lock, unlock, delete, delete-cas, delete-tree) and the KV reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consulpy.server import reads
from consulpy.server.endpoints.authz import (
    Access,
    Need,
    Resource,
    authorize,
    authorize_key_write_prefix,
)
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


@dataclass(frozen=True, slots=True)
class KVSGet:
    key: str


@dataclass(frozen=True, slots=True)
class KVSList:
    key: str  # the prefix


@dataclass(frozen=True, slots=True)
class KVSListKeys:
    key: str  # the prefix
    separator: str = ""


def check_value_size(key: str, value: bytes, limit: int) -> None:
    """limits.kv_max_value_size, enforced on the servers for every writer."""
    if len(value) > limit:
        raise RequestError(
            f"Value for key {go_quote(key)} is too large ({len(value)} > {limit} bytes)"
        )


def validate(p: KVSApply, max_value_size: int) -> None:
    if p.verb not in C.KV_WRITE_VERBS:
        raise RequestError(f"unknown KV verb {go_quote(p.verb)}")
    if not p.key and p.verb != "delete-tree":
        raise RequestError("Missing key name")
    if not 0 <= p.flags < U64 or not 0 <= p.index < U64:
        raise RequestError("flags and index must be unsigned 64-bit integers")
    if p.verb in ("lock", "unlock") and not p.session:
        raise CommandError("missing session")
    check_value_size(p.key, p.value, max_value_size)


async def apply(server: Server, req: Request[KVSApply]) -> bool:
    p = req.payload
    validate(p, server.limits.kv_max_value_size)
    authorize(req.token, Resource.KEY, p.key, Access.WRITE)
    if p.verb == "delete-tree":
        authorize_key_write_prefix(p.key)
    if p.verb in ("lock", "unlock"):
        authorize(req.token, Resource.SESSION, _session_node(server, p.session), Access.WRITE)
    cmd = C.kv(p.verb, p.key, p.value, p.flags, p.index, p.session, ts=server.now())
    return bool(await server.propose(cmd))


def _session_node(server: Server, session_id: str) -> str:
    """Sessions are authorized by their node (an unknown session fails in the FSM)."""
    session = server.store.sessions.get(session_id)
    return session.node if session is not None else ""


def _list_needs(prefix: str) -> list[Need]:
    """key:list on the prefix (enforced only with enable_key_list_policy), and the entries
    filtered by key:read."""
    return [
        Need(Resource.KEY, prefix, Access.LIST),
        Need(Resource.KEY, "", Access.READ, filtered=True),
    ]


ENDPOINTS = [
    write("KVS.Apply", KVSApply, apply),
    read("KVS.Get", KVSGet, reads.kv_get, lambda _s, p: [Need(Resource.KEY, p.key, Access.READ)]),
    read("KVS.List", KVSList, reads.kv_list, lambda _s, p: _list_needs(p.key)),
    read("KVS.ListKeys", KVSListKeys, reads.kv_keys, lambda _s, p: _list_needs(p.key)),
]
