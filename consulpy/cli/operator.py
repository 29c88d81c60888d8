"""`consulpy operator raft|autopilot ...`, `consulpy info` and `consulpy snapshot ...`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from consulpy.cli.client import APIError, Client, fail, make_parser, table
from consulpy.util.durations import DurationError, parse_duration_ns
from consulpy.util.goparse import parse_bool

AUTOPILOT_PATH = "/v1/operator/autopilot/configuration"
# get-config's lines, in Consul's order; set-config's flags, with the field each one sets.
AUTOPILOT_KEYS = (
    "CleanupDeadServers",
    "LastContactThreshold",
    "MaxTrailingLogs",
    "MinQuorum",
    "ServerStabilizationTime",
    "RedundancyZoneTag",
    "DisableUpgradeMigration",
    "UpgradeVersionTag",
)
SET_FLAGS: dict[str, tuple[str, str]] = {
    "cleanup-dead-servers": ("CleanupDeadServers", "bool"),
    "max-trailing-logs": ("MaxTrailingLogs", "uint"),
    "min-quorum": ("MinQuorum", "uint"),
    "last-contact-threshold": ("LastContactThreshold", "duration"),
    "server-stabilization-time": ("ServerStabilizationTime", "duration"),
    "redundancy-zone-tag": ("RedundancyZoneTag", "string"),
    "disable-upgrade-migration": ("DisableUpgradeMigration", "bool"),
    "upgrade-version-tag": ("UpgradeVersionTag", "string"),
}


def _flag_value(flag: str, kind: str, raw: str) -> Any:
    if kind == "bool":
        value = parse_bool(raw)
        if value is None:
            raise ValueError(f'invalid boolean value "{raw}" for -{flag}')
        return value
    if kind == "uint":
        if not raw.isdigit():
            raise ValueError(f'invalid value "{raw}" for flag -{flag}: parse error')
        return int(raw)
    if kind == "duration":
        try:
            return parse_duration_ns(raw)
        except DurationError as exc:
            raise ValueError(f'invalid value "{raw}" for flag -{flag}: {exc}') from exc
    return raw


def _print_config(config: dict[str, Any]) -> None:
    for key in AUTOPILOT_KEYS:
        value = config.get(key)
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, str) and key.endswith("Tag"):
            text = json.dumps(value)
        else:
            text = str(value)
        print(f"{key} = {text}")


def _print_state(state: dict[str, Any]) -> None:
    print(f"Healthy:                      {str(state['Healthy']).lower()}")
    print(f"Failure Tolerance:            {state['FailureTolerance']}")
    print(f"Optimistic Failure Tolerance: {state.get('OptimisticFailureTolerance', 0)}")
    print(f"Leader:                       {state.get('Leader', '')}")
    print("Voters:")
    for voter in state.get("Voters") or []:
        print(f"   {voter}")
    print("\nServers:")
    for sid, srv in sorted((state.get("Servers") or {}).items()):
        print(f"   {sid}")
        for label, key in (
            ("Name", "Name"),
            ("Address", "Address"),
            ("Version", "Version"),
            ("Status", "Status"),
            ("Node Type", "NodeType"),
            ("Node Status", "NodeStatus"),
            ("Healthy", "Healthy"),
            ("Last Contact", "LastContact"),
            ("Last Term", "LastTerm"),
            ("Last Index", "LastIndex"),
            ("Stable Since", "StableSince"),
        ):
            value = srv.get(key)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            print(f"      {label + ':':<16} {text}")


def autopilot_main(argv: list[str]) -> int:
    """get-config prints the configuration; set-config changes only the flags given, with a
    check-and-set on the configuration it read (as Consul's CLI); state prints autopilot's
    view of the servers (-format=json for the raw document)."""
    usage = "Usage: consulpy operator autopilot <get-config|set-config|state> [options]"
    if not argv or argv[0] not in ("get-config", "set-config", "state"):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[0], argv[1:]
    p = make_parser(f"consulpy operator autopilot {sub}")
    if sub == "set-config":
        for flag in SET_FLAGS:
            p.add_argument(f"-{flag}", f"--{flag}", dest=flag.replace("-", "_"), default=None)
    if sub == "state":
        p.add_argument("-format", "--format", dest="format", default="pretty")
    args = p.parse_args(rest)
    client = Client.from_args(args)
    try:
        if sub == "state":
            if args.format not in ("pretty", "json"):
                return fail(f"Invalid format: {args.format}")
            state = client.request("GET", "/v1/operator/autopilot/state").json()
            if args.format == "json":
                print(json.dumps(state, indent=2))
            else:
                _print_state(state)
            return 0
        config = client.request("GET", AUTOPILOT_PATH).json()
        if sub == "get-config":
            _print_config(config)
            return 0
        changes: dict[str, Any] = {}
        for flag, (key, kind) in SET_FLAGS.items():
            raw = getattr(args, flag.replace("-", "_"))
            if raw is not None:
                try:
                    changes[key] = _flag_value(flag, kind, raw)
                except ValueError as exc:
                    return fail(str(exc))
        body = {k: config[k] for k in AUTOPILOT_KEYS} | changes
        done = client.request(
            "PUT",
            AUTOPILOT_PATH,
            {"cas": config["ModifyIndex"]},
            json.dumps(body).encode(),
        ).json()
        if done is not True:
            return fail("Configuration could not be atomically updated, please try again")
        print("Configuration updated!")
        return 0
    except APIError as exc:
        return fail(f"Error: {exc}")


# ------------------------------------------------------------------ operator
def operator_main(argv: list[str]) -> int:
    if argv and argv[0] == "autopilot":
        return autopilot_main(argv[1:])
    usage = (
        "Usage: consulpy operator raft <list-peers|remove-peer|transfer-leader|recover> [options]\n"
        "       consulpy operator autopilot <get-config|set-config|state> [options]"
    )
    if (
        len(argv) < 2
        or argv[0] != "raft"
        or argv[1] not in ("list-peers", "remove-peer", "transfer-leader", "recover")
    ):
        print(usage, file=sys.stderr)
        return 1
    sub, rest = argv[1], argv[2:]
    if sub == "recover":
        return _recover_main(rest)
    p = make_parser(f"consulpy operator raft {sub}")
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
            print(table(rows))
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


def _recover_main(argv: list[str]) -> int:
    """Offline repair of a damaged Raft log: drop everything from the first bad frame on.

    What a server refuses to start with (acknowledged entries unreadable) becomes, after this, a
    server that lost those entries and catches up from the leader. Safe when the other servers
    still hold a quorum with the entries; the command says which indexes it dropped."""
    p = argparse.ArgumentParser(prog="consulpy operator raft recover")
    p.add_argument("-data-dir", "--data-dir", dest="data_dir", required=True)
    args = p.parse_args(argv)
    from consulpy.raft.errors import StorageError
    from consulpy.raft.wal import WALLogStore

    wal_dir = os.path.join(args.data_dir, "raft", "wal")
    if not os.path.isdir(wal_dir):
        return fail(f"Error: no Raft log at {wal_dir}")
    try:
        store = WALLogStore(wal_dir, repair=True)
    except (StorageError, OSError) as exc:
        return fail(f"Error: {exc}")
    state = store.load()
    store.close()
    last = state.entries[-1].index if state.entries else 0
    if store.damage is None and store.lost is None:
        print(f"The Raft log in {wal_dir} is intact (last index {last}); nothing to do.")
        return 0
    if store.damage is not None:
        d = store.damage
        where = f" at byte {d.offset} ({d.reason})" if d.offset >= 0 else ""
        print(f"Dropped the damaged part of {d.path}{where}.")
    if store.lost is not None:
        print(
            f"Entries {store.lost[0]}..{store.lost[1]} (and anything after them) are gone from "
            f"this server; it will fetch them from the leader when it rejoins."
        )
    print(f"The log now ends at index {last}. Start the agent again.")
    return 0


# ---------------------------------------------------------------------- info
def info_main(argv: list[str]) -> int:
    args = make_parser("consulpy info").parse_args(argv)
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
    p = make_parser(f"consulpy snapshot {sub}")
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
        print(table(rows))
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
        with open(args.file, "rb") as fh:  # streamed: the archive may be hundreds of MB
            client.request("PUT", "/v1/snapshot", body=fh)
        print("Restored snapshot")
        return 0
    except (OSError, snapshot_archive.ArchiveError) as exc:
        return fail(f"Error: {exc}")
    except APIError as exc:
        return fail(f"Error: {exc}")


# ------------------------------------------------------------ gossip commands
def join_main(argv: list[str]) -> int:
    p = make_parser("consulpy join")
    p.add_argument("-wan", "--wan", action="store_true")
    p.add_argument("addresses", nargs="+")
    args = p.parse_args(argv)
    client = Client.from_args(args)
    joined = 0
    for address in args.addresses:
        try:
            client.request("PUT", f"/v1/agent/join/{address}", {"wan": "1" if args.wan else None})
            joined += 1
        except APIError as exc:
            print(f"Error joining address '{address}': {exc}", file=sys.stderr)
    if not joined:
        return fail("Failed to join any nodes.")
    print(f"Successfully joined cluster by contacting {joined} nodes.")
    return 0


def leave_main(argv: list[str]) -> int:
    args = make_parser("consulpy leave").parse_args(argv)
    try:
        Client.from_args(args).request("PUT", "/v1/agent/leave")
    except APIError as exc:
        return fail(f"Error leaving: {exc}")
    print("Graceful leave complete")
    return 0


def force_leave_main(argv: list[str]) -> int:
    p = make_parser("consulpy force-leave")
    p.add_argument("-prune", "--prune", action="store_true")
    p.add_argument("-wan", "--wan", action="store_true")
    p.add_argument("node")
    args = p.parse_args(argv)
    query = {"prune": True if args.prune else None, "wan": "1" if args.wan else None}
    try:
        Client.from_args(args).request("PUT", f"/v1/agent/force-leave/{args.node}", query)
    except APIError as exc:
        return fail(f"Error force leaving: {exc}")
    return 0


def keygen_main(argv: list[str]) -> int:
    import base64
    import secrets

    argparse.ArgumentParser(prog="consulpy keygen").parse_args(argv)
    print(base64.b64encode(secrets.token_bytes(32)).decode())
    return 0


def keyring_main(argv: list[str]) -> int:
    import json

    p = make_parser("consulpy keyring")
    for name in ("install", "use", "remove"):
        p.add_argument(f"-{name}", f"--{name}", dest=name, default="")
    p.add_argument("-list", "--list", dest="list", action="store_true")
    p.add_argument("-list-primary", "--list-primary", dest="list_primary", action="store_true")
    p.add_argument("-relay-factor", "--relay-factor", dest="relay", type=int, default=0)
    args = p.parse_args(argv)
    chosen = [n for n in ("install", "use", "remove") if getattr(args, n)]
    if args.list or args.list_primary:
        chosen.append("list")
    if len(chosen) != 1:
        return fail("Exactly one of -list, -install, -use, or -remove must be provided")
    client = Client.from_args(args)
    params = {"relay-factor": args.relay or None}
    try:
        if chosen[0] == "list":
            print("==> Gathering installed encryption keys...")
            for pool in client.request("GET", "/v1/operator/keyring", params).json():
                label = "WAN" if pool["WAN"] else f"{pool['Datacenter']} (LAN)"
                print(f"\n{label}:")
                keys = pool["PrimaryKeys"] if args.list_primary else pool["Keys"]
                for key, count in sorted(keys.items()):
                    print(f"  {key} [{count}/{pool['NumNodes']}]")
            return 0
        verb = chosen[0]
        method = {"install": "POST", "use": "PUT", "remove": "DELETE"}[verb]
        body = json.dumps({"Key": getattr(args, verb)}).encode()
        message = {
            "install": "Installing new gossip encryption key...",
            "use": "Changing primary gossip encryption key...",
            "remove": "Removing gossip encryption key...",
        }[verb]
        print(f"==> {message}")
        client.request(method, "/v1/operator/keyring", params, body=body)
        return 0
    except APIError as exc:
        return fail(f"error: {exc}")


def event_main(argv: list[str]) -> int:
    p = make_parser("consulpy event")
    p.add_argument("-name", "--name", default="")
    p.add_argument("-node", "--node", default="")
    p.add_argument("-service", "--service", default="")
    p.add_argument("-tag", "--tag", default="")
    p.add_argument("payload", nargs="?", default="")
    args = p.parse_args(argv)
    if not args.name:
        return fail("Event name must be specified")
    try:
        event = (
            Client.from_args(args)
            .request(
                "PUT",
                f"/v1/event/fire/{args.name}",
                {
                    "node": args.node or None,
                    "service": args.service or None,
                    "tag": args.tag or None,
                },
                body=args.payload.encode(),
            )
            .json()
        )
    except APIError as exc:
        return fail(f"Error firing event: {exc}")
    print(f"Event ID: {event['ID']}")
    return 0
