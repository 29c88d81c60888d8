"""`consulpy members`: the gossip members this agent sees, as `consul members` prints them."""

from __future__ import annotations

import argparse

from consulpy.cli.client import APIError, Client, add_http_flags, fail, table

STATUS = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="consulpy members", allow_abbrev=False)
    add_http_flags(parser)
    parser.add_argument("-detailed", "--detailed", action="store_true")
    parser.add_argument("-wan", "--wan", action="store_true")
    parser.add_argument("-status", "--status", default="")
    args = parser.parse_args(argv)
    client = Client.from_args(args)
    try:
        members = client.request(
            "GET", "/v1/agent/members", {"wan": "1" if args.wan else None}
        ).json()
    except APIError as exc:
        return fail(f"Error retrieving members: {exc}")
    members.sort(key=lambda m: m["Name"])
    if args.status:
        import re

        pattern = re.compile(args.status)
        members = [m for m in members if pattern.search(STATUS.get(m["Status"], ""))]
    if not members:
        return 2 if args.status else 0
    if args.detailed:
        rows = [["Node", "Address", "Status", "Tags"]]
        for m in members:
            tags = ",".join(f"{k}={v}" for k, v in sorted(m["Tags"].items()))
            rows.append([m["Name"], f"{m['Addr']}:{m['Port']}", STATUS.get(m["Status"], "?"), tags])
    else:
        rows = [
            ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
        ]
        for m in members:
            tags = m["Tags"]
            kind = "server" if tags.get("role") == "consul" else "client"
            build = tags.get("build", "").split(":")[0]
            rows.append(
                [
                    m["Name"],
                    f"{m['Addr']}:{m['Port']}",
                    STATUS.get(m["Status"], "?"),
                    kind,
                    build,
                    tags.get("vsn", ""),
                    tags.get("dc", ""),
                    "default",
                    "<all>" if kind == "server" else tags.get("segment", "") or "<default>",
                ]
            )
    print(table(rows))
    return 0
