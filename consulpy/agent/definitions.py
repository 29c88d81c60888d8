"""Service definitions as the agent accepts them (HTTP register body or config file), validated
with Consul's rules and turned into catalog rows.

Decoding is strict (Consul rejects unknown fields on agent registration), case-insensitive and
accepts snake_case, like Consul's decoder.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from consulpy.state.structs import service_row
from consulpy.util.decode import DecodeError, ListOf, MapOf, Struct, decode_struct

META_MAX_PAIRS = 64
META_KEY_MAX = 128
META_VALUE_MAX = 512
_META_KEY = re.compile(r"^[a-zA-Z0-9_-]+$")
KINDS = (
    "",
    "connect-proxy",
    "mesh-gateway",
    "terminating-gateway",
    "ingress-gateway",
    "api-gateway",
)


class DefinitionError(Exception):
    """Invalid definition; `status` is the HTTP status Consul uses (400, 404 or 500)."""

    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.status = status


CHECK_TYPE = Struct(
    "CheckType",
    {
        "CheckID": "string",
        "Name": "string",
        "Status": "string",
        "Notes": "string",
        "ServiceID": "string",
        "ScriptArgs": ListOf("string"),
        "HTTP": "string",
        "Header": MapOf(ListOf("string")),
        "Method": "string",
        "Body": "string",
        "DisableRedirects": "bool",
        "TCP": "string",
        "TCPUseTLS": "bool",
        "UDP": "string",
        "Interval": "any",
        "AliasNode": "string",
        "AliasService": "string",
        "DockerContainerID": "string",
        "Shell": "string",
        "GRPC": "string",
        "GRPCUseTLS": "bool",
        "H2PING": "string",
        "H2PingUseTLS": "bool",
        "OSService": "string",
        "TLSServerName": "string",
        "TLSSkipVerify": "bool",
        "Timeout": "any",
        "TTL": "any",
        "SuccessBeforePassing": "int",
        "FailuresBeforeWarning": "int",
        "FailuresBeforeCritical": "int",
        "DeregisterCriticalServiceAfter": "any",
        "OutputMaxSize": "int",
        "Token": "string",
        "Namespace": "string",
        "Partition": "string",
    },
    aliases={"ID": "CheckID", "Args": "ScriptArgs", "script_args": "ScriptArgs"},
)

SERVICE_ADDRESS = Struct("ServiceAddress", {"Address": "string", "Port": "int"})
MESH_GATEWAY = Struct("MeshGatewayConfig", {"Mode": "string"})
UPSTREAM = Struct(
    "Upstream",
    {
        "DestinationType": "string",
        "DestinationNamespace": "string",
        "DestinationPartition": "string",
        "DestinationPeer": "string",
        "DestinationName": "string",
        "Datacenter": "string",
        "LocalBindAddress": "string",
        "LocalBindPort": "int",
        "LocalBindSocketPath": "string",
        "LocalBindSocketMode": "string",
        "Config": MapOf("any"),
        "MeshGateway": MESH_GATEWAY,
        "CentrallyConfigured": "bool",
    },
)
PROXY = Struct(
    "ConnectProxyConfig",
    {
        "DestinationServiceName": "string",
        "DestinationServiceID": "string",
        "LocalServiceAddress": "string",
        "LocalServicePort": "int",
        "LocalServiceSocketPath": "string",
        "Mode": "string",
        "TransparentProxy": MapOf("any"),
        "Config": MapOf("any"),
        "Upstreams": ListOf(UPSTREAM),
        "MeshGateway": MESH_GATEWAY,
        "Expose": MapOf("any"),
        "AccessLogs": MapOf("any"),
        "EnvoyExtensions": ListOf("any"),
        "MutualTLSMode": "string",
    },
)
CONNECT = Struct("ServiceConnect", {"Native": "bool", "SidecarService": MapOf("any")})
WEIGHTS = Struct("Weights", {"Passing": "int", "Warning": "int"})

SERVICE_DEFINITION = Struct(
    "ServiceDefinition",
    {
        "Kind": "string",
        "ID": "string",
        "Name": "string",
        "Tags": ListOf("string"),
        "Address": "string",
        "TaggedAddresses": MapOf(SERVICE_ADDRESS),
        "Meta": MapOf("string"),
        "Port": "int",
        "SocketPath": "string",
        "Weights": WEIGHTS,
        "EnableTagOverride": "bool",
        "Token": "string",
        "Check": CHECK_TYPE,
        "Checks": ListOf(CHECK_TYPE),
        "Proxy": PROXY,
        "Connect": CONNECT,
        "Locality": "any",
        "Namespace": "string",
        "Partition": "string",
    },
    aliases={"Service": "Name"},
)


def decode_service_definition(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        return decode_struct(doc, SERVICE_DEFINITION)
    except DecodeError as exc:
        raise DefinitionError(f"Request decode failed: {exc}") from exc


def validate_meta(meta: dict[str, str] | None, what: str) -> None:
    """Consul's metadata rules; the error reads `Invalid <what> Meta: <reason>`."""
    if not meta:
        return
    if len(meta) > META_MAX_PAIRS:
        raise DefinitionError(
            f"Invalid {what} Meta: Node metadata cannot contain more than {META_MAX_PAIRS} "
            "key/value pairs"
        )
    for key, value in meta.items():
        if not key:
            reason = "Key cannot be blank"
        elif not _META_KEY.match(key):
            reason = f"Key contains invalid characters: {key}"
        elif len(key) > META_KEY_MAX:
            reason = f"Key is too long (limit: {META_KEY_MAX} characters)"
        elif key.startswith("consul-"):
            reason = "Key prefix 'consul-' is reserved for internal use"
        elif len(value) > META_VALUE_MAX:
            reason = f"Value is too long (limit: {META_VALUE_MAX} characters)"
        else:
            continue
        raise DefinitionError(f"Invalid {what} Meta: {reason}")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def service_from_definition(defn: dict[str, Any]) -> dict[str, Any]:
    """Validate a decoded ServiceDefinition and build the catalog row for it."""
    for field in ("Namespace", "Partition"):
        if defn.get(field) not in (None, "", "default"):
            raise DefinitionError(f"{field}s are a Consul Enterprise feature")
    name = defn.get("Name") or ""
    if not name:
        raise DefinitionError("Missing service name")
    kind = defn.get("Kind") or ""
    if kind not in KINDS:
        raise DefinitionError(f'Validation failed: invalid service kind: "{kind}"')
    address = defn.get("Address") or ""
    ip = _ip(address) if address else None
    if ip is not None and ip.is_unspecified:
        raise DefinitionError("Invalid service address")
    validate_meta(defn.get("Meta"), "Service")
    weights = defn.get("Weights")
    if weights is None:
        weights = {"Passing": 1, "Warning": 1}
    else:
        passing = weights.get("Passing", 0)
        warning = weights.get("Warning", 0)
        if passing < 1:
            raise DefinitionError("Invalid Weights: Passing must be greater than 0")
        if warning < 0:
            raise DefinitionError("Invalid Weights: Warning must be greater or equal than 0")
        if passing > 65535 or warning > 65535:
            raise DefinitionError("Invalid Weights: weights must be lower than 65536")
        weights = {"Passing": passing, "Warning": warning}
    proxy = defn.get("Proxy")
    connect = dict(defn.get("Connect") or {})
    connect.pop("SidecarService", None)  # expanded into its own service, never stored
    if kind == "connect-proxy":
        if not isinstance(proxy, dict) or not proxy.get("DestinationServiceName"):
            raise DefinitionError(
                "Validation failed: Proxy.DestinationServiceName must be non-empty for "
                "Connect proxy services"
            )
        if not defn.get("Port") and not defn.get("SocketPath"):
            raise DefinitionError(
                "Validation failed: Port or SocketPath must be set for a Connect proxy"
            )
        if connect.get("Native"):
            raise DefinitionError(
                "Validation failed: A Proxy cannot also be Connect Native, only typical services"
            )
    if isinstance(proxy, dict):
        _check_mesh_gateway_modes(proxy)
    if proxy and kind == "":
        raise DefinitionError(
            "Validation failed: Proxy is only valid for connect-proxy and gateway services"
        )
    port = defn.get("Port") or 0
    tagged: dict[str, Any] = dict(defn.get("TaggedAddresses") or {})
    # Consul's agent adds lan/wan tagged addresses for an explicit IP address.
    if ip is not None:
        family = "ipv4" if ip.version == 4 else "ipv6"
        for scope in ("lan", "wan"):
            tagged.setdefault(f"{scope}_{family}", {"Address": address, "Port": port})
    return service_row(
        Kind=kind,
        ID=defn.get("ID") or name,
        Service=name,
        Tags=list(defn.get("Tags") or []),
        Address=address,
        TaggedAddresses=tagged or None,
        Meta=defn.get("Meta") or None,
        Port=port,
        SocketPath=defn.get("SocketPath") or "",
        Weights=weights,
        EnableTagOverride=bool(defn.get("EnableTagOverride")),
        Proxy=_proxy(proxy) if kind else None,
        Connect=connect or None,
        Locality=defn.get("Locality"),
    )


