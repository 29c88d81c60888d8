"""Intentions: who may connect to whom. The `/v1/connect/intentions*` API is a view over
`service-intentions` config entries (one entry per destination, one `Sources[]` element per
source), as in Consul since 1.9. This module turns entries into intentions, orders and matches
them, makes the L4 allow/deny decision, and computes the entry that each write endpoint stores.

    intentions = from_entries(entries)                 # Consul's list order
    allowed, reason = decide(intentions, "web", "db", default_allow=True)
    entry = upsert_exact(stored_db_entry, "web", "db", {"Action": "allow"})

Precedence (9 = exact -> exact ... 1 = */* -> */*) orders everything: the first intention, in
precedence order, whose destination and source match a connection decides it. Namespaces are
always `default` (Consul CE), so only 9, 8, 6 and 5 occur in practice.

Pure functions over plain dicts; the caller reads and writes the store. Errors raise
IntentionError with Consul's text.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from consulpy.connect import config_entries as ce
from consulpy.filter import ListOf, MapOf, compile_filter, struct
from consulpy.util.goquote import go_quote

WILDCARD = ce.WILDCARD
DEFAULT_NAMESPACE = ce.DEFAULT_NAMESPACE
SOURCE = "source"
DESTINATION = "destination"


class IntentionError(ValueError):
    """A request the intentions API refuses; `str(err)` is Consul's text. `decoding` is True
    when the body itself could not be decoded (Consul: 400 `Request decode failed: <text>`)."""

    def __init__(self, text: str, *, decoding: bool = False) -> None:
        super().__init__(text)
        self.decoding = decoding


# --------------------------------------------------------------------------------------------
# Names and precedence


def precedence(
    source_name: str,
    dest_name: str,
    source_ns: str = DEFAULT_NAMESPACE,
    dest_ns: str = DEFAULT_NAMESPACE,
) -> int:
    """Consul's intention precedence: exact -> exact is 9, */* -> */* is 1 (see the table in
    docs/intentions.md). The destination picks 9, 6 or 3; each source wildcard costs one."""
    return ce.intention_precedence(source_name, dest_name, source_ns, dest_ns)


def sort_key(intention: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    """Evaluation order: precedence descending, then (SourceNS, SourceName, DestinationNS,
    DestinationName) ascending, which Consul uses to keep equal precedences deterministic."""
    return (
        -intention.get("Precedence", 0),
        intention.get("SourceNS", DEFAULT_NAMESPACE),
        intention.get("SourceName", ""),
        intention.get("DestinationNS", DEFAULT_NAMESPACE),
        intention.get("DestinationName", ""),
    )


def _namespace(ns: str, what: str) -> str:
    """Consul CE accepts only the default namespace (any case) or none."""
    if ns == "" or ns.lower() == DEFAULT_NAMESPACE:
        return DEFAULT_NAMESPACE
    raise IntentionError(
        f"Invalid {what} {go_quote(ns)}: Namespaces is a Consul Enterprise feature"
    )


def _partition(partition: str, what: str) -> None:
    if partition and partition.lower() != "default":
        raise IntentionError(
            f"Invalid {what} {go_quote(partition)}: Partitions is a Consul Enterprise feature"
        )


def parse_target(text: str) -> tuple[str, str]:
    """`name`, `ns/name` or `partition/ns/name` (the `source`/`destination`/`name` query
    parameters) -> (namespace, name). `*` is allowed as a whole name."""
    parts = text.split("/")
    if len(parts) > 3:
        raise IntentionError("input can contain at most two '/'")
    if len(parts) == 3:
        _partition(parts[0], "partition")
        parts = parts[1:]
    ns, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    ns = _namespace(ns, "namespace")
    if not name:
        raise IntentionError(f"Invalid intention target {go_quote(text)}: no service name")
    problem = ce.wildcard_error(name, ns)
    if problem is not None:
        raise IntentionError(problem)
    return ns, name


# --------------------------------------------------------------------------------------------
# The API view


def to_intention(entry: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """The intention (Consul's API object) for one source of a service-intentions entry."""
    legacy_id = source.get("LegacyID", "")
    out: dict[str, Any] = {}
    if legacy_id:
        out["ID"] = legacy_id
    out["Description"] = source.get("Description", "")
    if source.get("Peer"):
        out["SourcePeer"] = source["Peer"]
    out.update(
        SourceNS=DEFAULT_NAMESPACE,
        SourceName=source.get("Name", ""),
        DestinationNS=DEFAULT_NAMESPACE,
        DestinationName=entry.get("Name", ""),
        SourceType=source.get("Type") or "consul",
    )
    if source.get("Permissions"):
        out["Permissions"] = copy.deepcopy(source["Permissions"])
    else:
        out["Action"] = source.get("Action", "")
    meta = source.get("LegacyMeta") if legacy_id else entry.get("Meta")
    out["Meta"] = dict(meta or {})
    out["Precedence"] = source.get(
        "Precedence", precedence(out["SourceName"], out["DestinationName"])
    )
    if legacy_id:
        out["CreatedAt"] = source.get("LegacyCreateTime", "")
        out["UpdatedAt"] = source.get("LegacyUpdateTime", "")
    for key in ("CreateIndex", "ModifyIndex"):
        if key in entry:
            out[key] = entry[key]
    return out


def from_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every intention held by the given service-intentions entries, in Consul's list order
    (`GET /v1/connect/intentions`)."""
    out = [
        to_intention(entry, source)
        for entry in entries
        if entry.get("Kind", ce.SERVICE_INTENTIONS) == ce.SERVICE_INTENTIONS
        for source in entry.get("Sources") or []
    ]
    out.sort(key=sort_key)
    return out


def intention_string(intention: Mapping[str, Any]) -> str:
    """Consul's one-line form, used in authorize reasons and duplicate errors:
    `default/web => default/db (Precedence: 9, Action: ALLOW)`."""
    ident = f"ID: {intention['ID']}, " if intention.get("ID") else ""
    if intention.get("Permissions"):
        detail = f"Permissions: {len(intention['Permissions'])}"
    else:
        detail = f"Action: {str(intention.get('Action', '')).upper()}"
    return (
        f"{intention.get('SourceNS', DEFAULT_NAMESPACE)}/{intention.get('SourceName', '')} => "
        f"{intention.get('DestinationNS', DEFAULT_NAMESPACE)}/"
        f"{intention.get('DestinationName', '')} "
        f"({ident}Precedence: {intention.get('Precedence', 0)}, {detail})"
    )


_PERMISSION_FILTER = struct(
    Action=str,
    HTTP=struct(
        PathExact=str,
        PathPrefix=str,
        PathRegex=str,
        Header=ListOf(
            struct(
                Name=str,
                Present=bool,
                Exact=str,
                Prefix=str,
                Suffix=str,
                Regex=str,
                Invert=bool,
            )
        ),
        Methods=ListOf(str),
    ),
)
# The fields `?filter=` may select on, as go-bexpr reflects them off Consul's Intention.
INTENTION_FILTER_SCHEMA = struct(
    ID=str,
    Description=str,
    SourcePeer=str,
    SourceSamenessGroup=str,
    SourcePartition=str,
    SourceNS=str,
    SourceName=str,
    DestinationPartition=str,
    DestinationNS=str,
    DestinationName=str,
    SourceType=str,
    Action=str,
    Permissions=ListOf(_PERMISSION_FILTER),
    Meta=MapOf(str),
    Precedence=int,
    CreateIndex=int,
    ModifyIndex=int,
)
_FILTER_ZERO: dict[str, Any] = {
    key: ("" if schema is str else 0 if schema is int else None)
    for key, schema in INTENTION_FILTER_SCHEMA.items()
}
_FILTER_ZERO.update(Permissions=[], Meta={})


def filter_intentions(
    intentions: Iterable[Mapping[str, Any]], expression: str
) -> list[Mapping[str, Any]]:
    """`GET /v1/connect/intentions?filter=`: the intentions the bexpr expression selects, order
    kept. Absent fields compare as Go's zero values. Raises consulpy.filter.FilterError, to be
    answered like every `?filter=` error (docs/filtering.md)."""
    compiled = compile_filter(expression, INTENTION_FILTER_SCHEMA)
    return [ixn for ixn in intentions if compiled.matches({**_FILTER_ZERO, **ixn})]


# --------------------------------------------------------------------------------------------
# Matching and the L4 decision


def _side_matches(intention: Mapping[str, Any], by: str, ns: str, name: str) -> bool:
    prefix = "Source" if by == SOURCE else "Destination"
    i_ns = intention.get(f"{prefix}NS", DEFAULT_NAMESPACE)
    i_name = intention.get(f"{prefix}Name", "")
    return i_ns in (ns, WILDCARD) and i_name in (name, WILDCARD)


def match(
    intentions: Iterable[Mapping[str, Any]], by: str, names: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """`GET /v1/connect/intentions/match`: for each name, the intentions whose `by` side
    (`source` or `destination`) is that name or `*`, in evaluation order."""
    if by not in (SOURCE, DESTINATION):
        raise IntentionError("'by' parameter must be one of 'source' or 'destination'")
    pool = list(intentions)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        ns, svc = parse_target(name)
        found = [dict(ixn) for ixn in pool if _side_matches(ixn, by, ns, svc)]
        found.sort(key=sort_key)
        out[name] = found
    return out


def decide(
    intentions: Iterable[Mapping[str, Any]],
    source: str,
    destination: str,
    *,
    default_allow: bool,
    default_intention_policy: str = "",
) -> tuple[bool, str]:
    """The L4 answer for a connection from `source` to `destination` and Consul's reason
    (`/v1/connect/intentions/check`, `/v1/agent/connect/authorize`).

    The first matching intention in precedence order decides; one with L7 Permissions counts
    as a deny, since only Envoy can judge each request. With no match: the agent's
    `default_intention_policy` ("allow"/"deny") when set, else `default_allow` (the ACL
    default policy, or allow with ACLs disabled)."""
    src_ns, src = parse_target(source)
    dst_ns, dst = parse_target(destination)
    candidates = sorted(
        (ixn for ixn in intentions if _side_matches(ixn, DESTINATION, dst_ns, dst)),
        key=sort_key,
    )
    for ixn in candidates:
        if _side_matches(ixn, SOURCE, src_ns, src):
            if ixn.get("Permissions"):
                return False, f"Matched L7 intention: {intention_string(ixn)}"
            return ixn.get("Action") == "allow", f"Matched L4 intention: {intention_string(ixn)}"
    if default_intention_policy:
        return default_intention_policy == "allow", "Default intention policy"
    return default_allow, "Default behavior configured by ACLs"


# --------------------------------------------------------------------------------------------
# Writes: each returns the service-intentions entry to store for the destination


def _decode_body(body: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise IntentionError(
            "json: cannot unmarshal into Go value of type structs.Intention", decoding=True
        )
    try:
        return ce.decode(ce.INTENTION_BODY_SCHEMA, body, strict=False)
    except ce.EntryError as err:
        raise IntentionError(str(err), decoding=True) from None


def _finish(entry: Mapping[str, Any], *, legacy: bool) -> dict[str, Any]:
    try:
        return ce.normalize_intentions(entry, legacy=legacy)
    except ce.EntryError as err:
        raise IntentionError(str(err)) from None


def _new_entry(destination: str) -> dict[str, Any]:
    return {"Kind": ce.SERVICE_INTENTIONS, "Name": destination, "Sources": []}


def _source_from(ixn: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Consul's Intention.ToSourceIntention, for the fields a write may carry."""
    src: dict[str, Any] = {"Name": name, "Type": ixn.get("SourceType") or "consul"}
    for ixn_key, src_key in (
        ("Action", "Action"),
        ("Permissions", "Permissions"),
        ("Description", "Description"),
        ("SourcePeer", "Peer"),
        ("SourceSamenessGroup", "SamenessGroup"),
    ):
        if ixn.get(ixn_key):
            src[src_key] = copy.deepcopy(ixn[ixn_key])
    return src


def validate_source(source: Mapping[str, Any], destination: str) -> dict[str, Any]:
    """One `Sources[]` element of the entry for `destination`, decoded, normalized and
    checked with Consul's texts (`Sources[0]...`); returns its canonical form."""
    try:
        decoded = ce.decode(ce.INTENTION_SOURCE_SCHEMA, source)
        ce.normalize_intention_source(decoded, destination, legacy=False)
        ce.validate_intention_source(0, decoded, dest_is_wild=destination == WILDCARD, legacy=False)
    except ce.EntryError as err:
        raise IntentionError(str(err), decoding=err.decoding) from None
    return ce.INTENTION_SOURCE_SCHEMA.emit(decoded)


def get_exact(entry: Mapping[str, Any] | None, source: str) -> dict[str, Any] | None:
    """`GET /v1/connect/intentions/exact`: the intention from `source` held by the
    destination's entry, or None (Consul: 404 `Intention not found`)."""
    _, name = parse_target(source)
    for src in (entry or {}).get("Sources") or []:
        if src.get("Name") == name:
            return to_intention(entry or {}, src)
    return None


def upsert_exact(
    entry: Mapping[str, Any] | None, source: str, destination: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """`PUT /v1/connect/intentions/exact?source=&destination=`: the destination's entry with
    the source added or replaced (by name). The body carries SourceType, Action or
    Permissions, Description; Meta lives on the entry and cannot be set this way."""
    _, src_name = parse_target(source)
    _, dst_name = parse_target(destination)
    if entry is not None and entry.get("Name") != dst_name:
        raise ValueError(
            f"upsert_exact: the entry given is {entry.get('Name')!r}, not {dst_name!r}"
        )
    ixn = _decode_body(body)
    if ixn.get("ID"):
        raise IntentionError("ID must not be specified")
    meta = ixn.get("Meta") or {}
    if entry is None:
        if meta:
            raise IntentionError("Meta must not be specified")
    elif meta and meta != (entry.get("Meta") or {}):
        raise IntentionError("Meta must not be specified, or should be unchanged during an update.")
    updated = copy.deepcopy(dict(entry)) if entry is not None else _new_entry(dst_name)
    updated["Name"] = dst_name
    sources = list(updated.get("Sources") or [])
    new_source = _source_from(ixn, src_name)
    for i, src in enumerate(sources):
        if src.get("Name") == src_name:
            sources[i] = new_source
            break
    else:
        sources.append(new_source)
    updated["Sources"] = sources
    return _finish(updated, legacy=False)


def delete_exact(entry: Mapping[str, Any] | None, source: str) -> Mapping[str, Any] | None:
    """`DELETE /v1/connect/intentions/exact`: the entry without that source, None when no
    source is left (delete the entry). When the source is not there the entry is returned
    unchanged (the same object): by-name deletes are idempotent in Consul."""
    _, name = parse_target(source)
    if entry is None:
        return None
    sources = entry.get("Sources") or []
    kept = [src for src in sources if src.get("Name") != name]
    if len(kept) == len(sources):
        return entry
    if not kept:
        return None
    return _finish({**copy.deepcopy(dict(entry)), "Sources": copy.deepcopy(kept)}, legacy=False)


# --------------------------------------------------------------------------------------------
# The legacy ID-based API (POST /v1/connect/intentions, /v1/connect/intentions/<id>)


def _legacy_checks(ixn: dict[str, Any]) -> dict[str, Any]:
    """Fill a decoded legacy write's defaults and run Consul's Intention.Validate, which
    reports all problems at once."""
    if not ixn.get("SourceType"):
        ixn["SourceType"] = "consul"
    _partition(ixn.get("SourcePartition", ""), "source partition")
    _partition(ixn.get("DestinationPartition", ""), "destination partition")
    ixn["SourceNS"] = _namespace(ixn.get("SourceNS", ""), "source namespace")
    ixn["DestinationNS"] = _namespace(ixn.get("DestinationNS", ""), "destination namespace")
    errors: list[str] = []
    for side in ("Source", "Destination"):
        name = ixn.get(f"{side}Name", "")
        if not name:
            errors.append(f"{side}Name must be set")
        elif name != WILDCARD and WILDCARD in name:
            errors.append(f"{side}Name: wildcard character '*' cannot be used with partial values")
    if len(ixn.get("Description", "")) > ce.META_VALUE_MAX:
        errors.append(f"Description exceeds maximum length {ce.META_VALUE_MAX}")
    errors.extend(ce.validate_meta(ixn.get("Meta")))
    if ixn.get("Action") not in ("allow", "deny"):
        errors.append("Action must be set to 'allow' or 'deny'")
    if ixn["SourceType"] != "consul":
        errors.append("SourceType must be set to 'consul'")
    if errors:
        raise IntentionError(ce.multierror(errors))
    return ixn


def _check_legacy_allowed(entry: Mapping[str, Any]) -> None:
    """Once a destination was edited as a config entry the ID-based API may not touch it."""
    if all(src.get("LegacyID") for src in entry.get("Sources") or []):
        return
    raise IntentionError(
        "cannot use legacy intention API to edit intentions with a destination of "
        f"{go_quote(entry.get('Name', ''))} after editing them via a service-intentions "
        "config entry"
    )


def _refuse_duplicate(entry: Mapping[str, Any], name: str, legacy_id: str) -> None:
    for src in entry.get("Sources") or []:
        if src.get("Name") == name and src.get("LegacyID") != legacy_id:
            raise IntentionError(
                f"duplicate intention found: {intention_string(to_intention(entry, src))}"
            )


def _legacy_source(ixn: Mapping[str, Any], legacy_id: str, created: str, updated: str) -> dict:
    src = _source_from(ixn, ixn["SourceName"])
    src.update(LegacyID=legacy_id, LegacyCreateTime=created, LegacyUpdateTime=updated)
    if ixn.get("Meta"):
        src["LegacyMeta"] = dict(ixn["Meta"])
    return src


def create_legacy(
    entries_by_dest: Mapping[str, Mapping[str, Any]],
    body: Mapping[str, Any],
    *,
    new_id: str,
    now: str,
) -> dict[str, Any]:
    """`POST /v1/connect/intentions`: the destination's entry with the new intention added.
    `new_id` is a fresh UUID (the answer's `ID`), `now` an RFC 3339 time for CreatedAt and
    UpdatedAt. Refuses a pair that already exists (`duplicate intention found: ...`)."""
    ixn = _decode_body(body)
    if ixn.get("ID"):
        raise IntentionError("ID must be empty when creating a new intention")
    _legacy_checks(ixn)
    destination = ixn["DestinationName"]
    previous = entries_by_dest.get(destination)
    if previous is not None:
        _check_legacy_allowed(previous)
        _refuse_duplicate(previous, ixn["SourceName"], new_id)
        updated = copy.deepcopy(dict(previous))
    else:
        updated = _new_entry(destination)
    updated["Sources"] = [*(updated.get("Sources") or []), _legacy_source(ixn, new_id, now, now)]
    return _finish(updated, legacy=True)


def _find_legacy_source(
    entries: Iterable[Mapping[str, Any]], intention_id: str
) -> tuple[Mapping[str, Any], int] | None:
    for entry in entries:
        for i, src in enumerate(entry.get("Sources") or []):
            if intention_id and src.get("LegacyID") == intention_id:
                return entry, i
    return None


def find_legacy(entries: Iterable[Mapping[str, Any]], intention_id: str) -> dict[str, Any] | None:
    """`GET /v1/connect/intentions/<id>`: the intention with that legacy ID, or None (Consul:
    404 `Intention not found`)."""
    found = _find_legacy_source(entries, intention_id)
    if found is None:
        return None
    entry, i = found
    return to_intention(entry, entry["Sources"][i])


def update_legacy(
    entries: Iterable[Mapping[str, Any]],
    intention_id: str,
    body: Mapping[str, Any],
    *,
    now: str,
) -> dict[str, Any]:
    """`PUT /v1/connect/intentions/<id>`: the entry holding that intention, updated. The
    destination cannot change; CreatedAt is kept and UpdatedAt becomes `now`."""
    found = _find_legacy_source(entries, intention_id)
    if found is None:
        raise IntentionError(f"Cannot modify non-existent intention: '{intention_id}'")
    entry, index = found
    ixn = _legacy_checks(_decode_body(body))
    if ixn["DestinationName"] != entry.get("Name"):
        raise IntentionError(
            "Cannot modify Destination partition/namespace/name for an intention once it exists."
        )
    _check_legacy_allowed(entry)
    _refuse_duplicate(entry, ixn["SourceName"], intention_id)
    old = entry["Sources"][index]
    created = old.get("LegacyCreateTime") or now
    updated = copy.deepcopy(dict(entry))
    updated["Sources"][index] = _legacy_source(ixn, intention_id, created, now)
    return _finish(updated, legacy=True)


def delete_legacy(
    entries: Iterable[Mapping[str, Any]], intention_id: str
) -> tuple[str, dict[str, Any] | None]:
    """`DELETE /v1/connect/intentions/<id>`: (destination, the entry without that intention),
    the entry being None when nothing is left (delete it)."""
    found = _find_legacy_source(entries, intention_id)
    if found is None:
        raise IntentionError(f"Cannot delete non-existent intention: '{intention_id}'")
    entry, index = found
    _check_legacy_allowed(entry)
    sources = [copy.deepcopy(s) for i, s in enumerate(entry["Sources"]) if i != index]
    if not sources:
        return entry["Name"], None
    return entry["Name"], _finish({**copy.deepcopy(dict(entry)), "Sources": sources}, legacy=True)
