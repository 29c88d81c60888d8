"""`consulpy watch`: run a handler whenever a view of the cluster changes (Consul's `consul
watch`). Without a handler it prints the current value (4-space JSON) and exits."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import Any

from consulpy.cli.client import Client, add_http_flags, fail

BOOL_TRUE = ("1", "t", "true", "T", "TRUE", "True")
BOOL_FALSE = ("0", "f", "false", "F", "FALSE", "False")


def split_bool_flags(argv: list[str], names: dict[str, bool]) -> tuple[dict[str, bool], list[str]]:
    """Go-style boolean flags (`-x`, `-x=false`) before the first positional argument; returns
    their values and the remaining arguments. Raises ValueError for a value that is no bool."""
    values = dict(names)
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            rest += argv[i:]
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if name in values:
            if not eq or value in BOOL_TRUE:
                values[name] = True
            elif value in BOOL_FALSE:
                values[name] = False
            else:
                raise ValueError(f'invalid boolean value "{value}" for -{name}')
            i += 1
            continue
        rest.append(arg)
        # a value flag given as "-flag value" keeps its value with it
        if not eq and i + 1 < len(argv) and arg not in ("-stale", "--stale"):
            rest.append(argv[i + 1])
            i += 2
            continue
        i += 1
    return values, rest


def main(argv: list[str]) -> int:
    try:
        bools, rest = split_bool_flags(argv, {"shell": True})
    except ValueError as exc:
        return fail(str(exc))
    parser = argparse.ArgumentParser(prog="consulpy watch", allow_abbrev=False)
    add_http_flags(parser)
    for name in ("type", "key", "prefix", "service", "state", "name", "passingonly"):
        parser.add_argument(f"-{name}", f"--{name}", dest=name, default="")
    parser.add_argument("-tag", "--tag", dest="tag", action="append", default=[])
    parser.add_argument("child", nargs=argparse.REMAINDER)
    args = parser.parse_args(rest)
    if not args.type:
        return fail("Watch type must be specified")
    spec: dict[str, Any] = {"type": args.type}
    for name in ("key", "prefix", "service", "state", "name"):
        if getattr(args, name):
            spec[name] = getattr(args, name)
    if args.tag:
        spec["tag"] = args.tag
    if args.passingonly:
        if args.passingonly not in BOOL_TRUE + BOOL_FALSE:
            return fail(f"Failed to parse passingonly flag: {args.passingonly}")
        spec["passingonly"] = args.passingonly in BOOL_TRUE
    child = [a for a in args.child if a != "--"] if args.child[:1] == ["--"] else args.child
    if child:
        if bools["shell"]:
            spec["handler"] = " ".join(child) if len(child) > 1 else child[0]
        else:
            spec["args"] = child
    if args.datacenter:
        spec["datacenter"] = args.datacenter
    client = Client.from_args(args)
    if client.token:
        spec["token"] = client.token
    from consulpy.agent.watches import WatchError, parse_watch

    try:
        plan = parse_watch(spec, need_handler=False)
    except WatchError as exc:
        return fail(str(exc))
    if args.stale:
        plan = dataclasses.replace(plan, query=[*plan.query, ("stale", "")])
    if not child:
        return asyncio.run(_print_once(client.base, plan))
    try:
        return asyncio.run(_run(client.base, plan))
    except KeyboardInterrupt:
        return 0


async def _print_once(base: str, plan: Any) -> int:
    import aiohttp

    from consulpy.agent.watches import fetch

    async with aiohttp.ClientSession() as session:
        try:
            _, payload = await fetch(session, base, plan, 0)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return fail(f"Error querying Consul agent: {exc}")
    print(json.dumps(payload, indent=4))
    return 0


async def _run(base: str, plan: Any) -> int:
    from consulpy.agent.watches import run_watch

    return await run_watch(base, plan, stop_on_handler_error=True)
