"""ConfigEntry: ConfigEntry.Apply / ConfigEntry.Delete and the reads.

The entry is decoded, normalized and validated here, on the leader, whatever agent received
it; only a valid canonical entry reaches the log. Rules that span entries (the discovery-chain
graph) are checked by the FSM against the exact state the entry is applied to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.request import Request
from consulpy.server.errors import RequestError
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class ConfigEntryApply:
    entry: dict[str, Any]
    cas: int | None = None  # None: upsert; 0: only if absent; N: only at ModifyIndex N


@dataclass(frozen=True, slots=True)
class ConfigEntryDelete:
    kind: str
    name: str
    cas: int | None = None


def entry_error(exc: Exception) -> RequestError:
    prefix = "Request decoding failed: " if getattr(exc, "decoding", False) else ""
    return RequestError(f"{prefix}{exc}")


def _check_cas(cas: int | None) -> None:
    if cas is not None and cas < 0:
        raise RequestError("cas must not be negative")


# Kinds that configure the whole mesh (no per-service rule; mesh falls back to operator).
MESH_KINDS = frozenset({"proxy-defaults", "mesh", "ingress-gateway", "terminating-gateway"})
SERVICE_INTENTIONS = "service-intentions"


def write_needs(kind: str, name: str) -> list[Need]:
    """Consul's per-kind CanWrite (spec connect-and-acl section 3.2)."""
    if kind == SERVICE_INTENTIONS:
        return [Need(Resource.INTENTION, name, Access.WRITE)]
    if kind in MESH_KINDS:
        return [Need(Resource.MESH, "", Access.WRITE)]
    return [Need(Resource.SERVICE, name, Access.WRITE)]


def read_needs(kind: str, name: str) -> list[Need]:
    """Consul's per-kind CanRead: proxy-defaults and mesh are readable by anyone."""
    if kind == SERVICE_INTENTIONS:
        return [Need(Resource.INTENTION, name, Access.READ)]
    if kind in ("proxy-defaults", "mesh"):
        return []
    return [Need(Resource.SERVICE, name, Access.READ)]


def _authorize_write(token: str, kind: str, name: str) -> None:
    for need in write_needs(kind, name):
        authorize(token, need.resource, need.segment, need.access)


@dataclass(frozen=True, slots=True)
class ConfigEntryGet:
    kind: str
    name: str
    # The primary datacenter's copy: a read-modify-write (the intention API's) whose CAS write
    # a secondary forwards to the primary must read the entry, and its ModifyIndex, there.
    primary: bool = False


@dataclass(frozen=True, slots=True)
class ConfigEntryList:
    kind: str | None = None  # None: every kind


async def apply(server: Server, req: Request[ConfigEntryApply]) -> bool:
    from consulpy.connect import config_entries as ce

    _check_cas(req.payload.cas)
    try:
        entry = ce.normalize(req.payload.entry)
    except ce.EntryError as exc:
        raise entry_error(exc) from exc
    _authorize_write(req.token, entry["Kind"], entry["Name"])
    cmd = C.config_entry_set(entry, cas=req.payload.cas, ts=server.now())
    return bool(await server.propose(cmd))


async def delete(server: Server, req: Request[ConfigEntryDelete]) -> bool:
    from consulpy.connect import config_entries as ce

    p = req.payload
    _check_cas(p.cas)
    if p.kind not in ce.KINDS:
        raise RequestError(f"invalid config entry kind: {p.kind}")
    if not p.name:
        raise RequestError("Missing config entry name")
    if p.cas == 0:
        raise RequestError("cas value must be greater than 0 when deleting")
    _authorize_write(req.token, p.kind, p.name)
    cmd = C.config_entry_delete(p.kind, p.name, cas=p.cas, ts=server.now())
    return bool(await server.propose(cmd))


ENDPOINTS = [
    write("ConfigEntry.Apply", ConfigEntryApply, apply),
    write("ConfigEntry.Delete", ConfigEntryDelete, delete),
    read(
        "ConfigEntry.Get",
        ConfigEntryGet,
        reads.config_entry_get,
        lambda _s, p: read_needs(p.kind, p.name),
    ),
    read(
        "ConfigEntry.List",
        ConfigEntryList,
        reads.config_entry_list,
        lambda _s, _p: [Need(Resource.SERVICE, "", Access.READ, filtered=True)],
    ),
]
