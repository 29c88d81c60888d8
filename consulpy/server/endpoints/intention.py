"""Intention: Intention.Apply and the intention reads.

Intentions are stored as service-intentions config entries. The HTTP intention APIs compute
the destination's new entry (read-modify-write with CAS); Intention.Apply validates that entry
again here, on the leader, with the rules of the API that built it (the legacy ID-based API
keeps IDs and timestamps the config-entry API refuses), then stores or deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consulpy.connect import intentions as ix
from consulpy.server import reads
from consulpy.server.endpoints.authz import Access, Need, Resource, authorize
from consulpy.server.endpoints.base import read, write
from consulpy.server.endpoints.config_entry import entry_error
from consulpy.server.endpoints.request import Request
from consulpy.server.errors import RequestError
from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server


@dataclass(frozen=True, slots=True)
class IntentionApply:
    destination: str
    entry: dict[str, Any] | None  # None: the destination has no intentions left
    cas: int  # ModifyIndex of the entry read before (0: it did not exist)
    legacy: bool = False


async def apply(server: Server, req: Request[IntentionApply]) -> bool:
    from consulpy.connect import config_entries as ce

    p = req.payload
    if not p.destination or p.cas < 0:
        raise RequestError("Intention.Apply needs a destination and a non-negative cas")
    authorize(req.token, Resource.INTENTION, p.destination, Access.WRITE)
    if p.entry is None:
        cmd = C.config_entry_delete(
            ce.SERVICE_INTENTIONS, p.destination, cas=p.cas, ts=server.now()
        )
        return bool(await server.propose(cmd))
    try:
        entry = ce.normalize_intentions(p.entry, legacy=p.legacy)
    except ce.EntryError as exc:
        raise entry_error(exc) from exc
    if entry.get("Name") != p.destination:
        raise RequestError("Intention.Apply: the entry does not belong to the destination")
    cmd = C.config_entry_set(entry, cas=p.cas, ts=server.now())
    return bool(await server.propose(cmd))


@dataclass(frozen=True, slots=True)
class IntentionList:
    filter: str = ""


@dataclass(frozen=True, slots=True)
class IntentionMatch:
    by: str  # "source" or "destination"
    names: list[str]


@dataclass(frozen=True, slots=True)
class IntentionExact:
    source: str
    destination: str


@dataclass(frozen=True, slots=True)
class IntentionGet:
    id: str


@dataclass(frozen=True, slots=True)
class IntentionDecide:
    source: str
    destination: str
    default_allow: bool = True


def _check_match(_limits: object, p: IntentionMatch) -> None:
    if p.by not in ("source", "destination"):
        raise RequestError(f"Intention.Match: by must be source or destination, not {p.by!r}")
    _check_targets(p.names)


def _check_targets(names: list[str] | tuple[str, ...]) -> None:
    for name in names:  # a malformed target ("a/b": a namespace) is the caller's error
        try:
            ix.parse_target(name)
        except ix.IntentionError as exc:
            raise RequestError(str(exc)) from None


def _check_decide(_limits: object, p: IntentionDecide) -> None:
    _check_targets((p.source, p.destination))


_FILTERED = [Need(Resource.INTENTION, "", Access.READ, filtered=True)]


def _intention_read(name: str) -> Need:
    return Need(Resource.INTENTION, name, Access.READ)


ENDPOINTS = [
    write("Intention.Apply", IntentionApply, apply),
    read("Intention.List", IntentionList, reads.intention_list, lambda _s, _p: _FILTERED),
    read(
        "Intention.Match",
        IntentionMatch,
        reads.intention_match,
        lambda _s, p: [_intention_read(n) for n in p.names],
        _check_match,
    ),
    read(
        "Intention.Exact",
        IntentionExact,
        reads.intention_exact,
        lambda _s, p: [_intention_read(p.destination)],
    ),
    read("Intention.Get", IntentionGet, reads.intention_by_id, lambda _s, _p: _FILTERED),
    # Consul's intention check needs service:read on the destination, not intentions:read.
    read(
        "Intention.Decide",
        IntentionDecide,
        reads.intention_decide,
        lambda _s, p: [Need(Resource.SERVICE, p.destination, Access.READ)],
        _check_decide,
    ),
]
