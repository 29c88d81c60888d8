"""`consulpy kv get|put|delete|export|import`, with Consul's flags and messages."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

from consulpy.cli.client import APIError, Client, add_http_flags, fail

USAGE = """Usage: consulpy kv <subcommand> [options] [args]

Subcommands:
    delete    Removes data from the KV store
    export    Exports a tree from the KV store as JSON
    get       Retrieves or lists data from the KV store
    import    Imports a tree stored as JSON to the KV store
    put       Sets or updates data in the KV store"""


def _parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"consulpy kv {name}", allow_abbrev=False)
    add_http_flags(parser)
    return parser


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    parser.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)


def _read_data(arg: str | None) -> bytes:
    """Consul's DATA argument: literal, `@file`, or `-` for stdin."""
    if arg is None:
        return b""
    if arg == "-":
        return sys.stdin.buffer.read()
    if arg.startswith("@"):
        with open(arg[1:], "rb") as fh:
            return fh.read()
    return arg.encode()


def _print_detailed(entry: dict[str, Any], as_base64: bool) -> None:
    value = base64.b64decode(entry["Value"]) if entry.get("Value") else b""
    shown = base64.b64encode(value).decode() if as_base64 else value.decode("utf-8", "replace")
    rows = [
        ("CreateIndex", entry["CreateIndex"]),
        ("Flags", entry["Flags"]),
        ("Key", entry["Key"]),
        ("LockIndex", entry["LockIndex"]),
        ("ModifyIndex", entry["ModifyIndex"]),
        ("Session", entry.get("Session") or "-"),
        ("Value", shown),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def cmd_get(argv: list[str]) -> int:
    p = _parser("get")
    _flag(p, "recurse", action="store_true")
    _flag(p, "keys", action="store_true")
    _flag(p, "separator", default="/")
    _flag(p, "detailed", action="store_true")
    _flag(p, "base64", action="store_true")
    p.add_argument("key", nargs="?", default="")
    args = p.parse_args(argv)
    client = Client.from_args(args)
    key = args.key
    if key.startswith("/"):
        return fail("Error! Key must not begin with a '/'")
    if args.keys:
        resp = client.request(
            "GET",
            f"/v1/kv/{key}",
            {"keys": True, "separator": args.separator or None},
            ok=(200, 404),
        )
        for k in resp.json() or []:
            print(k)
        return 0
    if args.recurse:
        resp = client.request("GET", f"/v1/kv/{key}", {"recurse": True}, ok=(200, 404))
        for entry in resp.json() or []:
            if args.detailed:
                _print_detailed(entry, args.base64)
                print()
                continue
            value = base64.b64decode(entry["Value"]) if entry.get("Value") else b""
            shown = (
                base64.b64encode(value).decode()
                if args.base64
                else value.decode("utf-8", "replace")
            )
            print(f"{entry['Key']}:{shown}")
        return 0
    if not key:
        return fail("Error! Missing KEY argument")
    resp = client.request("GET", f"/v1/kv/{key}", ok=(200, 404))
    if resp.status == 404:
        return fail(f"Error! No key exists at: {key}")
    entry = resp.json()[0]
    if args.detailed:
        _print_detailed(entry, args.base64)
        return 0
    value = base64.b64decode(entry["Value"]) if entry.get("Value") else b""
    if args.base64:
        print(base64.b64encode(value).decode())
    else:
        sys.stdout.buffer.write(value + b"\n")
        sys.stdout.flush()
    return 0


def cmd_put(argv: list[str]) -> int:
    p = _parser("put")
    # -cas with -modify-index=0 (the default) writes only if the key does not exist.
    _flag(p, "cas", action="store_true")
    _flag(p, "modify-index", type=int, default=0)
    _flag(p, "flags", type=int, default=0)
    _flag(p, "acquire", action="store_true")
    _flag(p, "release", action="store_true")
    _flag(p, "session", default="")
    _flag(p, "base64", action="store_true")
    p.add_argument("key")
    p.add_argument("data", nargs="?")
    args = p.parse_args(argv)
    key = args.key
    if key.startswith("/"):
        return fail("Error! Key must not begin with a '/'")
    if (args.acquire or args.release) and not args.session:
        return fail("Error! Missing -session (required with -acquire and -release)")
    data = _read_data(args.data)
    if args.base64:
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError as exc:
            return fail(f"Error! Cannot base 64 decode data: {exc}")
    client = Client.from_args(args)
    params: dict[str, Any] = {"flags": args.flags or None}
    if args.cas:
        params["cas"] = args.modify_index
    elif args.acquire:
        params["acquire"] = args.session
    elif args.release:
        params["release"] = args.session
    try:
        resp = client.request("PUT", f"/v1/kv/{key}", params, body=data)
    except APIError as exc:
        return fail(f"Error! Failed writing data: {exc}")
    ok = resp.json() is True
    if args.cas:
        if not ok:
            return fail(f"Error! Did not write to {key}: CAS failed")
        print(f"Success! Data written to: {key}")
    elif args.acquire:
        if not ok:
            return fail(f"Error! Did not acquire lock on {key}")
        print(f"Success! Lock acquired on: {key}")
    elif args.release:
        if not ok:
            return fail(f"Error! Did not release lock on {key}")
        print(f"Success! Lock released on: {key}")
    else:
        print(f"Success! Data written to: {key}")
    return 0


def cmd_delete(argv: list[str]) -> int:
    p = _parser("delete")
    _flag(p, "cas", action="store_true")
    _flag(p, "modify-index", type=int, default=0)
    _flag(p, "recurse", action="store_true")
    p.add_argument("key", nargs="?", default="")
    args = p.parse_args(argv)
    key = args.key
    if args.recurse and args.cas:
        return fail("Cannot specify both -cas and -recurse!")
    if args.cas and args.modify_index == 0:
        return fail("Must specify -modify-index with -cas!")
    if not key and not args.recurse:
        return fail("Error! Missing KEY argument")
    client = Client.from_args(args)
    params: dict[str, Any] = {}
    if args.recurse:
        params["recurse"] = True
    if args.cas:
        params["cas"] = args.modify_index
    try:
        resp = client.request("DELETE", f"/v1/kv/{key}", params)
    except APIError as exc:
        return fail(f"Error! Error deleting key {key}: {exc}")
    if args.cas and resp.json() is not True:
        return fail(f"Error! Did not delete key {key}: CAS failed")
    if args.recurse:
        print(f"Success! Deleted keys with prefix: {key}")
    else:
        print(f"Success! Deleted key: {key}")
    return 0


def cmd_export(argv: list[str]) -> int:
    p = _parser("export")
    p.add_argument("prefix", nargs="?", default="")
    args = p.parse_args(argv)
    client = Client.from_args(args)
    resp = client.request("GET", f"/v1/kv/{args.prefix}", {"recurse": True}, ok=(200, 404))
    exported = [
        {"key": e["Key"], "flags": e["Flags"], "value": e.get("Value") or ""}
        for e in resp.json() or []
    ]
    print(json.dumps(exported, indent="\t"))
    return 0


def cmd_import(argv: list[str]) -> int:
    p = _parser("import")
    _flag(p, "prefix", default="")
    p.add_argument("data", nargs="?", default="-")
    args = p.parse_args(argv)
    raw = _read_data(args.data)
    try:
        entries = json.loads(raw)
        if not isinstance(entries, list):
            raise ValueError("expected a JSON array")
    except ValueError as exc:
        return fail(f"Cannot unmarshal data: {exc}")
    client = Client.from_args(args)
    for entry in entries:
        try:
            key = args.prefix + entry["key"]
            value = base64.b64decode(entry.get("value") or "", validate=True)
            flags = int(entry.get("flags", 0))
        except (KeyError, TypeError, ValueError) as exc:
            return fail(f"Error! Invalid entry {entry!r}: {exc}")
        try:
            client.request("PUT", f"/v1/kv/{key}", {"flags": flags or None}, body=value)
        except APIError as exc:
            return fail(f"Error! Failed to write {key}: {exc}")
        print(f"Imported: {key}")
    return 0


SUBCOMMANDS = {
    "get": cmd_get,
    "put": cmd_put,
    "delete": cmd_delete,
    "export": cmd_export,
    "import": cmd_import,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SUBCOMMANDS:
        print(USAGE, file=sys.stderr)
        return 1
    try:
        return SUBCOMMANDS[argv[0]](argv[1:])
    except APIError as exc:
        return fail(f"Error! {exc}")
