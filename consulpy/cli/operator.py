"""`consulpy operator raft ...`, `consulpy info` and `consulpy snapshot ...`."""

from __future__ import annotations

import argparse
import os
import sys

from consulpy.cli.client import APIError, Client, add_http_flags, fail


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    add_http_flags(parser)
    return parser


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# ------------------------------------------------------------------ operator
def operator_main(argv: list[str]) -> int:
    usage = "Usage: consulpy operator raft <list-peers|remove-peer|transfer-leader> [options]"
    if (
        len(argv) < 2
        or argv[0] != "raft"
        or argv[1] not in ("list-peers", "remove-peer", "transfer-leader")
    ):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[1], argv[2:]
    p = _parser(f"consulpy operator raft {sub}")
    if sub in ("remove-peer", "transfer-leader"):
        p.add_argument("-id", "--id", dest="id", default="")
    if sub == "remove-peer":
        p.add_argument("-address", "--address", dest="address", default="")
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        if sub == "list-peers":
            config = client.request("GET", "/v1/operator/raft/configuration").json()
            rows = [["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]]
            for s in config["Servers"]:
                rows.append(
                    [
                        s["Node"],
                        s["ID"],
                        s["Address"],
                        "leader" if s["Leader"] else "follower",
                        str(s["Voter"]).lower(),
                        s["ProtocolVersion"],
                    ]
                )
            print(_table(rows))
            return 0
        if sub == "remove-peer":
            if bool(args.id) == bool(args.address):
                return fail("Must specify exactly one of -id or -address")
            client.request(
                "DELETE",
                "/v1/operator/raft/peer",
                {"id": args.id or None, "address": args.address or None},
            )
            what = f'id "{args.id}"' if args.id else f'address "{args.address}"'
            print(f"Removed peer with {what}")
            return 0
        client.request("POST", "/v1/operator/raft/transfer-leader", {"id": args.id or None})
        print("Success")
        return 0
    except APIError as exc:
        return fail(f"Error: {exc}")


# ---------------------------------------------------------------------- info
def info_main(argv: list[str]) -> int:
    args = _parser("consulpy info").parse_args(argv)
    try:
        me = Client.from_args(args).request("GET", "/v1/agent/self").json()
    except APIError as exc:
        return fail(f"Error querying agent: {exc}")
    for section, values in sorted(me["Stats"].items()):
        print(f"{section}:")
        for key, value in sorted(values.items()):
            print(f"\t{key} = {value}")
    return 0


# ------------------------------------------------------------------ snapshot
def snapshot_main(argv: list[str]) -> int:
    usage = "Usage: consulpy snapshot <save|restore|inspect> [options] FILE"
    if not argv or argv[0] not in ("save", "restore", "inspect"):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[0], argv[1:]
    p = _parser(f"consulpy snapshot {sub}")
    p.add_argument("file")
    args = p.parse_args(rest)
    from consulpy.server import snapshot_archive

    if sub == "inspect":
        try:
            with open(args.file, "rb") as fh:
                meta, state = snapshot_archive.read(fh.read())
        except (OSError, snapshot_archive.ArchiveError) as exc:
            return fail(f"Error verifying snapshot file: {exc}")
        rows = [
            ["ID", meta["ID"]],
            ["Size", str(len(state))],
            ["Index", str(meta["Index"])],
            ["Term", str(meta["Term"])],
            ["Version", str(meta["Version"])],
            ["Datacenter", meta["Datacenter"]],
            ["Created", meta["CreatedAt"]],
        ]
        print(_table(rows))
        return 0
    client = Client.from_args(args)
    client.timeout = 600
    try:
        if sub == "save":
            resp = client.request("GET", "/v1/snapshot")
            meta, _ = snapshot_archive.read(resp.body)  # verify before writing
            tmp = args.file + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(resp.body)
            os.replace(tmp, args.file)
            print(f"Saved and verified snapshot to index {meta['Index']}")
            return 0
        with open(args.file, "rb") as fh:
            data = fh.read()
        client.request("PUT", "/v1/snapshot", body=data)
        print("Restored snapshot")
        return 0
    except (OSError, snapshot_archive.ArchiveError) as exc:
        return fail(f"Error: {exc}")
    except APIError as exc:
        return fail(f"Error: {exc}")
