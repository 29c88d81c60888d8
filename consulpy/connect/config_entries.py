"""Config entries (`/v1/config`) as pure logic: decode a body, validate it per kind with
Consul's error texts, fill defaults, and check the discovery-chain graph rules.

    entry = normalize(body)          # raises EntryError; the canonical entry to store
    check_graph(entry, lookup, list_entries=...)   # raises GraphError (Consul answers 500)
    effective_protocol("web", lookup)              # "http", "tcp", ...

Why a decoder of our own: Consul decodes an entry with mapstructure, so keys match their field
names case-insensitively or through a snake_case alias (`path_prefix`), scalars are converted
weakly ("5" for 5, a single value for a one-element list), and every key that lands nowhere is
refused as `invalid config key "X"`. Users write entries by hand and with `consul config write`,
so we accept exactly that and answer with the same texts.

The canonical entry is what Consul's JSON encoder would print: PascalCase keys, empty optional
fields left out, the always-present ones (`Protocol`, `TransparentProxy: {}`, ...) filled, and
durations as Go strings where Consul prints strings. Everything is a plain dict/list/str/int/
float/bool/None, so it can be msgpack-encoded and stored as is. No I/O happens here.
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct as _binary
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consulpy.filter import FilterError, compile_filter
from consulpy.filter.regex import RegexError, compile_regex
from consulpy.util.durations import DurationError, duration_from_json, format_duration_ns
from consulpy.util.goquote import go_quote

PROXY_DEFAULTS = "proxy-defaults"
SERVICE_DEFAULTS = "service-defaults"
SERVICE_INTENTIONS = "service-intentions"
SERVICE_ROUTER = "service-router"
SERVICE_SPLITTER = "service-splitter"
SERVICE_RESOLVER = "service-resolver"
MESH = "mesh"
INGRESS_GATEWAY = "ingress-gateway"
TERMINATING_GATEWAY = "terminating-gateway"

KINDS: tuple[str, ...] = (
    PROXY_DEFAULTS,
    SERVICE_DEFAULTS,
    SERVICE_INTENTIONS,
    SERVICE_ROUTER,
    SERVICE_SPLITTER,
    SERVICE_RESOLVER,
    MESH,
    INGRESS_GATEWAY,
    TERMINATING_GATEWAY,
)

WILDCARD = "*"
DEFAULT_NAMESPACE = "default"
DEFAULT_PROTOCOL = "tcp"
HTTP_LIKE_PROTOCOLS = frozenset({"http", "http2", "grpc"})
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}
)
META_MAX_PAIRS = 64
META_KEY_MAX = 128
META_VALUE_MAX = 512

# (kind, name) -> the stored entry, or None.
Lookup = Callable[[str, str], dict[str, Any] | None]
# kind -> every stored entry of that kind.
ListEntries = Callable[[str], Iterable[dict[str, Any]]]


class EntryError(ValueError):
    """A config entry body that cannot be stored. `str(err)` is Consul's text.

    `decoding` is True when Consul would fail while decoding the body (HTTP 400 with
    `Request decoding failed: <text>`); otherwise the body decoded but failed the kind's
    validation, which Consul reports from its RPC layer."""

    def __init__(self, text: str, *, decoding: bool = False) -> None:
        super().__init__(text)
        self.decoding = decoding


class GraphError(ValueError):
    """The write is valid on its own but breaks a discovery chain; Consul answers HTTP 500."""


# --------------------------------------------------------------------------------------------
# Small Go-isms used in error texts.


def multierror(errors: list[str]) -> str:
    """hashicorp/go-multierror's text for a list of errors (Consul returns these as is)."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def _go_kind(value: object) -> str:
    """The Go type a JSON value decodes to, as mapstructure names it in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>" if value is None else type(value).__name__


def _snake(name: str) -> str:
    """`PathPrefix` -> `path_prefix`, `ExternalSNI` -> `external_sni`, `TLSMinVersion` ->
    `tls_min_version`: the alias Consul declares for a multi-word field."""
    out = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", out)
    return out.lower()


# --------------------------------------------------------------------------------------------
# The decoder: a schema per kind, mapstructure-like key matching and weak typing.


class _Ctx:
    """Collects what one decode found: unknown keys (strict mode) and type errors."""

    __slots__ = ("errors", "strict", "unused")

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.unused: list[str] = []
        self.errors: list[str] = []


class _Type(ABC):
    """One field type: `decode` turns JSON input into our value, `emit` into canonical JSON."""

    @abstractmethod
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        """Our value for a JSON input; problems go to ctx.errors."""

    def emit(self, value: Any) -> Any:
        return value

    def zero(self) -> Any:
        return None


class _Str(_Type):
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else repr(value)
        ctx.errors.append(
            f"'{path}' expected type 'string', got unconvertible type '{_go_kind(value)}'"
        )
        return ""

    def zero(self) -> Any:
        return ""


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"", "0", "f", "F", "FALSE", "false", "False"}


class _Bool(_Type):
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if isinstance(value, bool):
            return value
        if value is None:
            return False
        if isinstance(value, int | float):
            return value != 0
        if isinstance(value, str) and (value in _TRUE or value in _FALSE):
            return value in _TRUE
        if isinstance(value, str):
            ctx.errors.append(
                f"cannot parse '{path}' as bool: strconv.ParseBool: parsing "
                f"{go_quote(value)}: invalid syntax"
            )
            return False
        ctx.errors.append(
            f"'{path}' expected type 'bool', got unconvertible type '{_go_kind(value)}'"
        )
        return False

    def zero(self) -> Any:
        return False


_INT_MIN, _INT_MAX, _UINT_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


class _Int(_Type):
    def __init__(self, unsigned: bool = False) -> None:
        self.unsigned = unsigned

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return 0
        if isinstance(value, bool):
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                ctx.errors.append(f"cannot parse '{path}' as int: {value!r} is not a number")
                return 0
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value, 0) if value.strip() else 0
            except ValueError:
                try:
                    number = int(value)
                except ValueError:
                    kind = "uint" if self.unsigned else "int"
                    fn = "ParseUint" if self.unsigned else "ParseInt"
                    ctx.errors.append(
                        f"cannot parse '{path}' as {kind}: strconv.{fn}: parsing "
                        f"{go_quote(value)}: invalid syntax"
                    )
                    return 0
        else:
            ctx.errors.append(
                f"'{path}' expected type 'int', got unconvertible type '{_go_kind(value)}'"
            )
            return 0
        if self.unsigned and number < 0:
            ctx.errors.append(f"cannot parse '{path}', {number} overflows uint")
            return 0
        if not _INT_MIN <= number <= (_UINT_MAX if self.unsigned else _INT_MAX):
            kind = "uint" if self.unsigned else "int"
            ctx.errors.append(f"cannot parse '{path}', {number} overflows {kind}")
            return 0
        return number

    def zero(self) -> Any:
        return 0


class _Float(_Type):
    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return 0.0
        if isinstance(value, bool | int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
            ctx.errors.append(
                f"cannot parse '{path}' as float: strconv.ParseFloat: parsing "
                f"{go_quote(value)}: invalid syntax"
            )
            return 0.0
        ctx.errors.append(
            f"'{path}' expected type 'float32', got unconvertible type '{_go_kind(value)}'"
        )
        return 0.0

    def emit(self, value: Any) -> Any:
        # Go prints 50 for float32(50); keep integral weights integral in JSON too.
        return int(value) if float(value).is_integer() else value

    def zero(self) -> Any:
        return 0


class _Duration(_Type):
    """A Go time.Duration held as integer nanoseconds. `as_string`: Consul prints this one
    as a Go duration string (it has a custom marshaller); otherwise as a nanosecond count."""

    def __init__(self, as_string: bool = True) -> None:
        self.as_string = as_string

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None or value == "":
            return 0
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)  # reported below as an invalid duration
        try:
            ns = duration_from_json(value)
        except DurationError as err:
            ctx.errors.append(f"error decoding '{path}': {err}")
            return 0
        if not _INT_MIN <= ns <= _INT_MAX:
            ctx.errors.append(f"error decoding '{path}': time: invalid duration {value!r}")
            return 0
        return ns

    def emit(self, value: Any) -> Any:
        return format_duration_ns(value) if self.as_string else value

    def zero(self) -> Any:
        return "" if self.as_string else 0


class _Time(_Type):
    """An RFC 3339 timestamp, kept as the string (the legacy intention times)."""

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
                return value
            except ValueError:
                pass
            ctx.errors.append(
                f"error decoding '{path}': parsing time {go_quote(value)} as "
                f'"2006-01-02T15:04:05Z07:00": cannot parse'
            )
            return None
        ctx.errors.append(
            f"'{path}' expected type 'time.Time', got unconvertible type '{_go_kind(value)}'"
        )
        return None


class _AnyMap(_Type):
    """A free-form map (`proxy-defaults` Config, extension arguments): kept as given."""

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):
            return _plain(value)
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, dict) for v in value):
            return _plain(value[0]) if value else {}
        ctx.errors.append(f"'{path}' expected a map, got '{_go_kind(value)}'")
        return None


def _plain(value: Any) -> Any:
    """A deep copy made of JSON types only (tuples become lists, keys become strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _List(_Type):
    def __init__(self, item: _Type) -> None:
        self.item = item

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            if isinstance(value, dict) and not value:
                return []
            value = [value]  # weak typing: a single value for a one-element list
        return [self.item.decode(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]

    def emit(self, value: Any) -> Any:
        return None if value is None else [self.item.emit(v) for v in value]


class _Map(_Type):
    """A map from string keys to values of one type (`Subsets`, `Failover`, `Meta`)."""

    def __init__(self, item: _Type) -> None:
        self.item = item

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, dict) for v in value):
            value = value[0] if value else {}
        if not isinstance(value, dict):
            ctx.errors.append(f"'{path}' expected a map, got '{_go_kind(value)}'")
            return None
        return {str(k): self.item.decode(v, f"{path}[{k}]", ctx) for k, v in value.items()}

    def emit(self, value: Any) -> Any:
        return None if value is None else {k: self.item.emit(v) for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: _Type
    always: bool  # printed even when empty (no `omitempty` in Consul's struct, or a struct)
    aliases: tuple[str, ...]


def F(name: str, type_: _Type, *, always: bool = False, alias: str = "") -> _Field:
    aliases = {_snake(name)}
    if alias:
        aliases.add(alias)
    aliases.discard(name)
    return _Field(name, type_, always, tuple(sorted(aliases)))


# Keys Consul tolerates on any entry without a field to land in.
_IGNORED_KEYS = frozenset({"Kind", "kind", "CreateIndex", "ModifyIndex", "Hash"})


class _Obj(_Type):
    """A Go struct: named fields, keys matched exactly, by alias, or case-insensitively."""

    def __init__(self, *fields: _Field) -> None:
        self.fields = fields
        self.by_key: dict[str, _Field] = {}
        for f in fields:
            self.by_key[f.name.lower()] = f
            for alias in f.aliases:
                self.by_key.setdefault(alias.lower(), f)

    def decode(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return None
        if isinstance(value, list) and len(value) <= 1 and all(isinstance(v, dict) for v in value):
            value = value[0] if value else {}  # HCL's one-element block list
        if not isinstance(value, dict):
            ctx.errors.append(f"'{path or '<root>'}' expected a map, got '{_go_kind(value)}'")
            return None
        out: dict[str, Any] = {}
        exact: set[str] = set()
        for key, raw in value.items():
            key = str(key)
            field = self.by_key.get(key.lower())
            where = f"{path}.{key}" if path else key
            if field is None:
                if not path and key in _IGNORED_KEYS:
                    continue
                if ctx.strict:
                    ctx.unused.append(where)
                continue
            if field.name in exact:
                continue  # the exactly named key wins over an alias
            if key == field.name:
                exact.add(field.name)
            sub = f"{path}.{field.name}" if path else field.name
            out[field.name] = field.type.decode(raw, sub, ctx)
        return out

    def emit(self, value: Any) -> Any:
        if value is None:
            return None
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name in value:
                v = value[f.name]
                if f.always or not _is_empty(f.type, v):
                    out[f.name] = f.type.emit(v) if v is not None else f.type.zero()
            elif f.always:
                out[f.name] = self.zero_of(f)
        return out

    @staticmethod
    def zero_of(f: _Field) -> Any:
        if isinstance(f.type, _Obj):
            return f.type.emit({})
        return f.type.zero()

    def zero(self) -> Any:
        return self.emit({})


def _is_empty(type_: _Type, value: Any) -> bool:
    """Go's `omitempty`: zero scalars, nil or empty lists and maps. A struct is only left out
    when it is absent (a nil pointer); one given as {} is printed."""
    if value is None:
        return True
    if isinstance(type_, _Obj):
        return False
    return value is False or value == 0 or value == "" or value == [] or value == {}


STR = _Str()
BOOL = _Bool()
INT = _Int()
UINT = _Int(unsigned=True)
FLOAT = _Float()
DURATION = _Duration(as_string=True)
DURATION_NS = _Duration(as_string=False)
TIME = _Time()
ANY_MAP = _AnyMap()
STR_LIST = _List(STR)
UINT_LIST = _List(UINT)
STR_MAP = _Map(STR)


def _name_fields() -> tuple[_Field, _Field]:
    return F("Kind", STR, always=True), F("Name", STR, always=True)


# --------------------------------------------------------------------------------------------
# Schemas (field names and JSON shape as Consul prints them).

_MESH_GATEWAY = _Obj(F("Mode", STR))
_TPROXY = _Obj(F("OutboundListenerPort", INT), F("DialedDirectly", BOOL))
_EXPOSE = _Obj(
    F("Checks", BOOL),
    F(
        "Paths",
        _List(
            _Obj(
                F("ListenerPort", INT),
                F("Path", STR),
                F("LocalPathPort", INT),
                F("Protocol", STR),
                F("ParsedFromCheck", BOOL),
            )
        ),
    ),
)
_ACCESS_LOGS = _Obj(
    F("Enabled", BOOL),
    F("DisableListenerLogs", BOOL),
    F("Type", STR),
    F("Path", STR),
    F("JSONFormat", STR),
    F("TextFormat", STR),
)
_ENVOY_EXTENSIONS = _List(
    _Obj(
        F("Name", STR, always=True),
        F("Required", BOOL, always=True),
        F("Arguments", ANY_MAP, always=True),
        F("ConsulVersion", STR, always=True),
        F("EnvoyVersion", STR, always=True),
    )
)
_PASSIVE_HEALTH_CHECK = _Obj(
    F("Interval", DURATION_NS),
    F("MaxFailures", UINT),
    F("EnforcingConsecutive5xx", UINT, alias="enforcing_consecutive_5xx"),
    F("MaxEjectionPercent", UINT),
    F("BaseEjectionTime", DURATION_NS),
)
_LIMITS = _Obj(
    F("MaxConnections", INT), F("MaxPendingRequests", INT), F("MaxConcurrentRequests", INT)
)
_UPSTREAM_CONFIG = _Obj(
    F("Name", STR),
    F("Peer", STR),
    F("EnvoyListenerJSON", STR),
    F("EnvoyClusterJSON", STR),
    F("Protocol", STR),
    F("ConnectTimeoutMs", INT),
    F("Limits", _LIMITS),
    F("PassiveHealthCheck", _PASSIVE_HEALTH_CHECK),
    F("MeshGateway", _MESH_GATEWAY),
    F("BalanceOutboundConnections", STR),
)
_HEADER_MODIFIERS = _Obj(F("Add", STR_MAP), F("Set", STR_MAP), F("Remove", STR_LIST))

PROXY_DEFAULTS_SCHEMA = _Obj(
    *_name_fields(),
    F("Config", ANY_MAP, always=True),
    F("Mode", STR),
    F("TransparentProxy", _TPROXY, always=True),
    F("MutualTLSMode", STR),
    F("MeshGateway", _MESH_GATEWAY, always=True),
    F("Expose", _EXPOSE, always=True),
    F("AccessLogs", _ACCESS_LOGS),
    F("EnvoyExtensions", _ENVOY_EXTENSIONS),
    F("Meta", STR_MAP),
)

SERVICE_DEFAULTS_SCHEMA = _Obj(
    *_name_fields(),
    F("Protocol", STR, always=True),
    F("Mode", STR),
    F("TransparentProxy", _TPROXY, always=True),
    F("MutualTLSMode", STR),
    F("MeshGateway", _MESH_GATEWAY, always=True),
    F("Expose", _EXPOSE, always=True),
    F("ExternalSNI", STR),
    F(
        "UpstreamConfig",
        _Obj(F("Overrides", _List(_UPSTREAM_CONFIG)), F("Defaults", _UPSTREAM_CONFIG)),
    ),
    F("Destination", _Obj(F("Addresses", STR_LIST), F("Port", INT))),
    F("MaxInboundConnections", INT),
    F("LocalConnectTimeoutMs", INT),
    F("LocalRequestTimeoutMs", INT),
    F("BalanceInboundConnections", STR),
    F("EnvoyExtensions", _ENVOY_EXTENSIONS),
    F("Meta", STR_MAP),
)

_JWT_REQUIREMENT = _Obj(
    F(
        "Providers",
        _List(
            _Obj(
                F("Name", STR),
                F("VerifyClaims", _List(_Obj(F("Path", STR_LIST), F("Value", STR)))),
            )
        ),
    )
)
# One header condition, shared by L7 intention permissions and service-router matches.
_HEADER_MATCH = _Obj(
    F("Name", STR, always=True),
    F("Present", BOOL),
    F("Exact", STR),
    F("Prefix", STR),
    F("Suffix", STR),
    F("Regex", STR),
    F("Invert", BOOL),
)
_INTENTION_HTTP = _Obj(
    F("PathExact", STR),
    F("PathPrefix", STR),
    F("PathRegex", STR),
    F("Header", _List(_HEADER_MATCH)),
    F("Methods", STR_LIST),
)
INTENTION_PERMISSION_SCHEMA = _Obj(
    F("Action", STR, always=True), F("HTTP", _INTENTION_HTTP), F("JWT", _JWT_REQUIREMENT)
)
INTENTION_SOURCE_SCHEMA = _Obj(
    F("Name", STR, always=True),
    F("Action", STR),
    F("Permissions", _List(INTENTION_PERMISSION_SCHEMA)),
    F("Precedence", INT, always=True),
    F("LegacyID", STR, alias="legacy_id"),
    F("Type", STR, always=True),
    F("Description", STR),
    F("LegacyMeta", STR_MAP),
    F("LegacyCreateTime", TIME),
    F("LegacyUpdateTime", TIME),
    F("Peer", STR),
    F("SamenessGroup", STR),
)
# The body of the intentions API endpoints (Consul's structs.Intention), decoded leniently.
INTENTION_BODY_SCHEMA = _Obj(
    F("ID", STR),
    F("Description", STR),
    F("SourcePeer", STR),
    F("SourceSamenessGroup", STR),
    F("SourcePartition", STR),
    F("SourceNS", STR),
    F("SourceName", STR),
    F("DestinationPartition", STR),
    F("DestinationNS", STR),
    F("DestinationName", STR),
    F("SourceType", STR),
    F("Action", STR),
    F("Permissions", _List(INTENTION_PERMISSION_SCHEMA)),
    F("Meta", STR_MAP),
)
SERVICE_INTENTIONS_SCHEMA = _Obj(
    *_name_fields(),
    F("Sources", _List(INTENTION_SOURCE_SCHEMA), always=True),
    F("JWT", _JWT_REQUIREMENT),
    F("Meta", STR_MAP),
)

_ROUTE_HTTP_MATCH = _Obj(
    F("PathExact", STR),
    F("PathPrefix", STR),
    F("PathRegex", STR),
    F("Header", _List(_HEADER_MATCH)),
    F(
        "QueryParam",
        _List(
            _Obj(
                F("Name", STR, always=True),
                F("Present", BOOL),
                F("Exact", STR),
                F("Regex", STR),
            )
        ),
    ),
    F("Methods", STR_LIST),
)
_ROUTE_DESTINATION = _Obj(
    F("Service", STR),
    F("ServiceSubset", STR),
    F("Namespace", STR),
    F("Partition", STR),
    F("PrefixRewrite", STR),
    F("RequestTimeout", DURATION),
    F("IdleTimeout", DURATION),
    F("NumRetries", UINT),
    F("RetryOnConnectFailure", BOOL),
    F("RetryOn", STR_LIST),
    F("RetryOnStatusCodes", UINT_LIST),
    F("RequestHeaders", _HEADER_MODIFIERS),
    F("ResponseHeaders", _HEADER_MODIFIERS),
)
SERVICE_ROUTER_SCHEMA = _Obj(
    *_name_fields(),
    F(
        "Routes",
        _List(
            _Obj(
                F("Match", _Obj(F("HTTP", _ROUTE_HTTP_MATCH))), F("Destination", _ROUTE_DESTINATION)
            )
        ),
        always=True,
    ),
    F("Meta", STR_MAP),
)

SERVICE_SPLITTER_SCHEMA = _Obj(
    *_name_fields(),
    F(
        "Splits",
        _List(
            _Obj(
                F("Weight", FLOAT, always=True),
                F("Service", STR),
                F("ServiceSubset", STR),
                F("Namespace", STR),
                F("Partition", STR),
                F("RequestHeaders", _HEADER_MODIFIERS),
                F("ResponseHeaders", _HEADER_MODIFIERS),
            )
        ),
        always=True,
    ),
    F("Meta", STR_MAP),
)

_TARGET_FIELDS = (
    F("Service", STR),
    F("ServiceSubset", STR),
    F("Namespace", STR),
    F("Partition", STR),
    F("Datacenter", STR),
    F("Peer", STR),
)
SERVICE_RESOLVER_SCHEMA = _Obj(
    *_name_fields(),
    F("DefaultSubset", STR),
    F("Subsets", _Map(_Obj(F("Filter", STR), F("OnlyPassing", BOOL)))),
    F("Redirect", _Obj(*_TARGET_FIELDS)),
    F(
        "Failover",
        _Map(
            _Obj(
                F("Service", STR),
                F("ServiceSubset", STR),
                F("Namespace", STR),
                F("Datacenters", STR_LIST),
                F("Targets", _List(_Obj(*_TARGET_FIELDS))),
                F("Policy", _Obj(F("Mode", STR), F("Regions", STR_LIST))),
            )
        ),
    ),
    F("ConnectTimeout", DURATION),
    F("RequestTimeout", DURATION),
    F(
        "LoadBalancer",
        _Obj(
            F("Policy", STR),
            F("RingHashConfig", _Obj(F("MinimumRingSize", UINT), F("MaximumRingSize", UINT))),
            F("LeastRequestConfig", _Obj(F("ChoiceCount", UINT))),
            F(
                "HashPolicies",
                _List(
                    _Obj(
                        F("Field", STR),
                        F("FieldValue", STR),
                        F(
                            "CookieConfig",
                            _Obj(F("Session", BOOL), F("TTL", DURATION_NS), F("Path", STR)),
                        ),
                        F("SourceIP", BOOL, alias="source_ip"),
                        F("Terminal", BOOL),
                    )
                ),
            ),
        ),
    ),
    F("Meta", STR_MAP),
)

_MESH_DIRECTIONAL_TLS = _Obj(
    F("TLSMinVersion", STR), F("TLSMaxVersion", STR), F("CipherSuites", STR_LIST)
)
MESH_SCHEMA = _Obj(
    *_name_fields(),
    F("TransparentProxy", _Obj(F("MeshDestinationsOnly", BOOL, always=True)), always=True),
    F("AllowEnablingPermissiveMutualTLS", BOOL),
    F("ValidateClusters", BOOL),
    F("TLS", _Obj(F("Incoming", _MESH_DIRECTIONAL_TLS), F("Outgoing", _MESH_DIRECTIONAL_TLS))),
    F(
        "HTTP",
        _Obj(F("SanitizeXForwardedClientCert", BOOL, always=True), F("Incoming", ANY_MAP)),
    ),
    F("Peering", _Obj(F("PeerThroughMeshGateways", BOOL, always=True))),
    F("Meta", STR_MAP),
)

_GATEWAY_SDS = _Obj(F("ClusterName", STR), F("CertResource", STR))
_GATEWAY_TLS = _Obj(
    F("Enabled", BOOL, always=True),
    F("SDS", _GATEWAY_SDS),
    F("TLSMinVersion", STR),
    F("TLSMaxVersion", STR),
    F("CipherSuites", STR_LIST),
)
INGRESS_GATEWAY_SCHEMA = _Obj(
    *_name_fields(),
    F("TLS", _GATEWAY_TLS, always=True),
    F(
        "Listeners",
        _List(
            _Obj(
                F("Port", INT, always=True),
                F("Protocol", STR, always=True),
                F("TLS", _GATEWAY_TLS),
                F(
                    "Services",
                    _List(
                        _Obj(
                            F("Name", STR, always=True),
                            F("Hosts", STR_LIST, always=True),
                            F("TLS", _Obj(F("SDS", _GATEWAY_SDS))),
                            F("RequestHeaders", _HEADER_MODIFIERS),
                            F("ResponseHeaders", _HEADER_MODIFIERS),
                            F("MaxConnections", UINT),
                            F("MaxPendingRequests", UINT),
                            F("MaxConcurrentRequests", UINT),
                            F("PassiveHealthCheck", _PASSIVE_HEALTH_CHECK),
                            F("Meta", STR_MAP),
                        )
                    ),
                    always=True,
                ),
            )
        ),
        always=True,
    ),
    F(
        "Defaults",
        _Obj(
            F("MaxConnections", UINT, always=True),
            F("MaxPendingRequests", UINT, always=True),
            F("MaxConcurrentRequests", UINT, always=True),
            F("PassiveHealthCheck", _PASSIVE_HEALTH_CHECK),
        ),
    ),
    F("Meta", STR_MAP),
)

TERMINATING_GATEWAY_SCHEMA = _Obj(
    *_name_fields(),
    F(
        "Services",
        _List(
            _Obj(
                F("Name", STR),
                F("CAFile", STR, alias="ca_file"),
                F("CertFile", STR),
                F("KeyFile", STR),
                F("SNI", STR),
            )
        ),
        always=True,
    ),
    F("Meta", STR_MAP),
)


def decode(schema: _Obj, body: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Decode `body` against `schema` into our field values. Raises EntryError(decoding=True)
    with mapstructure's or Consul's text. With strict=False unknown keys are ignored, as Go's
    encoding/json does for the intention endpoints' bodies."""
    ctx = _Ctx(strict)
    out = schema.decode(dict(body), "", ctx)
    if ctx.errors:
        points = "\n".join(sorted(f"* {e}" for e in ctx.errors))
        raise EntryError(f"{len(ctx.errors)} error(s) decoding:\n\n{points}", decoding=True)
    if ctx.unused:
        raise EntryError(multierror([_unused_key_text(k) for k in ctx.unused]), decoding=True)
    return out or {}


def _unused_key_text(key: str) -> str:
    lower = key.lower()
    if lower.endswith("namespace"):
        return f"invalid config key {go_quote(key)}, namespaces are a consul enterprise feature"
    if lower.endswith("partition"):
        return f"invalid config key {go_quote(key)}, partitions are a consul enterprise feature"
    return f"invalid config key {go_quote(key)}"


# --------------------------------------------------------------------------------------------
# Shared validation helpers.


def validate_meta(meta: Mapping[str, str] | None, prefix: str = "") -> list[str]:
    """Consul's limits on user metadata, as a list of error texts."""
    errors: list[str] = []
    meta = meta or {}
    if len(meta) > META_MAX_PAIRS:
        errors.append(f"{prefix}Meta exceeds maximum element count {META_MAX_PAIRS}")
    for key, value in meta.items():
        if len(key) > META_KEY_MAX:
            errors.append(f"{prefix}Meta key {go_quote(key)} exceeds maximum length {META_KEY_MAX}")
        if len(value) > META_VALUE_MAX:
            errors.append(
                f"{prefix}Meta value for key {go_quote(key)} exceeds maximum length "
                f"{META_VALUE_MAX}"
            )
    return errors


def _check_meta(entry: Mapping[str, Any]) -> None:
    errors = validate_meta(entry.get("Meta"))
    if errors:
        raise EntryError(multierror(errors))


def _require_name(entry: Mapping[str, Any]) -> None:
    if not entry.get("Name"):
        raise EntryError("Name is required")


def is_http_like(protocol: str) -> bool:
    return protocol.lower() in HTTP_LIKE_PROTOCOLS


# --------------------------------------------------------------------------------------------
# proxy-defaults, service-defaults, mesh


def _fixed_name(entry: dict[str, Any], name: str) -> None:
    given = entry.get("Name", "")
    if given and given != name:
        raise EntryError(f"invalid name ({go_quote(given)}), only {go_quote(name)} is supported")
    entry["Name"] = name


def _normalize_proxy_defaults(entry: dict[str, Any]) -> None:
    _fixed_name(entry, "global")


def _validate_proxy_defaults(entry: dict[str, Any]) -> None:
    _check_meta(entry)


def _normalize_mesh(entry: dict[str, Any]) -> None:
    _fixed_name(entry, "mesh")


def _validate_mesh(entry: dict[str, Any]) -> None:
    _check_meta(entry)


def _normalize_upstream(cfg: dict[str, Any]) -> None:
    if "Protocol" in cfg:
        cfg["Protocol"] = cfg["Protocol"].lower()
    if cfg.get("ConnectTimeoutMs", 0) < 0:
        cfg["ConnectTimeoutMs"] = 0


def _normalize_service_defaults(entry: dict[str, Any]) -> None:
    entry["Protocol"] = entry.get("Protocol", "").lower()
    upstream = entry.get("UpstreamConfig") or {}
    for override in upstream.get("Overrides") or []:
        _normalize_upstream(override)
    if upstream.get("Defaults") is not None:
        _normalize_upstream(upstream["Defaults"])


def _upstream_errors(cfg: Mapping[str, Any], *, named: bool) -> list[str]:
    if named:
        if not cfg.get("Name"):
            return ["Name is required"]
        if cfg["Name"] == WILDCARD:
            return ["Wildcard name is not supported"]
    elif cfg.get("Name"):
        return ["Name must be empty"]
    errors: list[str] = []
    phc = cfg.get("PassiveHealthCheck") or {}
    if phc.get("Interval", 0) < 0:
        errors.append("passive health check interval cannot be negative")
    limits = cfg.get("Limits") or {}
    for key, text in (
        ("MaxConnections", "max connections"),
        ("MaxPendingRequests", "max pending requests"),
        ("MaxConcurrentRequests", "max concurrent requests"),
    ):
        if limits.get(key, 0) < 0:
            errors.append(f"{text} cannot be negative")
            break
    balance = cfg.get("BalanceOutboundConnections", "")
    if balance not in ("", "exact_balance"):
        errors.append(f"invalid value for balance_outbound_connections: {balance}")
    return errors


_DNS_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def _is_domain_name(name: str) -> bool:
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > 253:
        return False
    return all(_DNS_LABEL.match(label) for label in name.split("."))


def _validate_service_defaults(entry: dict[str, Any]) -> None:
    _require_name(entry)
    if entry["Name"] == WILDCARD:
        raise EntryError("service-defaults name must be the name of a service, and not a wildcard")
    errors = validate_meta(entry.get("Meta"))
    balance = entry.get("BalanceInboundConnections", "")
    if balance not in ("", "exact_balance"):
        errors.append(f"invalid value for balance_inbound_connections: {balance}")
    upstream = entry.get("UpstreamConfig")
    destination = entry.get("Destination")
    if upstream is not None and destination is not None:
        errors.append("UpstreamConfig and Destination are mutually exclusive for service defaults")
        raise EntryError(multierror(errors))
    if upstream is not None:
        for override in upstream.get("Overrides") or []:
            errors.extend(
                f"error in upstream override for {override.get('Name', '')}: {e}"
                for e in _upstream_errors(override, named=True)
            )
        if upstream.get("Defaults") is not None:
            errors.extend(
                f"error in upstream defaults: {e}"
                for e in _upstream_errors(upstream["Defaults"], named=False)
            )
    if destination is not None:
        addresses = destination.get("Addresses") or []
        if not addresses:
            errors.append("Destination must contain at least one valid address")
        seen: set[str] = set()
        for address in addresses:
            if address in seen:
                errors.append(f"Duplicate address '{address}' is not allowed")
                continue
            seen.add(address)
            try:
                ipaddress.ip_address(address)
            except ValueError:
                if "*" in address or not _is_domain_name(address):
                    errors.append(
                        f"Destination address '{address}' is invalid Could not validate "
                        f"address {address} as an IP or Hostname"
                    )
        port = destination.get("Port", 0)
        if not 1 <= port <= 65535:
            errors.append(f"Invalid Port number {port}")
    if errors:
        raise EntryError(multierror(errors))


# --------------------------------------------------------------------------------------------
# service-intentions (the intentions API in intentions.py is a view over these entries)


def intention_count_exact(namespace: str, name: str) -> int:
    """How many of (namespace, name) are exact: `*/*` -> 0, `ns/*` -> 1, `ns/name` -> 2."""
    if namespace == WILDCARD:
        return 0
    if name == WILDCARD:
        return 1
    return 2


def intention_precedence(
    source_name: str,
    dest_name: str,
    source_ns: str = DEFAULT_NAMESPACE,
    dest_ns: str = DEFAULT_NAMESPACE,
) -> int:
    """Consul's precedence: 9 for exact -> exact down to 1 for */* -> */*. The destination
    picks the band (9, 6, 3), each wildcard on the source side costs one."""
    band = {2: 9, 1: 6, 0: 3}[intention_count_exact(dest_ns, dest_name)]
    return band - (2 - intention_count_exact(source_ns, source_name))


def wildcard_error(name: str, namespace: str = DEFAULT_NAMESPACE) -> str | None:
    """Consul's rule for `*`: only a whole value, and no exact name after a wildcard
    namespace. Returns the error text (without a field prefix) or None."""
    if namespace != WILDCARD and WILDCARD in namespace:
        return "Namespace: wildcard character '*' cannot be used with partial values"
    if name != WILDCARD:
        if WILDCARD in name:
            return "Name: wildcard character '*' cannot be used with partial values"
        if namespace == WILDCARD:
            return "Name: exact value cannot follow wildcard namespace"
    return None


def normalize_intention_source(src: dict[str, Any], destination: str, *, legacy: bool) -> None:
    """One decoded Sources[] element, normalized in place the way Consul saves it."""
    if not src.get("Type"):
        src["Type"] = "consul"
    src["Precedence"] = intention_precedence(src.get("Name", ""), destination)
    if not legacy:
        # Legacy fields are cleared, except LegacyMeta, which validation refuses so that a
        # user does not silently lose it.
        for key in ("LegacyID", "LegacyCreateTime", "LegacyUpdateTime"):
            src.pop(key, None)
    for perm in src.get("Permissions") or []:
        http = perm.get("HTTP")
        if http and http.get("Methods"):
            http["Methods"] = [m.upper() for m in http["Methods"]]


def _regex_error(pattern: str) -> str | None:
    try:
        compile_regex(pattern)
    except RegexError as err:
        return str(err)
    return None


def validate_intention_source(
    i: int, src: Mapping[str, Any], *, dest_is_wild: bool, legacy: bool
) -> None:
    """Consul's checks on Sources[i] (everything but the duplicate-name rule)."""
    name = src.get("Name", "")
    if not name:
        raise EntryError(f"Sources[{i}].Name is required")
    if src.get("SamenessGroup"):
        raise EntryError(
            f"Sources[{i}].SamenessGroup: Sameness groups are a Consul Enterprise feature. "
        )
    problem = wildcard_error(name)
    if problem is None and WILDCARD in src.get("Peer", ""):
        problem = "Peer: cannot use wildcard '*' in peer"
    if problem is not None:
        raise EntryError(f"Sources[{i}].{problem}")
    if len(src.get("Description", "")) > META_VALUE_MAX:
        raise EntryError(f"Sources[{i}].Description exceeds maximum length {META_VALUE_MAX}")
    if legacy:
        if src.get("Peer"):
            raise EntryError(f"Sources[{i}].Peer cannot be set by legacy intentions")
        errors = validate_meta(src.get("LegacyMeta"), prefix=f"Sources[{i}].")
        if errors:
            raise EntryError(errors[0])
        if not src.get("LegacyCreateTime"):
            raise EntryError(f"Sources[{i}].LegacyCreateTime must be set")
        if not src.get("LegacyUpdateTime"):
            raise EntryError(f"Sources[{i}].LegacyUpdateTime must be set")
        if not src.get("LegacyID"):
            raise EntryError(f"Sources[{i}].LegacyID must be set")
    else:
        if src.get("LegacyMeta"):
            raise EntryError(f"Sources[{i}].LegacyMeta must be omitted")
        for key in ("LegacyCreateTime", "LegacyUpdateTime", "LegacyID"):
            if src.get(key):
                raise EntryError(f"Sources[{i}].{key} must be omitted")
    permissions = src.get("Permissions") or []
    action = src.get("Action", "")
    if (legacy or not permissions) and action not in ("allow", "deny"):
        raise EntryError(f"Sources[{i}].Action must be set to 'allow' or 'deny'")
    if permissions and action:
        raise EntryError(f"Sources[{i}].Action must be omitted if Permissions are specified")
    if dest_is_wild and permissions:
        raise EntryError(
            f"Sources[{i}].Permissions cannot be specified on intentions with wildcarded "
            "destinations"
        )
    if src.get("Type") != "consul":
        raise EntryError(f"Sources[{i}].Type must be set to 'consul'")
    for j, perm in enumerate(permissions):
        _validate_permission(i, j, perm)


def _validate_permission(i: int, j: int, perm: Mapping[str, Any]) -> None:
    if perm.get("Action") not in ("allow", "deny"):
        raise EntryError(f"Sources[{i}].Permissions[{j}].Action must be set to 'allow' or 'deny'")
    prefix = f"Sources[{i}].Permissions[{j}].HTTP"
    http = perm.get("HTTP")
    if http is None:
        raise EntryError(f"{prefix} is required")
    parts = 0
    for key in ("PathExact", "PathPrefix"):
        value = http.get(key, "")
        if value:
            parts += 1
            if not value.startswith("/"):
                raise EntryError(f"{prefix}.{key} doesn't start with '/': {go_quote(value)}")
    if http.get("PathRegex"):
        parts += 1
        problem = _regex_error(http["PathRegex"])
        if problem is not None:
            raise EntryError(f"{prefix}.PathRegex is not a valid regular expression: {problem}")
    if parts > 1:
        raise EntryError(
            f"{prefix} should only contain at most one of PathExact, PathPrefix, or PathRegex"
        )
    for k, header in enumerate(http.get("Header") or []):
        if not header.get("Name"):
            raise EntryError(f"{prefix}.Header[{k}] missing required Name field")
        matchers = sum(
            1 for key in ("Present", "Exact", "Regex", "Prefix", "Suffix") if header.get(key)
        )
        if matchers != 1:
            raise EntryError(
                f"{prefix}.Header[{k}] should only contain one of Present, Exact, Prefix, "
                "Suffix, or Regex"
            )
        if header.get("Regex"):
            problem = _regex_error(header["Regex"])
            if problem is not None:
                raise EntryError(
                    f"{prefix}.Header[{k}].Regex is not a valid regular expression: {problem}"
                )
        parts += 1
    methods = http.get("Methods") or []
    seen: set[str] = set()
    for method in methods:
        if method not in HTTP_METHODS:
            raise EntryError(f"{prefix}.Methods contains an invalid method {go_quote(method)}")
        if method in seen:
            raise EntryError(f"{prefix}.Methods contains {go_quote(method)} more than once")
        seen.add(method)
    if methods:
        parts += 1
    if parts == 0:
        raise EntryError(f"{prefix} should not be empty")
    _validate_jwt(perm.get("JWT"))


def _validate_jwt(jwt: Mapping[str, Any] | None) -> None:
    for provider in (jwt or {}).get("Providers") or []:
        if not provider.get("Name"):
            raise EntryError("JWT provider name is required")


def _normalize_service_intentions(entry: dict[str, Any], *, legacy: bool = False) -> None:
    sources = entry.get("Sources") or []
    for src in sources:
        normalize_intention_source(src, entry.get("Name", ""), legacy=legacy)
    # Index 0 holds the highest precedence; the sort is stable, so ties keep their order.
    sources.sort(key=lambda s: -s["Precedence"])
    entry["Sources"] = sources


def _validate_service_intentions(entry: dict[str, Any], *, legacy: bool = False) -> None:
    name = entry.get("Name", "")
    if not name:
        raise EntryError("Name is required")
    problem = wildcard_error(name)
    if problem is not None:
        raise EntryError(problem)
    _validate_jwt(entry.get("JWT"))
    if legacy:
        if entry.get("Meta"):
            raise EntryError("Meta must be omitted for legacy intention writes")
    else:
        _check_meta(entry)
    sources = entry.get("Sources") or []
    if not sources:
        raise EntryError("At least one source is required")
    seen: set[tuple[str, str]] = set()
    for i, src in enumerate(sources):
        validate_intention_source(i, src, dest_is_wild=name == WILDCARD, legacy=legacy)
        key = (src.get("Peer", ""), src["Name"])
        if key in seen:
            if key[0]:
                raise EntryError(
                    f"Sources[{i}] defines peer({go_quote(key[0])}) {go_quote(key[1])} more "
                    "than once"
                )
            raise EntryError(f"Sources[{i}] defines {go_quote(key[1])} more than once")
        seen.add(key)


def normalize_intentions(entry: Mapping[str, Any], *, legacy: bool = False) -> dict[str, Any]:
    """Re-validate a service-intentions entry built by the intentions API (a canonical entry
    with sources added or replaced). `legacy` selects the rules of the legacy ID-based API
    (IDs and timestamps required, entry Meta refused) instead of the config-entry rules."""
    decoded = decode(SERVICE_INTENTIONS_SCHEMA, entry)
    decoded["Kind"] = SERVICE_INTENTIONS
    _normalize_service_intentions(decoded, legacy=legacy)
    _validate_service_intentions(decoded, legacy=legacy)
    return SERVICE_INTENTIONS_SCHEMA.emit(decoded)


# --------------------------------------------------------------------------------------------
# service-router, service-splitter, service-resolver

_RETRY_CONDITIONS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)


def _normalize_router(entry: dict[str, Any]) -> None:
    for route in entry.get("Routes") or []:
        http = (route.get("Match") or {}).get("HTTP")
        if http and http.get("Methods"):
            http["Methods"] = [m.upper() for m in http["Methods"]]


def _validate_router(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    for i, route in enumerate(entry.get("Routes") or []):
        eligible_for_rewrite = False
        http = (route.get("Match") or {}).get("HTTP")
        if http is not None:
            parts = 0
            for key in ("PathExact", "PathPrefix"):
                value = http.get(key, "")
                if value:
                    eligible_for_rewrite = True
                    parts += 1
                    if not value.startswith("/"):
                        raise EntryError(
                            f"Route[{i}] {key} doesn't start with '/': {go_quote(value)}"
                        )
            if http.get("PathRegex"):
                parts += 1
            if parts > 1:
                raise EntryError(
                    f"Route[{i}] should only contain at most one of PathExact, PathPrefix, "
                    "or PathRegex"
                )
            for j, header in enumerate(http.get("Header") or []):
                if not header.get("Name"):
                    raise EntryError(f"Route[{i}] Header[{j}] missing required Name field")
                count = sum(
                    1 for k in ("Present", "Exact", "Regex", "Prefix", "Suffix") if header.get(k)
                )
                if count != 1:
                    raise EntryError(
                        f"Route[{i}] Header[{j}] should only contain one of Present, Exact, "
                        "Prefix, Suffix, or Regex"
                    )
            for j, param in enumerate(http.get("QueryParam") or []):
                if not param.get("Name"):
                    raise EntryError(f"Route[{i}] QueryParam[{j}] missing required Name field")
                count = sum(1 for k in ("Present", "Exact", "Regex") if param.get(k))
                if count != 1:
                    raise EntryError(
                        f"Route[{i}] QueryParam[{j}] should only contain one of Present, "
                        "Exact, or Regex"
                    )
            seen: set[str] = set()
            for method in http.get("Methods") or []:
                if method not in HTTP_METHODS:
                    raise EntryError(
                        f"Route[{i}] Methods contains an invalid method {go_quote(method)}"
                    )
                if method in seen:
                    raise EntryError(
                        f"Route[{i}] Methods contains {go_quote(method)} more than once"
                    )
                seen.add(method)
        destination = route.get("Destination")
        if destination is not None:
            if destination.get("PrefixRewrite") and not eligible_for_rewrite:
                raise EntryError(
                    f"Route[{i}] cannot make use of PrefixRewrite without configuring either "
                    "PathExact or PathPrefix"
                )
            for cond in destination.get("RetryOn") or []:
                if cond not in _RETRY_CONDITIONS:
                    raise EntryError(
                        f"Route[{i}] contains an invalid retry condition: {go_quote(cond)}"
                    )


def _f32(value: float) -> float:
    """Round to float32, as Consul stores split weights."""
    if not math.isfinite(value) or abs(value) > 3.4e38:
        return value
    return _binary.unpack("f", _binary.pack("f", value))[0]


def scale_weight(weight: float) -> int:
    """A weight in hundredths of a percent (Envoy's unit), rounded half away from zero."""
    scaled = _f32(_f32(weight) * 100.0)
    if not math.isfinite(scaled):
        return 0 if math.isnan(scaled) else (1 << 62)
    return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))


def _normalize_splitter(entry: dict[str, Any]) -> None:
    for split in entry.get("Splits") or []:
        split["Weight"] = scale_weight(split.get("Weight", 0.0)) / 100


def _validate_splitter(entry: dict[str, Any]) -> None:
    _require_name(entry)
    splits = entry.get("Splits") or []
    if not splits:
        raise EntryError("no splits configured")
    _check_meta(entry)
    found: set[tuple[Any, ...]] = set()
    for split in splits:
        key: tuple[Any, ...] = (
            split.get("Service") or entry["Name"],
            split.get("ServiceSubset", ""),
            split.get("Namespace", ""),
            split.get("Partition", ""),
        )
        if split.get("RequestHeaders") is not None or split.get("ResponseHeaders") is not None:
            key = (*key, id(split))  # Go compares the header pointers: never equal
        if key in found:
            raise EntryError(
                "split destination occurs more than once: service="
                f"{go_quote(key[0])}, subset={go_quote(key[1])}, namespace={go_quote(key[2])}, "
                f"partition={go_quote(key[3])}"
            )
        found.add(key)
    total = sum(scale_weight(split.get("Weight", 0.0)) for split in splits)
    if total != 100 * 100:
        raise EntryError(f"the sum of all split weights must be 100, not {_f32(total / 100):f}")


_SUBSET_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LB_POLICIES = frozenset({"", "random", "round_robin", "least_request", "ring_hash", "maglev"})
_HASH_FIELDS = frozenset({"header", "cookie", "query_parameter"})


def _subset_name_error(name: str) -> str | None:
    if not name or len(name) > 63:
        return "must be non-empty and 63 characters or fewer"
    if not _SUBSET_NAME.match(name):
        return (
            "must be 63 characters or fewer, begin or end with lower case alphanumeric "
            "characters, and contain lower case alphanumeric characters or '-' in between"
        )
    return None


def _enterprise_target_error(target: Mapping[str, Any]) -> str | None:
    if target.get("Partition"):
        return "Setting Partition requires Consul Enterprise"
    if target.get("Namespace"):
        return "Setting Namespace requires Consul Enterprise"
    return None


def _validate_resolver(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    name = entry["Name"]
    subsets: dict[str, Any] = entry.get("Subsets") or {}
    for subset_name, subset in subsets.items():
        if subset_name == "":
            raise EntryError("Subset defined with empty name")
        problem = _subset_name_error(subset_name)
        if problem is not None:
            raise EntryError(f"Subset {go_quote(subset_name)} is invalid: {problem}")
        if subset.get("Filter"):
            try:
                compile_filter(subset["Filter"])
            except FilterError as err:
                raise EntryError(
                    f"Filter for subset {go_quote(subset_name)} is not a valid expression: {err}"
                ) from None
    default_subset = entry.get("DefaultSubset", "")
    if default_subset and default_subset not in subsets:
        raise EntryError(f"DefaultSubset {go_quote(default_subset)} is not a valid subset")

    redirect = entry.get("Redirect")
    failover: dict[str, Any] = entry.get("Failover") or {}
    if redirect is not None:
        if redirect.get("Partition", "default") not in ("", "default") and redirect.get(
            "Datacenter"
        ):
            raise EntryError("Cross-datacenter and cross-partition redirect is not supported")
        problem = _enterprise_target_error(redirect)
        if problem is not None:
            raise EntryError(f"Redirect: {problem}")
        if failover:
            raise EntryError("Redirect and Failover cannot both be set")
        if not any(redirect.get(k) for k in ("Service", "ServiceSubset", "Datacenter", "Peer")):
            raise EntryError("Redirect is empty")
        service, subset, peer = (
            redirect.get("Service", ""),
            redirect.get("ServiceSubset", ""),
            redirect.get("Peer", ""),
        )
        if peer and subset:
            raise EntryError("Redirect.Peer cannot be set with Redirect.ServiceSubset")
        if peer and redirect.get("Datacenter"):
            raise EntryError("Redirect.Peer cannot be set with Redirect.Datacenter")
        if not service:
            if subset:
                raise EntryError("Redirect.ServiceSubset defined without Redirect.Service")
            if peer:
                raise EntryError("Redirect.Peer defined without Redirect.Service")
        elif subset and service == name and subset not in subsets:
            raise EntryError(
                f"Redirect.ServiceSubset {go_quote(subset)} is not a valid subset of "
                f"{go_quote(name)}"
            )

    for subset_key, fo in failover.items():
        prefix = f"Bad Failover[{go_quote(subset_key)}]: "
        problem = _enterprise_target_error(fo)
        if problem is not None:
            raise EntryError(prefix + problem)
        if subset_key != WILDCARD and subset_key not in subsets:
            raise EntryError(prefix + "not a valid subset subset")
        targets = fo.get("Targets") or []
        datacenters = fo.get("Datacenters") or []
        if not any((fo.get("Service"), fo.get("ServiceSubset"), datacenters, targets)):
            raise EntryError(
                prefix
                + "one of Service, ServiceSubset, Namespace, Targets, or Datacenters is required"
            )
        mode = (fo.get("Policy") or {}).get("Mode", "")
        if mode not in ("", "default", "order-by-locality"):
            raise EntryError(prefix + "Policy must be one of '', 'default', or 'order-by-locality'")
        fo_service, fo_subset = fo.get("Service", ""), fo.get("ServiceSubset", "")
        if fo_subset and fo_service in ("", name) and fo_subset not in subsets:
            raise EntryError(
                f"{prefix}ServiceSubset {go_quote(fo_subset)} is not a valid subset of "
                f"{go_quote(fo_service)}"
            )
        if datacenters and targets:
            raise EntryError(prefix + "Targets cannot be set with Datacenters")
        if fo_subset and targets:
            raise EntryError(prefix + "Targets cannot be set with ServiceSubset")
        if fo_service and targets:
            raise EntryError(prefix + "Targets cannot be set with Service")
        for i, target in enumerate(targets):
            tprefix = f"Bad Failover[{go_quote(subset_key)}].Targets[{i}]: "
            problem = _enterprise_target_error(target)
            if problem is not None:
                raise EntryError(tprefix + problem)
            if target.get("Peer") and target.get("ServiceSubset"):
                raise EntryError(tprefix + "Peer cannot be set with ServiceSubset")
            if target.get("Peer") and target.get("Datacenter"):
                raise EntryError(tprefix + "Peer cannot be set with Datacenter")
            t_subset = target.get("ServiceSubset", "")
            if t_subset and target.get("Service", "") in ("", name) and t_subset not in subsets:
                raise EntryError(
                    f"{tprefix}ServiceSubset {go_quote(t_subset)} is not a valid subset of "
                    f"{go_quote(name)}"
                )
        if any(dc == "" for dc in datacenters):
            raise EntryError(
                f"Bad Failover[{go_quote(subset_key)}].Datacenters: found empty datacenter"
            )

    for key in ("ConnectTimeout", "RequestTimeout"):
        if entry.get(key, 0) < 0:
            raise EntryError(f"Bad {key} '{format_duration_ns(entry[key])}', must be >= 0")

    lb = entry.get("LoadBalancer")
    if lb is not None:
        policy = lb.get("Policy", "")
        if policy not in _LB_POLICIES:
            raise EntryError(f"Bad LoadBalancer policy: {go_quote(policy)} is not supported")
        if policy != "ring_hash" and lb.get("RingHashConfig") is not None:
            raise EntryError(
                "Bad LoadBalancer configuration. RingHashConfig specified for incompatible "
                f"load balancing policy {go_quote(policy)}"
            )
        if policy != "least_request" and lb.get("LeastRequestConfig") is not None:
            raise EntryError(
                "Bad LoadBalancer configuration. LeastRequestConfig specified for incompatible "
                f"load balancing policy {go_quote(policy)}"
            )
        hash_policies = lb.get("HashPolicies") or []
        if policy not in ("ring_hash", "maglev") and hash_policies:
            raise EntryError(
                "Bad LoadBalancer configuration: HashPolicies specified for non-hash-based "
                f"Policy: {go_quote(policy)}"
            )
        for i, hp in enumerate(hash_policies):
            _validate_hash_policy(i, hp)


def _validate_hash_policy(i: int, hp: Mapping[str, Any]) -> None:
    field, value = hp.get("Field", ""), hp.get("FieldValue", "")
    prefix = f"Bad LoadBalancer HashPolicy[{i}]: "
    if field and field not in _HASH_FIELDS:
        raise EntryError(f"{prefix}{go_quote(field)} is not a supported field")
    if hp.get("SourceIP") and field:
        raise EntryError(
            f"{prefix}A single hash policy cannot hash both a source address and a "
            f"{go_quote(field)}"
        )
    if hp.get("SourceIP") and value:
        raise EntryError(f"{prefix}A FieldValue cannot be specified when hashing SourceIP")
    if field and not value:
        raise EntryError(f"{prefix}Field {go_quote(field)} was specified without a FieldValue")
    if value and not field:
        raise EntryError(f"{prefix}FieldValue requires a Field to apply to")
    cookie = hp.get("CookieConfig")
    if cookie is not None:
        if field != "cookie":
            raise EntryError(f"{prefix}cookie_config provided for {go_quote(field)}")
        if cookie.get("Session") and cookie.get("TTL", 0) != 0:
            raise EntryError(f"{prefix}a session cookie cannot have an associated TTL")


# --------------------------------------------------------------------------------------------
# ingress-gateway, terminating-gateway (stored for later use; the basic shape is checked)


def _normalize_ingress(entry: dict[str, Any]) -> None:
    for listener in entry.get("Listeners") or []:
        listener["Protocol"] = (listener.get("Protocol") or "tcp").lower()


def _validate_host(tls_enabled: bool, host: str) -> None:
    if host == WILDCARD:
        if tls_enabled:
            raise EntryError(
                "Host '*' is not allowed when TLS is enabled, all hosts must be valid DNS "
                "records to add as a DNSSAN"
            )
        return
    bare = host[2:] if host.startswith("*.") else host
    if not _is_domain_name(bare):
        raise EntryError(f"Host {go_quote(host)} must be a valid DNS hostname")
    if WILDCARD in bare:
        raise EntryError(
            f"Host {go_quote(host)} is not valid, a wildcard specifier is only allowed as the "
            "leftmost label"
        )


def _validate_ingress(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    tls_enabled = bool((entry.get("TLS") or {}).get("Enabled"))
    ports: set[int] = set()
    for listener in entry.get("Listeners") or []:
        port, protocol = listener.get("Port", 0), listener.get("Protocol", "tcp")
        where = f"(listener on port {port})"
        if port in ports:
            raise EntryError(f"port {port} declared on two listeners")
        ports.add(port)
        if protocol not in ("tcp", "http", "http2", "grpc"):
            raise EntryError(
                "protocol must be 'tcp', 'http', 'http2', or 'grpc'. "
                f"'{protocol}' is an unsupported protocol"
            )
        services = listener.get("Services") or []
        if not services:
            raise EntryError(f"No service declared for listener with port {port}")
        if not is_http_like(protocol) and len(services) > 1:
            raise EntryError(
                "Multiple services per listener are only supported for L7 protocols, 'http', "
                f"'grpc' and 'http2' {where}"
            )
        hosts_seen: set[str] = set()
        names_seen: set[str] = set()
        for svc in services:
            name, hosts = svc.get("Name", ""), svc.get("Hosts") or []
            if protocol == "tcp":
                if name == WILDCARD:
                    raise EntryError(
                        f"Wildcard service name is only valid for protocol = 'http' {where}"
                    )
                if hosts:
                    raise EntryError(
                        "Associating hosts to a service is not supported for the tcp protocol "
                        + where
                    )
            if not name:
                raise EntryError(f"Service name cannot be blank {where}")
            if name == WILDCARD and hosts:
                raise EntryError(
                    f"Associating hosts to a wildcard service is not supported {where}"
                )
            if name in names_seen:
                raise EntryError(f"Service {name} cannot be added multiple times {where}")
            names_seen.add(name)
            for host in hosts:
                if host in hosts_seen:
                    raise EntryError(f"Hosts must be unique within a specific listener {where}")
                hosts_seen.add(host)
                _validate_host(tls_enabled, host)


def _validate_terminating(entry: dict[str, Any]) -> None:
    _require_name(entry)
    _check_meta(entry)
    seen: set[str] = set()
    for svc in entry.get("Services") or []:
        name = svc.get("Name", "")
        if not name:
            raise EntryError("Service name cannot be blank.")
        if name in seen:
            raise EntryError(
                f"Service {go_quote(name)} was specified more than once within a namespace"
            )
        seen.add(name)
        cert, key, ca = svc.get("CertFile"), svc.get("KeyFile"), svc.get("CAFile")
        if (cert or key) and not (ca and cert and key):
            raise EntryError(
                f"Service {go_quote(name)} must have a CertFile, CAFile, and KeyFile specified "
                "for TLS origination"
            )


def _no_normalize(entry: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Kind:
    schema: _Obj
    normalize: Callable[[dict[str, Any]], None]
    validate: Callable[[dict[str, Any]], None]


_KINDS: dict[str, _Kind] = {
    PROXY_DEFAULTS: _Kind(
        PROXY_DEFAULTS_SCHEMA, _normalize_proxy_defaults, _validate_proxy_defaults
    ),
    SERVICE_DEFAULTS: _Kind(
        SERVICE_DEFAULTS_SCHEMA, _normalize_service_defaults, _validate_service_defaults
    ),
    SERVICE_INTENTIONS: _Kind(
        SERVICE_INTENTIONS_SCHEMA, _normalize_service_intentions, _validate_service_intentions
    ),
    SERVICE_ROUTER: _Kind(SERVICE_ROUTER_SCHEMA, _normalize_router, _validate_router),
    SERVICE_SPLITTER: _Kind(SERVICE_SPLITTER_SCHEMA, _normalize_splitter, _validate_splitter),
    SERVICE_RESOLVER: _Kind(SERVICE_RESOLVER_SCHEMA, _no_normalize, _validate_resolver),
    MESH: _Kind(MESH_SCHEMA, _normalize_mesh, _validate_mesh),
    INGRESS_GATEWAY: _Kind(INGRESS_GATEWAY_SCHEMA, _normalize_ingress, _validate_ingress),
    TERMINATING_GATEWAY: _Kind(TERMINATING_GATEWAY_SCHEMA, _no_normalize, _validate_terminating),
}


def entry_kind(body: Mapping[str, Any]) -> str:
    """The kind named by a body (`Kind` or `kind`), with Consul's decoding errors."""
    if not isinstance(body, Mapping):
        raise EntryError(
            f"json: cannot unmarshal {_go_kind(body)} into Go value of type "
            "map[string]interface {}",
            decoding=True,
        )
    if "Kind" in body:
        kind = body["Kind"]
    elif "kind" in body:
        kind = body["kind"]
    else:
        raise EntryError("Payload does not contain a kind/Kind key at the top level", decoding=True)
    if not isinstance(kind, str):
        raise EntryError("Kind value in payload is not a string", decoding=True)
    if kind not in _KINDS:
        raise EntryError(f"invalid config entry kind: {kind}", decoding=True)
    return kind


def normalize(body: Mapping[str, Any]) -> dict[str, Any]:
    """Decode, normalize and validate a config entry body; return the canonical entry.

    Raises EntryError with Consul's text (see EntryError.decoding for which kind of failure).
    `CreateIndex`/`ModifyIndex` in the body are ignored: the store owns them."""
    kind = entry_kind(body)
    spec = _KINDS[kind]
    entry = decode(spec.schema, body)
    entry["Kind"] = kind
    spec.normalize(entry)
    spec.validate(entry)
    return spec.schema.emit(entry)


def make_key(kind: str, name: str) -> tuple[str, str]:
    """The (kind, name) a stored entry is filed under, checking the kind as Consul's
    `GET/DELETE /v1/config/<kind>/<name>` does (`invalid config entry kind: x`)."""
    if kind not in _KINDS:
        raise EntryError(f"invalid config entry kind: {kind}", decoding=True)
    return kind, name


# --------------------------------------------------------------------------------------------
# Protocols and the discovery-chain graph check


def _proxy_defaults_protocol(lookup: Lookup) -> str:
    proxy = lookup(PROXY_DEFAULTS, "global")
    config = (proxy or {}).get("Config") or {}
    value = config.get("protocol", "")
    if isinstance(value, bool):
        value = "1" if value else "0"
    elif isinstance(value, int | float):
        value = str(value)
    return value.lower() if isinstance(value, str) else ""


def effective_protocol(service: str, lookup: Lookup) -> str:
    """The protocol a service's proxies use: service-defaults `Protocol` when set, else
    proxy-defaults `Config.protocol`, else "tcp" (Consul's resolved service config)."""
    defaults = lookup(SERVICE_DEFAULTS, service)
    if defaults and defaults.get("Protocol"):
        return str(defaults["Protocol"]).lower()
    return _proxy_defaults_protocol(lookup) or DEFAULT_PROTOCOL


def related_services(entry: Mapping[str, Any]) -> list[str]:
    """The other services a router, splitter or resolver sends traffic to (sorted)."""
    kind, name = entry.get("Kind"), entry.get("Name", "")
    found: set[str] = set()
    if kind == SERVICE_ROUTER:
        for route in entry.get("Routes") or []:
            dest = route.get("Destination")
            if dest is not None:
                found.add(dest.get("Service") or name)
    elif kind == SERVICE_SPLITTER:
        for split in entry.get("Splits") or []:
            found.add(split.get("Service") or name)
    elif kind == SERVICE_RESOLVER:
        redirect = entry.get("Redirect")
        if redirect is not None:
            found.add(redirect.get("Service") or name)
        for fo in (entry.get("Failover") or {}).values():
            targets = fo.get("Targets") or []
            if not targets:
                found.add(fo.get("Service") or name)
            for target in targets:
                if not target.get("Peer"):
                    found.add(target.get("Service") or name)
    found.discard(name)
    return sorted(found)


_CHAIN_KINDS = (SERVICE_ROUTER, SERVICE_SPLITTER, SERVICE_RESOLVER)


def check_graph(
    entry: Mapping[str, Any],
    lookup: Lookup,
    *,
    deleting: bool = False,
    list_entries: ListEntries | None = None,
) -> None:
    """Consul's cross-entry rules for writing (or, with deleting=True, deleting) `entry`:
    every discovery chain the change touches must still compile. Raises GraphError.

    `lookup(kind, name)` returns the stored entry or None. `list_entries(kind)` returns every
    stored entry of a kind; it lets the check find the routers, splitters and resolvers that
    point at the changed service (and, for proxy-defaults, every chain). Without it only the
    chain named by the entry itself is checked."""
    kind, name = entry.get("Kind", ""), entry.get("Name", "")
    if kind == PROXY_DEFAULTS:
        name = "global"
    if kind not in (PROXY_DEFAULTS, SERVICE_DEFAULTS, *_CHAIN_KINDS):
        return

    def overridden(k: str, n: str) -> dict[str, Any] | None:
        if k == kind and n == name:
            return None if deleting else dict(entry)
        return lookup(k, n)

    chains: set[str] = set()
    if kind == PROXY_DEFAULTS:
        if list_entries is not None:
            for chain_kind in _CHAIN_KINDS:
                chains.update(e.get("Name", "") for e in list_entries(chain_kind))
    else:
        chains.add(name)
        if list_entries is not None:
            for chain_kind in _CHAIN_KINDS:
                for other in list_entries(chain_kind):
                    current = overridden(chain_kind, other.get("Name", ""))
                    if current is not None and name in related_services(current):
                        chains.add(current["Name"])
    for chain in sorted(chains):
        _ChainCompiler(chain, overridden).compile()


_EVALUATE_DC = "dc1"  # Consul compiles test chains for a placeholder datacenter too


@dataclass(frozen=True, slots=True)
class _Target:
    service: str
    subset: str = ""
    datacenter: str = _EVALUATE_DC

    @property
    def id(self) -> str:
        base = f"{self.service}.{DEFAULT_NAMESPACE}.default.{self.datacenter}"
        return f"{self.subset}.{base}" if self.subset else base


class _ChainCompiler:
    """Enough of Consul's discovery-chain compiler to reject what it rejects: mixed
    protocols, routing or splitting over a non-HTTP protocol, unknown subsets, redirect
    loops and splitter loops. Node names follow Consul's so the messages match."""

    def __init__(self, service: str, lookup: Lookup) -> None:
        self.service = service
        self.lookup = lookup
        self.protocol = ""
        self.advanced = False
        self.nodes: dict[str, list[str]] = {}  # node name -> next node names
        self.splitters: set[str] = set()
        self.resolved: dict[str, str] = {}  # target id -> resolver node name

    def compile(self) -> None:
        start = self._assemble()
        self._detect_cycles(start)
        if self.advanced and not is_http_like(self.protocol):
            raise GraphError(
                f"discovery chain {go_quote(self.service)} uses a protocol "
                f"{go_quote(self.protocol)} that does not permit advanced routing or splitting "
                "behavior"
            )

    def _record_protocol(self, service: str) -> None:
        defaults = self.lookup(SERVICE_DEFAULTS, service)
        if defaults is not None:
            protocol = str(defaults.get("Protocol") or "")
        else:
            protocol = _proxy_defaults_protocol(self.lookup)
        protocol = protocol.lower() or DEFAULT_PROTOCOL
        if not self.protocol:
            self.protocol = protocol
        elif self.protocol != protocol:
            raise GraphError(
                f"discovery chain {go_quote(self.service)} uses inconsistent protocols; service "
                f"{go_quote(service)} has {go_quote(protocol)} which is not "
                f"{go_quote(self.protocol)}"
            )

    def _assemble(self) -> str:
        router = self.lookup(SERVICE_ROUTER, self.service)
        if router is None:
            return self._splitter_or_resolver(_Target(self.service))
        node = f"router:{self.service}.default.default"
        self.advanced = True
        self._record_protocol(self.service)
        nexts: list[str] = []
        for route in router.get("Routes") or []:
            dest = route.get("Destination") or {}
            target = _Target(dest.get("Service") or self.service, dest.get("ServiceSubset", ""))
            if target.subset:
                nexts.append(self._resolver(target))
            else:
                nexts.append(self._splitter_or_resolver(target))
        nexts.append(self._splitter_or_resolver(_Target(self.service)))
        self.nodes[node] = nexts
        return node

    def _splitter_or_resolver(self, target: _Target) -> str:
        node = self._splitter(target.service)
        return node if node is not None else self._resolver(target)

    def _splitter(self, service: str) -> str | None:
        node = f"splitter:{service}.default.default"
        if node in self.splitters:
            return node
        splitter = self.lookup(SERVICE_SPLITTER, service)
        if splitter is None:
            return None
        self.splitters.add(node)
        self.nodes[node] = []
        nexts: list[str] = []
        for split in splitter.get("Splits") or []:
            svc = split.get("Service") or service
            subset = split.get("ServiceSubset", "")
            if svc != service and not subset:
                nested = self._splitter(svc)
                if nested is not None:
                    nexts.append(nested)
                    continue
            nexts.append(self._resolver(_Target(svc, subset)))
        self.nodes[node] = nexts
        self.advanced = True
        return node

    def _resolver(self, target: _Target, *, for_failover: bool = False) -> str:
        history: list[str] = []
        while True:
            if target.id in self.resolved:
                return self.resolved[target.id]
            self._record_protocol(target.service)
            resolver = self.lookup(SERVICE_RESOLVER, target.service) or {}
            if target.id in history:
                history.append(target.id)
                raise GraphError(f"detected circular resolver redirect: [{' -> '.join(history)}]")
            history.append(target.id)
            redirect = resolver.get("Redirect")
            if redirect is not None:
                moved = _rewrite(target, redirect)
                if moved.id != target.id:
                    target = moved
                    continue
            if not target.subset and resolver.get("DefaultSubset"):
                target = _Target(target.service, resolver["DefaultSubset"], target.datacenter)
                continue
            break
        subsets = resolver.get("Subsets") or {}
        if target.subset and target.subset not in subsets:
            raise GraphError(
                f"service {go_quote(target.service)} does not have a subset named "
                f"{go_quote(target.subset)}"
            )
        defaults = self.lookup(SERVICE_DEFAULTS, target.service) or {}
        if defaults.get("ExternalSNI"):
            for key, what in (
                ("Redirect", "redirects"),
                ("Subsets", "subsets"),
                ("Failover", "failover"),
            ):
                if resolver.get(key):
                    raise GraphError(
                        f"service {go_quote(target.service)} has an external SNI set; cannot "
                        f"define {what} for external services"
                    )
        node = f"resolver:{target.id}"
        if for_failover:
            return node
        self.resolved[target.id] = node
        self.nodes[node] = []
        failover = resolver.get("Failover") or {}
        fo = failover.get(target.subset, failover.get(WILDCARD))
        if fo is not None:
            if fo.get("Datacenters"):
                candidates = [
                    _rewrite(target, {**fo, "Datacenter": dc}) for dc in fo["Datacenters"]
                ]
            elif fo.get("Targets"):
                candidates = [_rewrite(target, t) for t in fo["Targets"]]
            else:
                candidates = [_rewrite(target, fo)]
            for candidate in candidates:
                if candidate.id != target.id:
                    self._resolver(candidate, for_failover=True)
        return node

    def _detect_cycles(self, start: str) -> None:
        todo = [start]
        visited: set[str] = set()
        chain: list[str] = []
        while todo:
            current = todo.pop()
            if current == "_popvisit":
                if chain:
                    visited.discard(chain.pop())
                continue
            chain.append(current)
            if current in visited:
                raise GraphError(f"detected circular reference: [{' -> '.join(chain)}]")
            visited.add(current)
            todo.append("_popvisit")
            todo.extend(self.nodes.get(current, []))


def _rewrite(target: _Target, opts: Mapping[str, Any]) -> _Target:
    """Consul's rewriteTarget: another service resets the subset."""
    service, subset, dc = target.service, target.subset, target.datacenter
    if opts.get("Service") and opts["Service"] != service:
        service, subset = opts["Service"], ""
    if opts.get("ServiceSubset"):
        subset = opts["ServiceSubset"]
    if opts.get("Datacenter"):
        dc = opts["Datacenter"]
    return _Target(service, subset, dc)
