"""`consulpy connect envoy`: bootstrap (and by default exec) an Envoy sidecar for a proxy
registered on the local agent, with the flags of `consul connect envoy`.

The agent is asked which proxy serves the service (-sidecar-for) or about the named proxy
(-proxy-id), its datacenter, and its gRPC (xDS) port; the bootstrap is built by
``consulpy.xds.bootstrap``. Envoy reads it from an in-memory file passed as /dev/fd/N, so
the token inside never touches the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.parse
from typing import Any

from consulpy.cli.client import APIError, Client, fail, make_parser

HOT_RESTART_FLAGS = (
    "--base-id",
    "--restart-epoch",
    "--disable-hot-restart",
    "--use-dynamic-base-id",
)


class EnvoyCLIError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = make_parser("consulpy connect envoy")
    p.add_argument("-sidecar-for", "--sidecar-for", dest="sidecar_for", default="")
    p.add_argument("-proxy-id", "--proxy-id", dest="proxy_id", default="")
    p.add_argument("-bootstrap", "--bootstrap", action="store_true")
    p.add_argument("-admin-bind", "--admin-bind", dest="admin_bind", default="localhost:19000")
    p.add_argument(
        "-admin-access-log-path", "--admin-access-log-path", dest="admin_log", default="/dev/null"
    )
    p.add_argument("-grpc-addr", "--grpc-addr", dest="grpc_addr", default=None)
    p.add_argument("-grpc-ca-file", "--grpc-ca-file", dest="grpc_ca_file", default=None)
    p.add_argument("-envoy-binary", "--envoy-binary", dest="envoy_binary", default=None)
    p.add_argument("-gateway", "--gateway", dest="gateway", default="")
    p.add_argument("-register", "--register", action="store_true")
    p.add_argument("-service", "--service", dest="service", default="")
    p.add_argument("-address", "--address", dest="address", default="")
    p.add_argument("-wan-address", "--wan-address", dest="wan_address", default="")
    return p


GATEWAY_KINDS = {
    "ingress": "ingress-gateway",
    "mesh": "mesh-gateway",
    "terminating": "terminating-gateway",
}
# A mesh gateway without -address listens on this port (Consul's default), checked every 10 s.
MESH_GATEWAY_PORT = 8443
MESH_CHECK_INTERVAL = "10s"


def _host_port(flag: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EnvoyCLIError(f"invalid {flag} {value!r}: want host:port")
    return host.strip("[]"), int(port)


def gateway_registration(args: argparse.Namespace) -> dict[str, Any]:
    """The agent registration `-gateway=<kind> -register` makes: the gateway's service (ID
    = its name, as Consul's), listening on -address (the ingress gateway's listeners come
    from its config entry, so for it only the host part matters)."""
    kind = GATEWAY_KINDS.get(args.gateway)
    if kind is None:
        raise EnvoyCLIError(
            f"invalid -gateway {args.gateway!r}: want one of {', '.join(sorted(GATEWAY_KINDS))}"
        )
    name = args.service or kind
    registration: dict[str, Any] = {"Kind": kind, "ID": args.proxy_id or name, "Name": name}
    if args.wan_address and kind != "mesh-gateway":
        raise EnvoyCLIError("-wan-address is only valid with -gateway=mesh")
    if args.address:
        registration["Address"], registration["Port"] = _host_port("-address", args.address)
    elif kind == "terminating-gateway":
        raise EnvoyCLIError("-gateway=terminating -register needs -address host:port")
    if kind == "mesh-gateway":
        _mesh_registration(registration, args)
    return registration


def _mesh_registration(registration: dict[str, Any], args: argparse.Namespace) -> None:
    """A mesh gateway: `lan` tagged address = -address, `wan` = -wan-address (where other
    datacenters' sidecars and gateways dial it), a TCP check on its address as Consul's."""
    registration.setdefault("Port", MESH_GATEWAY_PORT)
    tagged: dict[str, Any] = {}
    if args.address:
        tagged["lan"] = {"Address": registration["Address"], "Port": registration["Port"]}
    if args.wan_address:
        host, port = _host_port("-wan-address", args.wan_address)
        tagged["wan"] = {"Address": host, "Port": port}
    if tagged:
        registration["TaggedAddresses"] = tagged
    registration["Check"] = {
        "Name": f"{registration['Name']} listening",
        "TCP": f"{registration.get('Address') or '127.0.0.1'}:{registration['Port']}",
        "Interval": MESH_CHECK_INTERVAL,
    }


def find_gateway(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """Register the gateway first when asked, then its registration on the agent."""
    if args.register:
        registration = gateway_registration(args)
        client.request("PUT", "/v1/agent/service/register", body=json.dumps(registration).encode())
        proxy_id = registration["ID"]
    else:
        kind = GATEWAY_KINDS.get(args.gateway)
        if kind is None:
            raise EnvoyCLIError(f"invalid -gateway {args.gateway!r}")
        proxy_id = args.proxy_id or args.service or kind
    resp = client.request("GET", f"/v1/agent/service/{proxy_id}", ok=(200, 404))
    if resp.status == 404:
        raise EnvoyCLIError(f"No gateway with ID {proxy_id!r} is registered on this agent")
    service: dict[str, Any] = resp.json()
    if service.get("Kind") != GATEWAY_KINDS[args.gateway]:
        kind = GATEWAY_KINDS[args.gateway]
        article = "an" if kind[0] in "aeiou" else "a"
        raise EnvoyCLIError(f"Service {proxy_id!r} is not {article} {kind}")
    return service


def find_proxy(client: Client, sidecar_for: str, proxy_id: str) -> dict[str, Any]:
    """The agent's registration of the proxy to bootstrap."""
    if proxy_id:
        resp = client.request("GET", f"/v1/agent/service/{proxy_id}", ok=(200, 404))
        if resp.status == 404:
            raise EnvoyCLIError(f"No service with ID {proxy_id!r} is registered on this agent")
        service: dict[str, Any] = resp.json()
        if service.get("Kind") != "connect-proxy":
            raise EnvoyCLIError(f"Service {proxy_id!r} is not a connect-proxy")
        return service
    if not sidecar_for:
        raise EnvoyCLIError("No proxy ID specified. One of -proxy-id or -sidecar-for is required")
    services: dict[str, dict[str, Any]] = client.request("GET", "/v1/agent/services").json()
    matches = sorted(
        (
            svc
            for svc in services.values()
            if svc.get("Kind") == "connect-proxy"
            and str((svc.get("Proxy") or {}).get("DestinationServiceID", "")).lower()
            == sidecar_for.lower()
        ),
        key=lambda svc: svc["ID"],
    )
    if not matches:
        raise EnvoyCLIError(f"No sidecar proxy registered for {sidecar_for}")
    if len(matches) > 1:
        ids = ", ".join(svc["ID"] for svc in matches)
        raise EnvoyCLIError(
            f"More than one sidecar proxy registered for {sidecar_for}. Start proxy with "
            f"-proxy-id and one of the following IDs: {ids}"
        )
    return matches[0]


def grpc_target(
    flag: str | None, http_base: str, xds: dict[str, Any] | None, ca_file: str | None
) -> tuple[str, int, str | None]:
    """(host, port, CA PEM or None) of the agent's xDS listener."""
    raw = flag or os.environ.get("CONSUL_GRPC_ADDR") or ""
    ca_file = ca_file or os.environ.get("CONSUL_GRPC_CACERT") or None
    if raw.startswith("unix://"):
        return raw, 0, None
    if not raw:
        host = urllib.parse.urlsplit(http_base).hostname or "127.0.0.1"
        ports = (xds or {}).get("Ports") or {}
        tls, plain = int(ports.get("TLS") or -1), int(ports.get("Plaintext") or -1)
        # TLS is preferred, as in Consul, when we can verify it (a CA) or it is all there is
        if tls > 0 and (ca_file or plain <= 0):
            raw = f"https://{host}:{tls}"
        elif plain > 0:
            raw = f"http://{host}:{ports['Plaintext']}"
        else:
            print(
                "Warning: the agent reports no gRPC (xDS) port; trying localhost:8502",
                file=sys.stderr,
            )
            raw = "http://127.0.0.1:8502"
    if "://" not in raw:
        raw = "http://" + raw
    parts = urllib.parse.urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise EnvoyCLIError(f"invalid -grpc-addr {raw!r}: want [http[s]://]host:port")
    ca_pem = None
    if parts.scheme == "https":
        if not ca_file:
            raise EnvoyCLIError("a TLS gRPC address needs -grpc-ca-file (or CONSUL_GRPC_CACERT)")
        try:
            with open(ca_file, encoding="utf-8") as fh:
                ca_pem = fh.read()
        except OSError as exc:
            raise EnvoyCLIError(f"reading the gRPC CA file: {exc}") from exc
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    return host, port, ca_pem


def build_bootstrap(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    from consulpy.xds.bootstrap import bootstrap_config, stats_bind

    if args.gateway:
        if args.sidecar_for:
            raise EnvoyCLIError("-sidecar-for and -gateway are mutually exclusive")
        proxy = find_gateway(client, args)
    elif args.register:
        raise EnvoyCLIError("-register is only supported with -gateway")
    elif args.wan_address:
        raise EnvoyCLIError("-wan-address is only supported with -gateway=mesh")
    else:
        proxy = find_proxy(client, args.sidecar_for, args.proxy_id)
    resp = client.request("GET", "/v1/agent/self", ok=(200, 403))
    if resp.status == 403:
        # A service token has no agent:read: carry on with the defaults (the xDS port from
        # -grpc-addr or 8502, the datacenter of the proxy's registration), as Consul does.
        info: dict[str, Any] = {"Config": {"Datacenter": proxy.get("Datacenter") or "dc1"}}
    else:
        info = resp.json()
    host, port, ca_pem = grpc_target(
        args.grpc_addr, client.base, info.get("xDS"), args.grpc_ca_file
    )
    destination = (proxy.get("Proxy") or {}).get("DestinationServiceName") or proxy["Service"]
    config = (proxy.get("Proxy") or {}).get("Config") or {}
    try:
        return bootstrap_config(
            proxy["ID"],
            destination,
            agent_grpc_host=host,
            agent_grpc_port=port,
            admin_bind=args.admin_bind,
            token=client.token,
            ca_pem=ca_pem,
            datacenter=info["Config"]["Datacenter"],
            admin_access_log_path=args.admin_log,
            prometheus_bind=stats_bind(config, "envoy_prometheus_bind_addr"),
            stats_bind=stats_bind(config, "envoy_stats_bind_addr"),
        )
    except ValueError as exc:
        raise EnvoyCLIError(str(exc)) from exc


def _config_fd(document: bytes) -> int:
    """An inheritable fd holding the bootstrap (memfd where there is one, else an unlinked
    temporary file)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("envoy-bootstrap", 0)
    else:
        fd, path = tempfile.mkstemp(prefix="envoy-bootstrap-")
        os.unlink(path)
    os.write(fd, document)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def exec_envoy(binary: str, bootstrap: dict[str, Any], extra: list[str]) -> None:
    """Replace this process with Envoy reading ``bootstrap``."""
    fd = _config_fd(json.dumps(bootstrap).encode())
    argv = [binary, "--config-path", f"/dev/fd/{fd}"]
    # Several sidecars share a host; hot restart's shared memory would make them collide.
    if not any(a.split("=", 1)[0] in HOT_RESTART_FLAGS for a in extra):
        argv.append("--disable-hot-restart")
    # An intention change replaces the public listener; Envoy drains the old one. "immediate"
    # asks every kept-alive connection to close at its next response, so a new deny applies
    # from the next connection instead of lingering on pooled ones for the gradual drain.
    if not any(a.split("=", 1)[0] == "--drain-strategy" for a in extra):
        argv += ["--drain-strategy", "immediate"]
    os.execv(binary, argv + extra)


def envoy_main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = _parser().parse_args(argv)
    client = Client.from_args(args)
    try:
        bootstrap = build_bootstrap(client, args)
    except (APIError, EnvoyCLIError) as exc:
        return fail(f"Error: {exc}")
    if args.bootstrap:
        print(json.dumps(bootstrap, indent=2))
        return 0
    from consulpy.xds.bootstrap import envoy_binary

    try:
        binary = args.envoy_binary or envoy_binary()
    except FileNotFoundError as exc:
        return fail(f"Error: {exc}")
    sys.stdout.flush()
    try:
        exec_envoy(binary, bootstrap, extra)
    except OSError as exc:
        return fail(f"Error: starting Envoy ({binary}): {exc}")
    return 1  # not reached: exec replaced the process
