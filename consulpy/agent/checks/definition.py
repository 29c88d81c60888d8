"""Check definitions: parsing an API/config body, Consul's validation, the check's type.

Bodies arrive with Consul's API field names (`HTTP`, `Interval`, `TLSSkipVerify`, ...), as
`consulpy/config/services.py` and the HTTP decoder produce them; other spellings of the same
key (`tls_skip_verify`, `tlsskipverify`, `script_args`) are accepted too because py-consul sends
them. Durations are Go duration strings or integer nanoseconds. Validation and its messages
follow Consul's `CheckType.Validate`; the type is picked with Consul's precedence when several
targets are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from consulpy.agent.checks.errors import CheckError
from consulpy.agent.checks.status import CRITICAL, is_valid_status
from consulpy.util.durations import DurationError, duration_from_json, format_duration_ns

NS = 1_000_000_000
MIN_INTERVAL = 1.0
"""Consul's floor on check intervals (seconds): below it an agent could fork-bomb its host."""
DEFAULT_TIMEOUT = 10.0
DEFAULT_EXEC_TIMEOUT = 30.0


class CheckType(StrEnum):
    HTTP = "http"
    TCP = "tcp"
    UDP = "udp"
    GRPC = "grpc"
    H2PING = "h2ping"
    TTL = "ttl"
    SCRIPT = "script"
    DOCKER = "docker"
    ALIAS = "alias"
    OS_SERVICE = "os_service"


INTERVAL_TYPES = frozenset(
    {
        CheckType.HTTP,
        CheckType.TCP,
        CheckType.UDP,
        CheckType.GRPC,
        CheckType.H2PING,
        CheckType.SCRIPT,
        CheckType.DOCKER,
        CheckType.OS_SERVICE,
    }
)
_EXEC_TYPES = frozenset({CheckType.SCRIPT, CheckType.DOCKER, CheckType.OS_SERVICE})

_STR = "str"
_BOOL = "bool"
_INT = "int"
_DUR = "duration"
_HEADER = "header"
_ARGS = "args"

# Canonical API name -> value kind.
_FIELDS: dict[str, str] = {
    "ID": _STR,
    "Name": _STR,
    "Notes": _STR,
    "Status": _STR,
    "ServiceID": _STR,
    "Token": _STR,
    "Interval": _DUR,
    "Timeout": _DUR,
    "TTL": _DUR,
    "HTTP": _STR,
    "Method": _STR,
    "Header": _HEADER,
    "Body": _STR,
    "DisableRedirects": _BOOL,
    "TLSServerName": _STR,
    "TLSSkipVerify": _BOOL,
    "TCP": _STR,
    "TCPUseTLS": _BOOL,
    "UDP": _STR,
    "GRPC": _STR,
    "GRPCUseTLS": _BOOL,
    "H2PING": _STR,
    "H2PingUseTLS": _BOOL,
    "Args": _ARGS,
    "DockerContainerID": _STR,
    "Shell": _STR,
    "OSService": _STR,
    "AliasNode": _STR,
    "AliasService": _STR,
    "SuccessBeforePassing": _INT,
    "FailuresBeforeWarning": _INT,
    "FailuresBeforeCritical": _INT,
    "DeregisterCriticalServiceAfter": _DUR,
    "OutputMaxSize": _INT,
    "Namespace": _STR,
    "Partition": _STR,
}
_ALIASES = {"CheckID": "ID", "ScriptArgs": "Args"}


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


_LOOKUP = {_norm(k): k for k in _FIELDS} | {_norm(k): v for k, v in _ALIASES.items()}
_ALIAS_KEYS = frozenset(_norm(k) for k in _ALIASES)


def _coerce(key: str, kind: str, value: Any) -> Any:
    if kind == _STR:
        if not isinstance(value, str):
            raise CheckError(f"{key} must be a string", kind="decode")
        return value
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise CheckError(f"{key} must be a boolean", kind="decode")
        return value
    if kind == _INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckError(f"{key} must be an integer", kind="decode")
        return value
    if kind == _DUR:
        try:
            return duration_from_json(value)
        except DurationError as exc:
            raise CheckError(str(exc), kind="decode") from None
    if kind == _ARGS:
        if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
            raise CheckError(f"{key} must be a list of strings", kind="decode")
        return tuple(value)
    if not isinstance(value, Mapping):
        raise CheckError(f"{key} must be a map of header names to lists of values", kind="decode")
    header: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        if values is None:
            values = []
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise CheckError(f"{key} values must be lists of strings", kind="decode")
        header[str(name)] = tuple(values)
    return header


