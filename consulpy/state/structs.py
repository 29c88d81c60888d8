"""Constructors for catalog rows with Consul's defaults filled in.

Every path that creates a node, service or check row (catalog registration, the agent's
sync, the leader's reconciliation) goes through these, so rows always carry the full set of
fields Consul renders.
"""

from __future__ import annotations

from typing import Any


def default_proxy() -> dict[str, Any]:
    return {"Mode": "", "MeshGateway": {}, "Expose": {}}


def service_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Kind": "",
        "ID": "",
        "Service": "",
        "Tags": [],
        "Address": "",
        "TaggedAddresses": None,
        "Meta": None,
        "Port": 0,
        "SocketPath": "",
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
        "Proxy": default_proxy(),
        "Connect": {},
        "Locality": None,
        "PeerName": "",
    }
    row.update(fields)
    if not row["ID"]:
        row["ID"] = row["Service"]
    return row


def check_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Node": "",
        "CheckID": "",
        "Name": "",
        "Status": "critical",
        "Notes": "",
        "Output": "",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
    }
    row.update(fields)
    if not row["CheckID"]:
        row["CheckID"] = row["Name"]
    return row


# Definition fields that hold durations; Consul renders them as Go duration strings.
_DURATION_FIELDS = {
    "Interval": "IntervalDuration",
    "Timeout": "TimeoutDuration",
    "TTL": "TTLDuration",
    "DeregisterCriticalServiceAfter": "DeregisterCriticalServiceAfterDuration",
}


def definition_view(defn: dict[str, Any]) -> dict[str, Any]:
    """A check's `Definition` as Consul shows it: empty fields omitted, durations as Go
    strings (accepting both `Interval` and the `IntervalDuration` spelling on input)."""
    from consulpy.util.durations import format_duration_ns

    out: dict[str, Any] = {}
    for key, value in defn.items():
        if key in _DURATION_FIELDS or key in _DURATION_FIELDS.values():
            continue
        if value in (None, "", False, 0, [], {}):
            continue
        out[key] = value
    for name, alias in _DURATION_FIELDS.items():
        ns = defn.get(name) or defn.get(alias)
        if ns:
            out[name] = format_duration_ns(int(ns))
    return out


def check_type(defn: dict[str, Any]) -> str:
    """The check type Consul derives from a definition (CheckType.Type precedence)."""
    if defn.get("GRPC"):
        return "grpc"
    if defn.get("HTTP"):
        return "http"
    if defn.get("TTL") or defn.get("TTLDuration"):
        return "ttl"
    if defn.get("TCP"):
        return "tcp"
    if defn.get("UDP"):
        return "udp"
    if defn.get("AliasNode") or defn.get("AliasService"):
        return "alias"
    if defn.get("DockerContainerID"):
        return "docker"
    if defn.get("ScriptArgs"):
        return "script"
    if defn.get("H2PING"):
        return "h2ping"
    if defn.get("OSService"):
        return "os_service"
    return ""
