"""Service and check definitions from config files, with keys in Consul's API spelling.

The agent registers these through the same validation as `PUT /v1/agent/service/register`,
so we hand them over as dicts keyed the way that API spells them (`Name`, `Port`, `Check`,
`SidecarService`, ...). Users write them snake_case in files (`enable_tag_override`), or copy
them from API payloads (`EnableTagOverride`); both are accepted. Duration-valued fields stay Go
duration strings, as the API takes them, but are checked here so the error names the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from consulpy.config.durations import parse_duration
from consulpy.config.schema import (
    INVALID,
    Bool,
    Ctx,
    Int,
    ListOf,
    MapOf,
    OneOrMany,
    OpaqueMap,
    Spec,
    Str,
    as_mapping,
    got,
    join,
)

Field = tuple[str, Spec]


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def go_duration(value: str) -> str:
    """Check a Go duration string but keep its text, as the HTTP API expects it."""
    parse_duration(value)
    return value


class PascalStruct(Spec):
    """A definition map: known keys in any spelling in, Consul API spelling out.

    `fields` maps the documented snake_case key to (API name, spec); `aliases` maps other
    accepted spellings to a snake_case key. Built lazily so definitions can nest themselves
    (a sidecar_service is a service definition).
    """

    def __init__(
        self,
        fields: Callable[[], Mapping[str, Field]],
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._fields_factory = fields
        self._aliases = dict(aliases or {})

    @cached_property
    def fields(self) -> dict[str, Field]:
        return dict(self._fields_factory())

    @cached_property
    def _lookup(self) -> dict[str, str]:
        table = {_norm(snake): snake for snake in self.fields}
        table.update({_norm(pascal): snake for snake, (pascal, _) in self.fields.items()})
        table.update({_norm(alias): snake for alias, snake in self._aliases.items()})
        return table

    def coerce(self, value: Any, path: str, ctx: Ctx) -> Any:
        mapping = as_mapping(value)
        if mapping is None:
            ctx.error(path, f"expected a map, got {got(value)}")
            return INVALID
        out: dict[str, Any] = {}
        for key, item in mapping.items():
            snake = self._lookup.get(_norm(str(key)))
            if snake is None:
                ctx.unknown(join(path, str(key)))
                continue
            if item is None:
                continue
            pascal, spec = self.fields[snake]
            result = spec.coerce(item, join(path, str(key)), ctx)
            if result is not INVALID:
                out[pascal] = result
        return self.finish(out)

    def finish(self, out: dict[str, Any]) -> dict[str, Any]:
        return out


class _WithChecks(PascalStruct):
    """A service: several `check` blocks are really a `checks` list."""

    def finish(self, out: dict[str, Any]) -> dict[str, Any]:
        single = out.pop("Check", None)
        if single:
            if len(single) == 1 and "Checks" not in out:
                out["Check"] = single[0]
            else:
                out["Checks"] = [*out.get("Checks", []), *single]
        return out


def _check_fields(id_name: str) -> dict[str, Field]:
    dur = Str(go_duration)
    return {
        "id": (id_name, Str()),
        "name": ("Name", Str()),
        "notes": ("Notes", Str()),
        "service_id": ("ServiceID", Str()),
        "token": ("Token", Str()),
        "status": ("Status", Str()),
        "args": ("Args", ListOf(Str())),
        "http": ("HTTP", Str()),
        "header": ("Header", MapOf(ListOf(Str()))),
        "method": ("Method", Str()),
        "body": ("Body", Str()),
        "disable_redirects": ("DisableRedirects", Bool()),
        "output_max_size": ("OutputMaxSize", Int()),
        "tcp": ("TCP", Str()),
        "tcp_use_tls": ("TCPUseTLS", Bool()),
        "udp": ("UDP", Str()),
        "interval": ("Interval", dur),
        "docker_container_id": ("DockerContainerID", Str()),
        "shell": ("Shell", Str()),
        "grpc": ("GRPC", Str()),
        "grpc_use_tls": ("GRPCUseTLS", Bool()),
        "tls_server_name": ("TLSServerName", Str()),
        "tls_skip_verify": ("TLSSkipVerify", Bool()),
        "alias_node": ("AliasNode", Str()),
        "alias_service": ("AliasService", Str()),
        "timeout": ("Timeout", dur),
        "ttl": ("TTL", dur),
        "h2ping": ("H2PING", Str()),
        "h2ping_use_tls": ("H2PingUseTLS", Bool()),
        "os_service": ("OSService", Str()),
        "success_before_passing": ("SuccessBeforePassing", Int()),
        "failures_before_warning": ("FailuresBeforeWarning", Int()),
        "failures_before_critical": ("FailuresBeforeCritical", Int()),
        "deregister_critical_service_after": ("DeregisterCriticalServiceAfter", dur),
        "namespace": ("Namespace", Str()),
        "partition": ("Partition", Str()),
    }


_CHECK_ALIASES = {"check_id": "id", "script_args": "args", "scriptargs": "args"}

CHECK = PascalStruct(lambda: _check_fields("ID"), _CHECK_ALIASES)
"""An agent-level check (`check { }` / `checks = [...]` at the top level)."""

SERVICE_CHECK = PascalStruct(lambda: _check_fields("CheckID"), _CHECK_ALIASES)
"""A check inside a service definition: its id is the API's `CheckID`."""

