"""ConfigEntry: ConfigEntry.Apply / ConfigEntry.Delete and the reads.

The entry is decoded, normalized and validated here, on the leader, whatever agent received
it; only a valid canonical entry reaches the log. Rules that span entries (the discovery-chain
graph) are checked by the FSM against the exact state the entry is applied to.
"""

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


async def apply(server: Server, req: Request[ConfigEntryApply]) -> bool:
    from consulpy.connect import config_entries as ce

    _check_cas(req.payload.cas)
    try:
        entry = ce.normalize(req.payload.entry)
    except ce.EntryError as exc:
        raise entry_error(exc) from exc
    authorize(req.token, f"config:{entry['Kind']}/{entry['Name']}", "write")
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
    authorize(req.token, f"config:{p.kind}/{p.name}", "write")
    cmd = C.config_entry_delete(p.kind, p.name, cas=p.cas, ts=server.now())
    return bool(await server.propose(cmd))


ENDPOINTS = [
    write("ConfigEntry.Apply", ConfigEntryApply, apply),
    write("ConfigEntry.Delete", ConfigEntryDelete, delete),
    read("ConfigEntry.Get", reads.config_entry_get),
    read("ConfigEntry.List", reads.config_entry_list),
]
