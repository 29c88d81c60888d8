"""`consulpy intention ...`, `consulpy connect ca ...` and `consulpy config ...`, with
consul's flags and messages."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from consulpy.cli.client import APIError, Client, fail, make_parser, table

# ---------------------------------------------------------------- intentions
INTENTION_USAGE = "Usage: consulpy intention <create|delete|get|list|check|match> [options]"


def intention_main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("create", "delete", "get", "list", "check", "match"):
        print(INTENTION_USAGE, file=sys.stderr)
        return 1
    sub, rest = argv[0], argv[1:]
    p = make_parser(f"consulpy intention {sub}")
    if sub == "create":
        p.add_argument("-allow", "--allow", action="store_true")
        p.add_argument("-deny", "--deny", action="store_true")
        p.add_argument("-replace", "--replace", action="store_true")
        p.add_argument("-file", "--file", action="store_true")
        p.add_argument("-meta", "--meta", action="append", default=[])
        p.add_argument("-description", "--description", default="")
    if sub == "match":
        p.add_argument("-source", "--source", action="store_true")
        p.add_argument("-destination", "--destination", action="store_true")
    p.add_argument("args", nargs="*")
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        return _INTENTION_COMMANDS[sub](client, args)
    except APIError as exc:
        return fail(f"Error: {exc}")


def _intention_create(client: Client, args: argparse.Namespace) -> int:
    if args.file:
        created = 0
        for path in args.args:
            with open(path, encoding="utf-8") as fh:
                body = json.load(fh)
            client.request(
                "PUT",
                "/v1/connect/intentions/exact",
                {"source": body["SourceName"], "destination": body["DestinationName"]},
                body=json.dumps(body).encode(),
            )
            created += 1
            print(f"Created: {body['SourceName']} => {body['DestinationName']}")
        return 0 if created else fail("Error: -file requires at least one file")
    if len(args.args) != 2:
        return fail("Error: intention create requires exactly two arguments: SRC DST")
    if args.allow and args.deny:
        return fail("Error: only one of -allow or -deny may be specified")
    source, destination = args.args
    exact = {"source": source, "destination": destination}
    if not args.replace:
        resp = client.request("GET", "/v1/connect/intentions/exact", exact, ok=(200, 404))
        if resp.status == 200:
            return fail(
                f"Intention with source {source!r} and destination {destination!r} already exists"
            )
    meta = dict(m.split("=", 1) for m in args.meta if "=" in m)
    body: dict[str, Any] = {
        "SourceType": "consul",
        "Action": "deny" if args.deny else "allow",
        "Description": args.description,
    }
    if meta:
        body["Meta"] = meta
    client.request("PUT", "/v1/connect/intentions/exact", exact, body=json.dumps(body).encode())
    print(f"Created: {source} => {destination} ({body['Action']})")
    return 0


def _intention_delete(client: Client, args: argparse.Namespace) -> int:
    if len(args.args) == 1:
        client.request("DELETE", f"/v1/connect/intentions/{args.args[0]}")
    elif len(args.args) == 2:
        client.request(
            "DELETE",
            "/v1/connect/intentions/exact",
            {"source": args.args[0], "destination": args.args[1]},
        )
    else:
        return fail("Error: intention delete requires SRC DST or an ID")
    print("Intention deleted.")
    return 0


def _intention_get(client: Client, args: argparse.Namespace) -> int:
    if len(args.args) == 1:
        intention = client.request("GET", f"/v1/connect/intentions/{args.args[0]}").json()
    elif len(args.args) == 2:
        intention = client.request(
            "GET",
            "/v1/connect/intentions/exact",
            {"source": args.args[0], "destination": args.args[1]},
        ).json()
    else:
        return fail("Error: intention get requires SRC DST or an ID")
    rows = [
        ["Source:", intention["SourceName"]],
        ["Destination:", intention["DestinationName"]],
        ["Action:", intention.get("Action") or "(L7 permissions)"],
        ["Precedence:", str(intention["Precedence"])],
    ]
    if intention.get("ID"):
        rows.insert(0, ["ID:", intention["ID"]])
    if intention.get("Description"):
        rows.append(["Description:", intention["Description"]])
    print(table(rows))
    return 0


def _intention_list(client: Client, args: argparse.Namespace) -> int:
    intentions = client.request("GET", "/v1/connect/intentions").json()
    if not intentions:
        print("There are no intentions.")
        return 0
    rows = [["ID", "Source", "Action", "Destination", "Precedence"]]
    for i in intentions:
        rows.append(
            [
                i.get("ID") or "",
                i["SourceName"],
                i.get("Action") or "l7",
                i["DestinationName"],
                str(i["Precedence"]),
            ]
        )
    print(table(rows))
    return 0


def _intention_check(client: Client, args: argparse.Namespace) -> int:
    if len(args.args) != 2:
        return fail("Error: intention check requires exactly two arguments: SRC DST")
    allowed = client.request(
        "GET", "/v1/connect/intentions/check", {"source": args.args[0], "destination": args.args[1]}
    ).json()["Allowed"]
    print("Allowed" if allowed else "Denied")
    return 0 if allowed else 2


def _intention_match(client: Client, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return fail("Error: intention match requires exactly one argument: a service name")
    by = "source" if args.source else "destination"
    matches = client.request(
        "GET", "/v1/connect/intentions/match", {"by": by, "name": args.args[0]}
    ).json()
    for i in matches.get(args.args[0]) or []:
        print(f"{i['SourceName']} => {i['DestinationName']} ({i.get('Action') or 'l7'})")
    return 0


_INTENTION_COMMANDS = {
    "create": _intention_create,
    "delete": _intention_delete,
    "get": _intention_get,
    "list": _intention_list,
    "check": _intention_check,
    "match": _intention_match,
}


# ------------------------------------------------------------------ connect
def connect_main(argv: list[str]) -> int:
    usage = (
        "Usage: consulpy connect ca <get-config|set-config> [options]\n"
        "       consulpy connect envoy [-sidecar-for ID | -proxy-id ID] [options] [-- envoy args]\n"
        "       consulpy connect envoy -gateway=mesh [-register -address A -wan-address A] "
        "[options]"
    )
    if argv and argv[0] == "envoy":
        from consulpy.cli.envoy import envoy_main

        return envoy_main(argv[1:])
    if len(argv) < 2 or argv[0] != "ca" or argv[1] not in ("get-config", "set-config"):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[1], argv[2:]
    p = make_parser(f"consulpy connect ca {sub}")
    if sub == "set-config":
        p.add_argument("-config-file", "--config-file", dest="config_file", required=True)
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        if sub == "get-config":
            print(
                json.dumps(client.request("GET", "/v1/connect/ca/configuration").json(), indent=4)
            )
            return 0
        with open(args.config_file, encoding="utf-8") as fh:
            body = fh.read().encode()
        client.request("PUT", "/v1/connect/ca/configuration", body=body)
        print("Configuration updated!")
        return 0
    except (OSError, APIError) as exc:
        return fail(f"Error: {exc}")


# ------------------------------------------------------------------- config
def config_main(argv: list[str]) -> int:
    usage = "Usage: consulpy config <write|read|list|delete> [options]"
    if not argv or argv[0] not in ("write", "read", "list", "delete"):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[0], argv[1:]
    p = make_parser(f"consulpy config {sub}")
    if sub in ("read", "list", "delete"):
        p.add_argument("-kind", "--kind", default="")
    if sub in ("read", "delete"):
        p.add_argument("-name", "--name", default="")
    if sub in ("write", "delete"):
        p.add_argument("-cas", "--cas", action="store_true")
        p.add_argument("-modify-index", "--modify-index", dest="modify_index", type=int, default=0)
    if sub == "write":
        p.add_argument("file")
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        if sub == "write":
            return _config_write(client, args)
        if not args.kind:
            return fail("Must specify the -kind parameter")
        if sub == "list":
            for entry in client.request("GET", f"/v1/config/{args.kind}").json():
                print(entry["Name"])
            return 0
        if not args.name:
            return fail("Must specify the -name parameter")
        if sub == "read":
            entry = client.request("GET", f"/v1/config/{args.kind}/{args.name}").json()
            print(json.dumps(entry, indent=4))
            return 0
        params = {"cas": args.modify_index} if args.cas else {}
        result = client.request("DELETE", f"/v1/config/{args.kind}/{args.name}", params).json()
        if args.cas and result is not True:
            return fail(f'Config entry not deleted "{args.kind}/{args.name}"')
        print(f"Config entry deleted: {args.kind}/{args.name}")
        return 0
    except APIError as exc:
        return fail(f"Error: {exc}")


def _config_write(client: Client, args: argparse.Namespace) -> int:
    from consulpy.config.hcl import parse_hcl

    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        return fail(f"Failed to read the config entry: {exc}")
    try:
        body = json.loads(text)
    except ValueError:
        try:
            body = parse_hcl(text, args.file)
        except Exception as exc:
            return fail(f"Failed to decode config entry input: {exc}")
    params = {"cas": args.modify_index} if args.cas else {}
    ok = client.request("PUT", "/v1/config", params, body=json.dumps(body).encode()).json()
    kind = body.get("Kind") or body.get("kind")
    name = body.get("Name") or body.get("name")
    if ok is not True:
        return fail(f'Config entry not updated: "{kind}" / "{name}"')
    print(f"Config entry written: {kind}/{name}")
    return 0