MESH_GATEWAY_MODES = ("", "none", "local", "remote")


def _check_mesh_gateway_modes(proxy: dict[str, Any]) -> None:
    """The proxy's and each upstream's `MeshGateway.Mode`: a mode nothing would act on is
    refused rather than dialled as `none`."""
    configs = [("Proxy.MeshGateway", proxy.get("MeshGateway"))]
    for i, upstream in enumerate(proxy.get("Upstreams") or []):
        if isinstance(upstream, dict):
            configs.append((f"Proxy.Upstreams[{i}].MeshGateway", upstream.get("MeshGateway")))
    for where, config in configs:
        mode = (config.get("Mode") or "") if isinstance(config, dict) else ""
        if mode not in MESH_GATEWAY_MODES:
            raise DefinitionError(f'Validation failed: {where}.Mode: invalid mode "{mode}"')


def _proxy(proxy: Any) -> dict[str, Any]:
    """A proxy's configuration with Consul's defaults (upstreams default to `service`)."""
    out: dict[str, Any] = {"Mode": "", "MeshGateway": {}, "Expose": {}}
    if isinstance(proxy, dict):
        out.update({k: v for k, v in proxy.items() if v is not None})
        upstreams = []
        for upstream in proxy.get("Upstreams") or []:
            upstream = dict(upstream)
            upstream.setdefault("DestinationType", "service")
            if not upstream.get("DestinationType"):
                upstream["DestinationType"] = "service"
            upstream.setdefault("MeshGateway", {})
            upstreams.append(upstream)
        if upstreams:
            out["Upstreams"] = upstreams
        elif "Upstreams" in out:
            del out["Upstreams"]
    return out


def service_checks(defn: dict[str, Any]) -> list[dict[str, Any]]:
    """The embedded Check/Checks, with Consul's default IDs and names."""
    checks = list(defn.get("Checks") or [])
    if defn.get("Check"):
        checks.insert(0, defn["Check"])
    sid = defn.get("ID") or defn.get("Name") or ""
    name = defn.get("Name") or ""
    out = []
    for position, check in enumerate(checks, start=1):
        check = dict(check)
        if not check.get("CheckID"):
            check["CheckID"] = f"service:{sid}" if len(checks) == 1 else f"service:{sid}:{position}"
        if not check.get("Name"):
            check["Name"] = f"Service '{name}' check"
        status = check.get("Status")
        if status and status not in ("passing", "warning", "critical"):
            raise DefinitionError("Status for checks must 'passing', 'warning', 'critical'")
        check["ServiceID"] = sid
        out.append(check)
    return out