@dataclass(frozen=True, slots=True)
class CheckDefinition:
    """A validated check. Durations are kept as given (ns) for display, and as effective
    seconds for running: `interval` is raised to the minimum, `timeout` has its default."""

    id: str
    name: str
    type: CheckType
    notes: str = ""
    status: str = ""
    service_id: str = ""
    token: str = ""
    interval_ns: int = 0
    timeout_ns: int = 0
    ttl_ns: int = 0
    http: str = ""
    method: str = ""
    header: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    body: str = ""
    disable_redirects: bool = False
    tls_server_name: str = ""
    tls_skip_verify: bool = False
    tcp: str = ""
    tcp_use_tls: bool = False
    udp: str = ""
    grpc: str = ""
    grpc_use_tls: bool = False
    h2ping: str = ""
    h2ping_use_tls: bool = False
    args: tuple[str, ...] = ()
    docker_container_id: str = ""
    shell: str = ""
    os_service: str = ""
    alias_node: str = ""
    alias_service: str = ""
    success_before_passing: int = 0
    failures_before_warning: int = 0
    failures_before_critical: int = 0
    deregister_critical_service_after_ns: int = 0
    output_max_size: int = 0
    interval: float = 0.0
    """Seconds between runs (after the previous run finished), at least the minimum."""
    timeout: float = 0.0
    """Seconds a single run may take (defaults applied: 10 s, 30 s for script/docker)."""

    @property
    def ttl(self) -> float:
        return self.ttl_ns / NS

    @property
    def deregister_critical_service_after(self) -> float:
        return self.deregister_critical_service_after_ns / NS

    @property
    def initial_status(self) -> str:
        """What a new check shows before its first result: `Status` or `critical`."""
        return self.status or CRITICAL

    @property
    def interval_text(self) -> str:
        """HealthCheck.Interval: the Go duration string as registered, "" when unset."""
        return format_duration_ns(self.interval_ns) if self.interval_ns else ""

    @property
    def timeout_text(self) -> str:
        return format_duration_ns(self.timeout_ns) if self.timeout_ns else ""

    def definition_json(self) -> dict[str, Any]:
        """The HealthCheck "Definition" object: Consul's HealthCheckDefinition, omitempty."""
        out: dict[str, Any] = {}
        if self.interval_ns:
            out["Interval"] = format_duration_ns(self.interval_ns)
        if self.output_max_size:
            out["OutputMaxSize"] = self.output_max_size
        if self.timeout_ns:
            out["Timeout"] = format_duration_ns(self.timeout_ns)
        if self.deregister_critical_service_after_ns:
            out["DeregisterCriticalServiceAfter"] = format_duration_ns(
                self.deregister_critical_service_after_ns
            )
        pairs: list[tuple[str, Any]] = [
            ("HTTP", self.http),
            ("TLSServerName", self.tls_server_name),
            ("TLSSkipVerify", self.tls_skip_verify),
            ("Header", {k: list(v) for k, v in self.header.items()}),
            ("Method", self.method),
            ("Body", self.body),
            ("DisableRedirects", self.disable_redirects),
            ("TCP", self.tcp),
            ("TCPUseTLS", self.tcp_use_tls),
            ("UDP", self.udp),
            ("H2PING", self.h2ping),
            ("H2PingUseTLS", self.h2ping_use_tls),
            ("ScriptArgs", list(self.args)),
            ("DockerContainerID", self.docker_container_id),
            ("Shell", self.shell),
            ("GRPC", self.grpc),
            ("GRPCUseTLS", self.grpc_use_tls),
            ("OSService", self.os_service),
            ("AliasNode", self.alias_node),
            ("AliasService", self.alias_service),
        ]
        out.update((k, v) for k, v in pairs if v)
        if self.ttl_ns:
            out["TTL"] = format_duration_ns(self.ttl_ns)
        return out


def _pick_type(v: Mapping[str, Any]) -> CheckType | None:
    """Consul's CheckType.Type(): interval kinds only count with an interval set."""
    has_interval = v.get("Interval", 0) > 0
    is_script = bool(v.get("Args"))
    is_alias = bool(v.get("AliasNode") or v.get("AliasService"))
    order: list[tuple[bool, CheckType]] = [
        (bool(v.get("GRPC")) and has_interval, CheckType.GRPC),
        (bool(v.get("HTTP")) and has_interval, CheckType.HTTP),
        (v.get("TTL", 0) > 0, CheckType.TTL),
        (bool(v.get("TCP")) and has_interval, CheckType.TCP),
        (bool(v.get("UDP")) and has_interval, CheckType.UDP),
        (is_alias, CheckType.ALIAS),
        (is_script and bool(v.get("DockerContainerID")) and has_interval, CheckType.DOCKER),
        (is_script and has_interval, CheckType.SCRIPT),
        (bool(v.get("H2PING")) and has_interval, CheckType.H2PING),
        (bool(v.get("OSService")) and has_interval, CheckType.OS_SERVICE),
    ]
    return next((kind for matched, kind in order if matched), None)


