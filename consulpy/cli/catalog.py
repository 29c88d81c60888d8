"""`consulpy catalog`, `services`, `maint` and `reload`: HTTP clients of the local agent with
`consul`'s flags and messages."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from consulpy.cli.client import APIError, Client, fail, make_parser, table


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)


# ------------------------------------------------------------------ catalog
def catalog_main(argv: list[str]) -> int:
    usage = "Usage: consulpy catalog <datacenters|nodes|services> [options]"
    if not argv or argv[0] not in ("datacenters", "nodes", "services"):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[0], argv[1:]
    p = make_parser(f"consulpy catalog {sub}")
    if sub == "nodes":
        _flag(p, "detailed", action="store_true")
        _flag(p, "service", default="")
        _flag(p, "node-meta", action="append", default=[])
        _flag(p, "filter", default="")
    elif sub == "services":
        _flag(p, "tags", action="store_true")
        _flag(p, "node", default="")
        _flag(p, "node-meta", action="append", default=[])
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        if sub == "datacenters":
            for dc in client.request("GET", "/v1/catalog/datacenters").json():
                print(dc)
            return 0
        if sub == "nodes":
            return _catalog_nodes(client, args)
        return _catalog_services(client, args)
    except APIError as exc:
        return fail(f"Error listing {sub}: {exc}")


def _meta_params(pairs: list[str]) -> list[tuple[str, str]]:
    return [("node-meta", p.replace("=", ":", 1)) for p in pairs]


def _catalog_nodes(client: Client, args: argparse.Namespace) -> int:
    if args.service:
        rows = client.request("GET", f"/v1/catalog/service/{args.service}").json()
        nodes = [
            {
                "Node": r["Node"],
                "ID": r["ID"],
                "Address": r["Address"],
                "Datacenter": r["Datacenter"],
                "TaggedAddresses": r["TaggedAddresses"],
                "Meta": r["NodeMeta"],
            }
            for r in rows
        ]
    else:
        params: dict[str, Any] = {"filter": args.filter or None}
        path = "/v1/catalog/nodes"
        if args.node_meta:
            from urllib.parse import urlencode

            path += "?" + urlencode(_meta_params(args.node_meta))
        nodes = client.request("GET", path, params).json()
    if not nodes:
        return fail("No nodes match the given query.")
    header = ["Node", "ID", "Address", "DC"]
    rows = [header]
    for n in nodes:
        row = [n["Node"], (n["ID"] or "")[:8], n["Address"], n["Datacenter"]]
        if args.detailed:
            tagged = ", ".join(f"{k}={v}" for k, v in sorted((n["TaggedAddresses"] or {}).items()))
            meta = ", ".join(f"{k}={v}" for k, v in sorted((n["Meta"] or {}).items()))
            row = [n["Node"], n["ID"] or "", n["Address"], n["Datacenter"], tagged, meta]
        rows.append(row)
    if args.detailed:
        rows[0] = [*header, "TaggedAddresses", "Meta"]
    print(table(rows))
    return 0


def _catalog_services(client: Client, args: argparse.Namespace) -> int:
    if args.node:
        info = client.request("GET", f"/v1/catalog/node/{args.node}").json()
        if info is None:
            return fail(f"No node {args.node!r} in the catalog")
        services: dict[str, list[str]] = {}
        for svc in info["Services"].values():
            services.setdefault(svc["Service"], []).extend(svc["Tags"])
    else:
        path = "/v1/catalog/services"
        if args.node_meta:
            from urllib.parse import urlencode

            path += "?" + urlencode(_meta_params(args.node_meta))
        services = client.request("GET", path).json()
    if not services:
        return fail("No services match the given query.")
    if args.tags:
        print(
            table([[name, ",".join(sorted(set(tags)))] for name, tags in sorted(services.items())])
        )
    else:
        for name in sorted(services):
            print(name)
    return 0


# ----------------------------------------------------------------- services
def _definitions_from_files(paths: list[str]) -> list[dict[str, Any]]:
    """Service definitions (API spelling) from JSON or HCL files with `service` blocks."""
    from consulpy.config import load_config_files

    out: list[dict[str, Any]] = []
    for source in load_config_files(paths):
        out.extend(source.data.get("services") or [])
    return out


def services_main(argv: list[str]) -> int:
    usage = "Usage: consulpy services <register|deregister> [options] [FILE...]"
    if not argv or argv[0] not in ("register", "deregister"):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[0], argv[1:]
    p = make_parser(f"consulpy services {sub}")
    _flag(p, "id", default="")
    if sub == "register":
        _flag(p, "name", default="")
        _flag(p, "address", default="")
        _flag(p, "port", type=int, default=0)
        _flag(p, "tag", action="append", default=[])
        _flag(p, "meta", action="append", default=[])
    p.add_argument("files", nargs="*")
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        definitions = _definitions_from_files(args.files) if args.files else []
    except Exception as exc:  # config errors name the file and field
        return fail(f"Error: {exc}")
    if sub == "register":
        if not definitions:
            if not args.name:
                return fail("Service name must be specified via the -name flag or a file")
            meta = dict(m.split("=", 1) for m in args.meta if "=" in m)
            definitions = [
                {
                    "Name": args.name,
                    "ID": args.id or args.name,
                    "Address": args.address,
                    "Port": args.port,
                    "Tags": args.tag,
                    "Meta": meta,
                }
            ]
        for body in definitions:
            try:
                client.request("PUT", "/v1/agent/service/register", body=json.dumps(body).encode())
            except APIError as exc:
                return fail(f"Error registering service {body.get('Name')!r}: {exc}")
            print(f"Registered service: {body.get('Name')}")
        return 0
    ids = [args.id] if args.id else []
    ids.extend(body.get("ID") or body.get("Name") for body in definitions)
    if not ids:
        return fail("Service ID must be specified via the -id flag or a file")
    for sid in ids:
        try:
            client.request("PUT", f"/v1/agent/service/deregister/{sid}")
        except APIError as exc:
            return fail(f"Error deregistering service {sid!r}: {exc}")
        print(f"Deregistered service: {sid}")
    return 0


# -------------------------------------------------------------------- maint
def maint_main(argv: list[str]) -> int:
    p = make_parser("consulpy maint")
    _flag(p, "enable", action="store_true")
    _flag(p, "disable", action="store_true")
    _flag(p, "reason", default="")
    _flag(p, "service", default="")
    args = p.parse_args(argv)
    if args.enable and args.disable:
        return fail("Only one of -enable or -disable may be provided")
    client = Client.from_args(args)
    try:
        if not args.enable and not args.disable:
            return _maint_list(client)
        params = {"enable": "true" if args.enable else "false", "reason": args.reason or None}
        state = "enabled" if args.enable else "disabled"
        if args.service:
            client.request("PUT", f"/v1/agent/service/maintenance/{args.service}", params)
            print(f'Service maintenance is now {state} for "{args.service}"')
        else:
            client.request("PUT", "/v1/agent/maintenance", params)
            print(f"Node maintenance is now {state}")
    except APIError as exc:
        return fail(f"Error: {exc}")
    return 0


def _maint_list(client: Client) -> int:
    checks = client.request("GET", "/v1/agent/checks").json()
    node_name = client.request("GET", "/v1/agent/self").json()["Config"]["NodeName"]
    for cid, check in sorted(checks.items()):
        if cid == "_node_maintenance":
            print(f"Node:\n  Name:   {node_name}\n  Reason: {check['Notes']}\n")
        elif cid.startswith("_service_maintenance:"):
            print(f"Service:\n  ID:     {check['ServiceID']}\n  Reason: {check['Notes']}\n")
    return 0


# ------------------------------------------------------------------- reload
def reload_main(argv: list[str]) -> int:
    args = make_parser("consulpy reload").parse_args(argv)
    try:
        Client.from_args(args).request("PUT", "/v1/agent/reload")
    except APIError as exc:
        return fail(f"Error reloading: {exc}")
    print("Configuration reload triggered")
    return 0
