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