def _validate(v: Mapping[str, Any]) -> None:
    """Consul's CheckType.Validate, in its order and with its texts."""
    interval = v.get("Interval", 0)
    ttl = v.get("TTL", 0)
    interval_check = any(
        v.get(k) for k in ("Args", "HTTP", "TCP", "UDP", "GRPC", "H2PING", "OSService")
    )
    is_alias = bool(v.get("AliasNode") or v.get("AliasService"))
    if interval > 0 and ttl > 0:
        raise CheckError("Interval and TTL cannot both be specified")
    if interval_check and interval <= 0:
        raise CheckError(
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
        )
    if interval_check and is_alias:
        raise CheckError("Interval cannot be set for Alias checks")
    if is_alias and ttl > 0:
        raise CheckError("TTL must be not be set for Alias checks")
    if not interval_check and not is_alias and ttl <= 0:
        raise CheckError("TTL must be > 0 for TTL checks")
    if v.get("OutputMaxSize", 0) < 0:
        raise CheckError("MaxOutputMaxSize must be positive")
    for key in ("SuccessBeforePassing", "FailuresBeforeWarning", "FailuresBeforeCritical"):
        if v.get(key, 0) < 0:
            raise CheckError(f"{key} must be >= 0")
    if v.get("FailuresBeforeWarning", 0) > v.get("FailuresBeforeCritical", 0):
        raise CheckError("FailuresBeforeWarning can't be higher than FailuresBeforeCritical")


def normalise_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical API names and typed values; unknown keys and JSON nulls are dropped."""
    values: dict[str, Any] = {}
    aliased: dict[str, Any] = {}
    for key, value in body.items():
        normed = _norm(str(key))
        canonical = _LOOKUP.get(normed)
        if canonical is None or value is None:
            continue
        coerced = _coerce(canonical, _FIELDS[canonical], value)
        if normed in _ALIAS_KEYS:
            aliased[canonical] = coerced
        else:
            values[canonical] = coerced
    # The primary spelling wins (`ID` over `CheckID`, `Args` over `ScriptArgs`), as in Consul.
    for canonical, value in aliased.items():
        if not values.get(canonical):
            values[canonical] = value
    return values


def parse_check_definition(
    body: Mapping[str, Any],
    *,
    service_id: str = "",
    default_id: str = "",
    default_name: str = "",
    min_interval: float = MIN_INTERVAL,
) -> CheckDefinition:
    """Validate a check body and return its definition; raises CheckError with Consul's text.

    service_id binds the check to a service when the body does not name one (checks embedded
    in a service definition). default_id / default_name fill in what Consul derives for
    embedded checks (`service:<id>`, `Service '<name>' check`). min_interval exists so tests
    can run checks faster than Consul's 1 s floor.
    """
    if not isinstance(body, Mapping):
        raise CheckError("check definition must be an object", kind="decode")
    v = normalise_body(body)
    name = v.get("Name") or default_name
    if not name:
        raise CheckError("Missing check name", kind="name")
    status = v.get("Status", "")
    if status and not is_valid_status(status):
        raise CheckError("Bad check status", kind="status")
    _validate(v)
    kind = _pick_type(v)
    if kind is None:  # unreachable after _validate; kept so a gap cannot pass silently
        raise CheckError("Check type is not valid")
    h2ping_tls = v.get("H2PingUseTLS", True) if v.get("H2PING") else v.get("H2PingUseTLS", False)
    interval_ns = v.get("Interval", 0)
    timeout_ns = v.get("Timeout", 0)
    interval = max(interval_ns / NS, min_interval) if kind in INTERVAL_TYPES else 0.0
    default_timeout = DEFAULT_EXEC_TIMEOUT if kind in _EXEC_TYPES else DEFAULT_TIMEOUT
    timeout = timeout_ns / NS if timeout_ns > 0 else default_timeout
    return CheckDefinition(
        id=v.get("ID") or default_id or name,
        name=name,
        type=kind,
        notes=v.get("Notes", ""),
        status=status,
        service_id=v.get("ServiceID") or service_id,
        token=v.get("Token", ""),
        interval_ns=interval_ns,
        timeout_ns=timeout_ns,
        ttl_ns=v.get("TTL", 0),
        http=v.get("HTTP", ""),
        method=v.get("Method", ""),
        header=v.get("Header", {}),
        body=v.get("Body", ""),
        disable_redirects=v.get("DisableRedirects", False),
        tls_server_name=v.get("TLSServerName", ""),
        tls_skip_verify=v.get("TLSSkipVerify", False),
        tcp=v.get("TCP", ""),
        tcp_use_tls=v.get("TCPUseTLS", False),
        udp=v.get("UDP", ""),
        grpc=v.get("GRPC", ""),
        grpc_use_tls=v.get("GRPCUseTLS", False),
        h2ping=v.get("H2PING", ""),
        h2ping_use_tls=h2ping_tls,
        args=v.get("Args", ()),
        docker_container_id=v.get("DockerContainerID", ""),
        shell=v.get("Shell", ""),
        os_service=v.get("OSService", ""),
        alias_node=v.get("AliasNode", ""),
        alias_service=v.get("AliasService", ""),
        success_before_passing=v.get("SuccessBeforePassing", 0),
        failures_before_warning=v.get("FailuresBeforeWarning", 0),
        failures_before_critical=v.get("FailuresBeforeCritical", 0),
        deregister_critical_service_after_ns=v.get("DeregisterCriticalServiceAfter", 0),
        output_max_size=v.get("OutputMaxSize", 0),
        interval=interval,
        timeout=timeout,
    )
