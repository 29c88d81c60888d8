"""`consulpy connect envoy -gateway=mesh`: register (with -register) and find the gateway
service whose Envoy to run, as `consul connect envoy -gateway` does.

The registration is a service of kind `mesh-gateway` named by -service (default
`mesh-gateway`), with ID -proxy-id (default: the name), -address as its address and `lan`
tagged address and -wan-address as its `wan` tagged address, and a TCP check on the address
every 10 s (Consul's). Registering again replaces it, so a restarted gateway keeps its ID.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from consulpy.cli.client import Client

GATEWAY_KINDS = {"mesh": "mesh-gateway"}
DEFAULT_PORT = 8443
CHECK_INTERVAL = "10s"


class GatewayError(Exception):
    pass


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-gateway", "--gateway", dest="gateway", default="")
    p.add_argument("-register", "--register", action="store_true")
    p.add_argument("-service", "--service", dest="service", default="")
    p.add_argument("-address", "--address", dest="address", default="")
    p.add_argument("-wan-address", "--wan-address", dest="wan_address", default="")


def _host_port(flag: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(DEFAULT_PORT)
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise GatewayError(f"invalid {flag} {value!r}: want host:port") from None
    if not host or not 0 < number < 65536:
        raise GatewayError(f"invalid {flag} {value!r}: want host:port")
    return host, number


def gateway_kind(args: argparse.Namespace) -> str:
    """The service kind -gateway names; refuses gateway-only flags without -gateway."""
    if not args.gateway:
        for flag, value in (
            ("-register", args.register),
            ("-address", args.address),
            ("-wan-address", args.wan_address),
            ("-service", args.service),
        ):
            if value:
                raise GatewayError(f"{flag} is only valid with -gateway")
        return ""
    kind = GATEWAY_KINDS.get(args.gateway)
    if kind is None:
        raise GatewayError(
            f"-gateway={args.gateway!r} is not supported (supported: {', '.join(GATEWAY_KINDS)})"
        )
    if args.sidecar_for:
        raise GatewayError("-sidecar-for and -gateway are mutually exclusive")
    if (args.address or args.wan_address) and not args.register:
        raise GatewayError("-address and -wan-address are only used with -register")
    return kind


def registration(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    name = args.service or kind
    body: dict[str, Any] = {"Kind": kind, "ID": args.proxy_id or name, "Name": name}
    tagged: dict[str, Any] = {}
    if args.address:
        host, port = _host_port("-address", args.address)
        body.update(Address=host, Port=port)
        tagged["lan"] = {"Address": host, "Port": port}
    else:
        body["Port"] = DEFAULT_PORT
    if args.wan_address:
        host, port = _host_port("-wan-address", args.wan_address)
        tagged["wan"] = {"Address": host, "Port": port}
    if tagged:
        body["TaggedAddresses"] = tagged
    check_host = body.get("Address") or "127.0.0.1"
    body["Check"] = {
        "Name": f"{name} listening",
        "TCP": f"{check_host}:{body['Port']}",
        "Interval": CHECK_INTERVAL,
    }
    return body


def gateway_service(client: Client, args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """Register the gateway if asked to; its registration as the local agent has it."""
    if args.register:
        body = registration(args, kind)
        client.request("PUT", "/v1/agent/service/register", body=json.dumps(body).encode())
        proxy_id = body["ID"]
    else:
        proxy_id = args.proxy_id or args.service or kind
    resp = client.request("GET", f"/v1/agent/service/{proxy_id}", ok=(200, 404))
    if resp.status == 404:
        raise GatewayError(f"No service with ID {proxy_id!r} is registered on this agent")
    service: dict[str, Any] = resp.json()
    if service.get("Kind") != kind:
        raise GatewayError(f"Service {proxy_id!r} is not a {kind}")
    return service
