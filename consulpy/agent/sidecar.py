"""Expansion of `Connect.SidecarService` into a `connect-proxy` service, as Consul's agent does.

The sidecar gets the ID `<parent-id>-sidecar-proxy`, the name `<parent-name>-sidecar-proxy`, a
port from the sidecar range (keeping its previous port on re-registration), the parent's
address, tags and meta unless it has its own, a proxy pointing at the parent, and two default
checks: a TCP check on its public port and an alias of the parent.
"""

from __future__ import annotations

from typing import Any

from consulpy.agent.definitions import DefinitionError, decode_service_definition

SIDECAR_SUFFIX = "-sidecar-proxy"


def sidecar_id(parent_id: str) -> str:
    return parent_id + SIDECAR_SUFFIX


def expand(
    parent: dict[str, Any],
    *,
    previous_port: int | None,
    used_ports: set[int],
    port_range: tuple[int, int],
) -> dict[str, Any] | None:
    """The sidecar's service definition for a decoded parent definition, or None."""
    nested = (parent.get("Connect") or {}).get("SidecarService")
    if nested is None:
        return None
    sidecar = decode_service_definition(nested)
    parent_id = parent.get("ID") or parent.get("Name") or ""
    parent_name = parent.get("Name") or ""
    wanted_id = sidecar_id(parent_id)
    if sidecar.get("ID") and sidecar["ID"] != wanted_id:
        raise DefinitionError(
            f"sidecar_service ID must be {wanted_id!r} (it cannot be chosen), got {sidecar['ID']!r}"
        )
    if sidecar.get("Kind") not in (None, "", "connect-proxy"):
        raise DefinitionError("sidecar_service can only be a connect-proxy")
    if (sidecar.get("Connect") or {}).get("SidecarService") is not None:
        raise DefinitionError("sidecar_service can't have a nested sidecar_service")
    port = sidecar.get("Port") or 0
    if not port and not sidecar.get("SocketPath"):
        low, high = port_range
        if previous_port and low <= previous_port <= high:
            port = previous_port
        else:
            free = [p for p in range(low, high + 1) if p not in used_ports] if low > 0 else []
            if not free:
                raise DefinitionError(
                    f"no port provided for sidecar_service and none left in the configured "
                    f"range [{low}, {high}]"
                )
            port = free[0]
    proxy = dict(sidecar.get("Proxy") or {})
    proxy["DestinationServiceName"] = parent_name
    proxy["DestinationServiceID"] = parent_id
    if parent.get("SocketPath"):
        proxy.setdefault("LocalServiceSocketPath", parent["SocketPath"])
    else:
        proxy.setdefault("LocalServiceAddress", "127.0.0.1")
        if not proxy.get("LocalServicePort"):
            proxy["LocalServicePort"] = parent.get("Port") or 0
    out = dict(sidecar)
    out.update(
        {
            "ID": wanted_id,
            "Name": sidecar.get("Name") or parent_name + SIDECAR_SUFFIX,
            "Kind": "connect-proxy",
            "Port": port,
            "Address": sidecar.get("Address") or parent.get("Address") or "",
            "Tags": sidecar.get("Tags") if sidecar.get("Tags") else list(parent.get("Tags") or []),
            "Meta": sidecar.get("Meta") if sidecar.get("Meta") else dict(parent.get("Meta") or {}),
            "Proxy": proxy,
        }
    )
    if not out.get("Check") and not out.get("Checks"):
        address = out["Address"] or proxy.get("LocalServiceAddress") or "127.0.0.1"
        out["Checks"] = [
            {"Name": "Connect Sidecar Listening", "TCP": f"{address}:{port}", "Interval": "10s"},
            {"Name": f"Connect Sidecar Aliasing {parent_id}", "AliasService": parent_id},
        ]
    out.setdefault("Token", parent.get("Token"))
    return {k: v for k, v in out.items() if v is not None}