_MESH_GATEWAY = PascalStruct(lambda: {"mode": ("Mode", Str())})

_UPSTREAM = PascalStruct(
    lambda: {
        "destination_type": ("DestinationType", Str()),
        "destination_namespace": ("DestinationNamespace", Str()),
        "destination_partition": ("DestinationPartition", Str()),
        "destination_peer": ("DestinationPeer", Str()),
        "destination_name": ("DestinationName", Str()),
        "datacenter": ("Datacenter", Str()),
        "local_bind_address": ("LocalBindAddress", Str()),
        "local_bind_port": ("LocalBindPort", Int()),
        "local_bind_socket_path": ("LocalBindSocketPath", Str()),
        "local_bind_socket_mode": ("LocalBindSocketMode", Str()),
        "config": ("Config", OpaqueMap()),
        "mesh_gateway": ("MeshGateway", _MESH_GATEWAY),
    }
)

_EXPOSE = PascalStruct(
    lambda: {
        "checks": ("Checks", Bool()),
        "port": ("Port", Int()),
        "paths": (
            "Paths",
            ListOf(
                PascalStruct(
                    lambda: {
                        "listener_port": ("ListenerPort", Int()),
                        "path": ("Path", Str()),
                        "local_path_port": ("LocalPathPort", Int()),
                        "protocol": ("Protocol", Str()),
                    }
                )
            ),
        ),
    }
)

_PROXY = PascalStruct(
    lambda: {
        "destination_service_name": ("DestinationServiceName", Str()),
        "destination_service_id": ("DestinationServiceID", Str()),
        "local_service_address": ("LocalServiceAddress", Str()),
        "local_service_port": ("LocalServicePort", Int()),
        "local_service_socket_path": ("LocalServiceSocketPath", Str()),
        "mode": ("Mode", Str()),
        "transparent_proxy": (
            "TransparentProxy",
            PascalStruct(
                lambda: {
                    "outbound_listener_port": ("OutboundListenerPort", Int()),
                    "dialed_directly": ("DialedDirectly", Bool()),
                }
            ),
        ),
        "config": ("Config", OpaqueMap()),
        "upstreams": ("Upstreams", ListOf(_UPSTREAM)),
        "mesh_gateway": ("MeshGateway", _MESH_GATEWAY),
        "expose": ("Expose", _EXPOSE),
    }
)


def _service_fields() -> dict[str, Field]:
    return {
        "kind": ("Kind", Str()),
        "id": ("ID", Str()),
        "name": ("Name", Str()),
        "tags": ("Tags", ListOf(Str())),
        "address": ("Address", Str()),
        "tagged_addresses": (
            "TaggedAddresses",
            MapOf(PascalStruct(lambda: {"address": ("Address", Str()), "port": ("Port", Int())})),
        ),
        "meta": ("Meta", MapOf(Str())),
        "port": ("Port", Int()),
        "socket_path": ("SocketPath", Str()),
        "check": ("Check", OneOrMany(SERVICE_CHECK)),
        "checks": ("Checks", ListOf(SERVICE_CHECK)),
        "token": ("Token", Str()),
        "weights": (
            "Weights",
            PascalStruct(lambda: {"passing": ("Passing", Int()), "warning": ("Warning", Int())}),
        ),
        "enable_tag_override": ("EnableTagOverride", Bool()),
        "proxy": ("Proxy", _PROXY),
        "connect": (
            "Connect",
            PascalStruct(
                lambda: {
                    "native": ("Native", Bool()),
                    "sidecar_service": ("SidecarService", SERVICE),
                }
            ),
        ),
        "locality": (
            "Locality",
            PascalStruct(lambda: {"region": ("Region", Str()), "zone": ("Zone", Str())}),
        ),
        "namespace": ("Namespace", Str()),
        "partition": ("Partition", Str()),
    }


SERVICE = _WithChecks(_service_fields)
"""A service definition (`service { }` / `services = [...]`)."""
