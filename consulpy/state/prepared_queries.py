"""Prepared queries: definitions, validation, templates and name resolution (spec section 7).

Pure functions over the stored JSON shape (`ID`, `Name`, `Session`, `Token`, `Template`,
`Service`, `DNS`, `CreateIndex`, `ModifyIndex`), so the FSM command that stores them, the HTTP
API and the DNS `.query` lookup share one implementation (the table is
`prepared_query_table.py`, the endpoints `consulpy/server/endpoints/prepared_query.py`). Error
texts are Consul's (clients match on them).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consulpy.util.decode import ListOf, MapOf, Struct, decode_struct
from consulpy.util.durations import parse_duration

Row = dict[str, Any]
HIDDEN_TOKEN = "<hidden>"
TEMPLATE_TYPE = "name_prefix_match"
_INVALID = "Invalid prepared query: "
_MATCH = re.compile(r"^match\(\s*(\d+)\s*\)$")


class QueryError(ValueError):
    """A definition the server refuses (Consul answers these with 500 and the text)."""


# ----------------------------------------------------------------- validation
def validate(
    query: Row,
    *,
    creating: bool,
    check_node_meta: Callable[[dict[str, str]], object] | None = None,
) -> None:
    """The checks that need nothing but the definition (spec 7.3, in Consul's order).
    `check_node_meta` is the catalog's node-meta rule (raises ValueError), given by the
    caller so this module stays below the config layer."""
    if creating and query.get("ID"):
        raise QueryError("ID must be empty when creating a new prepared query")
    template = query.get("Template") or {}
    if not query.get("Name") and not template.get("Type") and not query.get("Session"):
        raise QueryError(_INVALID + "Must be bound to a session")
    if query.get("Token") == HIDDEN_TOKEN:
        raise QueryError(
            _INVALID + f"Bad Token '{HIDDEN_TOKEN}', it looks like a query definition with a "
            "redacted token was submitted"
        )
    service = query.get("Service") or {}
    if not service.get("Service"):
        raise QueryError(_INVALID + "Must provide a Service name to query")
    failover = service.get("Failover") or {}
    nearest = int(failover.get("NearestN") or 0)
    if nearest < 0:
        raise QueryError(_INVALID + f"Bad NearestN '{nearest}', must be >= 0")
    if failover.get("Targets") and (nearest != 0 or failover.get("Datacenters")):
        raise QueryError(_INVALID + "Targets cannot be populated with NearestN or Datacenters")
    node_meta = service.get("NodeMeta") or {}
    if node_meta and check_node_meta is not None:
        try:
            check_node_meta(node_meta)
        except ValueError as exc:
            raise QueryError(_INVALID + str(exc)) from exc
    ttl = (query.get("DNS") or {}).get("TTL") or ""
    if ttl:
        try:
            seconds = parse_duration(ttl)
        except ValueError as exc:
            raise QueryError(_INVALID + f"Bad DNS TTL '{ttl}': {exc}") from exc
        if seconds < 0:
            raise QueryError(_INVALID + f"Bad DNS TTL '{ttl}', must be >=0")


def check_against(query: Row, others: list[Row]) -> None:
    """The checks against the stored queries (`others` excludes the query being updated)."""
    name = (query.get("Name") or "").lower()
    if name:
        for other in others:
            if (other.get("Name") or "").lower() == name:
                raise QueryError(f"name '{query['Name']}' aliases an existing query name")
            if (other.get("ID") or "").lower() == name:
                raise QueryError(f"name '{query['Name']}' aliases an existing query ID")
    elif (query.get("Template") or {}).get("Type"):
        for other in others:
            if not other.get("Name") and (other.get("Template") or {}).get("Type"):
                raise QueryError("a query template with an empty name already exists")


# ------------------------------------------------------------------ templates
@dataclass(frozen=True)
class Template:
    """A compiled `name_prefix_match` template."""

    query: Row
    regexp: re.Pattern[str] | None

    def render(self, name: str) -> Row:
        """The query with every string in `Service` interpolated for the looked-up `name`."""
        prefix = self.query.get("Name") or ""
        variables = {
            "name.full": name,
            "name.prefix": prefix,
            "name.suffix": name[len(prefix) :] if name.startswith(prefix) else name,
            "agent.segment": "",
        }
        match = self.regexp.search(name) if self.regexp is not None else None
        out = copy.deepcopy(self.query)
        out["Service"] = _walk(out.get("Service") or {}, "", variables, match)
        if (self.query.get("Template") or {}).get("RemoveEmptyTags"):
            out["Service"]["Tags"] = [t for t in out["Service"].get("Tags") or [] if t]
        return out


def compile_template(query: Row) -> Template | None:
    """None for a static query; QueryError `failed compiling template: ...` otherwise."""
    template = query.get("Template") or {}
    kind = template.get("Type") or ""
    if not kind:
        return None
    if kind != TEMPLATE_TYPE:
        raise QueryError(f"failed compiling template: Bad Template.Type '{kind}'")
    regexp = None
    if template.get("Regexp"):
        try:
            regexp = re.compile(template["Regexp"])
        except re.error as exc:
            raise QueryError(f"failed compiling template: Bad Regexp: {exc}") from exc
    compiled = Template(query, regexp)
    compiled.render(query.get("Name") or "")  # a test render, as Consul does at write time
    return compiled


def _walk(value: Any, path: str, variables: dict[str, str], match: re.Match[str] | None) -> Any:
    if isinstance(value, str):
        return _interpolate(value, path, variables, match)
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", variables, match) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _walk(v, f"{path}.{k}", variables, match) for k, v in value.items()}
    return value


def _interpolate(
    text: str, path: str, variables: dict[str, str], match: re.Match[str] | None
) -> str:
    out: list[str] = []
    i = 0
    while True:
        start = text.find("${", i)
        if start < 0:
            out.append(text[i:])
            return "".join(out)
        end = text.find("}", start)
        if end < 0:
            raise QueryError(
                f"failed compiling template: Bad format '{text}' in Service{path}: "
                "unterminated interpolation"
            )
        out.append(text[i:start])
        expr = text[start + 2 : end].strip()
        number = _MATCH.match(expr)
        if number is not None:
            n = int(number.group(1))
            value = ""
            if match is not None and n <= (match.re.groups or 0):
                value = match.group(n) or ""
            out.append(value)
        elif expr in variables:
            out.append(variables[expr])
        else:
            raise QueryError(
                f"failed compiling template: Bad evaluation for '{text}' in Service{path}: "
                f"unknown variable accessed: {expr}"
            )
        i = end + 1


# ----------------------------------------------------------------- resolution
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def uuid_problem(text: str) -> str:
    """ "" for a well-formed UUID, else the text memdb's UUID index gives (Consul shows it)."""
    if len(text) != 36:
        return "UUID must be 36 characters"
    if not _UUID.match(text):
        return f"Invalid UUID: {text}"
    return ""


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def resolve(queries: list[Row], name: str) -> Row | None:
    """The (rendered) query `name` designates, or None (`Query not found`), by spec 7.4:
    ID, then exact name (any case), then the longest template prefix."""
    if not name:
        raise QueryError("Query not found")
    lowered = name.lower()
    if _is_uuid(name):
        for query in queries:
            if (query.get("ID") or "").lower() == lowered:
                if (query.get("Template") or {}).get("Type"):
                    raise QueryError(
                        "prepared query templates can only be resolved up by name, not by ID"
                    )
                return query
    for query in queries:
        if query.get("Name") and query["Name"].lower() == lowered:
            template = compile_template(query)
            return template.render(name) if template is not None else query
    best: Row | None = None
    for query in queries:
        if not (query.get("Template") or {}).get("Type"):
            continue
        prefix = (query.get("Name") or "").lower()
        if lowered.startswith(prefix) and (
            best is None or len(prefix) > len(best.get("Name") or "")
        ):
            best = query
    if best is None:
        return None
    template = compile_template(best)
    assert template is not None
    return template.render(name)


# ------------------------------------------------------------------- the shape
_TARGET = Struct(
    "QueryFailoverTarget",
    {"Peer": "string", "Datacenter": "string", "Namespace": "string", "Partition": "string"},
    strict=False,
)
_FAILOVER = Struct(
    "QueryFailoverOptions",
    {"NearestN": "int", "Datacenters": ListOf("string"), "Targets": ListOf(_TARGET)},
    strict=False,
)
_SERVICE = Struct(
    "ServiceQuery",
    {
        "Service": "string",
        "SamenessGroup": "string",
        "Failover": _FAILOVER,
        "OnlyPassing": "bool",
        "IgnoreCheckIDs": ListOf("string"),
        "Near": "string",
        "Tags": ListOf("string"),
        "NodeMeta": MapOf("string"),
        "ServiceMeta": MapOf("string"),
        "Peer": "string",
        "Connect": Struct("QueryConnect", {"Enabled": "bool"}, strict=False),
        "Namespace": "string",
        "Partition": "string",
    },
    strict=False,
)
# The body of POST/PUT /v1/query (Consul ignores unknown fields there).
DEFINITION = Struct(
    "PreparedQuery",
    {
        "ID": "string",
        "Name": "string",
        "Session": "string",
        "Token": "string",
        "Template": Struct(
            "QueryTemplateOptions",
            {"Type": "string", "Regexp": "string", "RemoveEmptyTags": "bool"},
            strict=False,
        ),
        "Service": _SERVICE,
        "DNS": Struct("QueryDNSOptions", {"TTL": "string"}, strict=False),
    },
    strict=False,
)


def normalize(body: Row) -> Row:
    """A decoded definition (DEFINITION's canonical names; DecodeError on a wrong type) in
    the full stored shape, with Consul's zero values (null for absent lists and maps)."""
    doc = decode_struct(body, DEFINITION)
    template = doc.get("Template") or {}
    service = doc.get("Service") or {}
    failover = service.get("Failover") or {}
    targets = failover.get("Targets")
    return {
        "ID": doc.get("ID") or "",
        "Name": doc.get("Name") or "",
        "Session": doc.get("Session") or "",
        "Token": doc.get("Token") or "",
        "Template": {
            "Type": template.get("Type") or "",
            "Regexp": template.get("Regexp") or "",
            "RemoveEmptyTags": bool(template.get("RemoveEmptyTags")),
        },
        "Service": {
            "Service": service.get("Service") or "",
            "Failover": {
                "NearestN": int(failover.get("NearestN") or 0),
                "Datacenters": failover.get("Datacenters"),
                "Targets": (
                    [
                        {"Peer": t.get("Peer") or "", "Datacenter": t.get("Datacenter") or ""}
                        for t in targets
                        if t is not None
                    ]
                    if targets is not None
                    else None
                ),
            },
            "OnlyPassing": bool(service.get("OnlyPassing")),
            "IgnoreCheckIDs": service.get("IgnoreCheckIDs"),
            "Near": service.get("Near") or "",
            "Tags": service.get("Tags"),
            "NodeMeta": service.get("NodeMeta"),
            "ServiceMeta": service.get("ServiceMeta"),
            "Peer": service.get("Peer") or "",
            "SamenessGroup": service.get("SamenessGroup") or "",
            "Connect": {"Enabled": bool((service.get("Connect") or {}).get("Enabled"))},
        },
        "DNS": {"TTL": (doc.get("DNS") or {}).get("TTL") or ""},
    }
