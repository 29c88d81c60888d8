"""`consulpy demo api|web|probe`: the dev cluster's demo services and a health probe.

    consulpy demo api [--port 9090] [--bind 127.0.0.1] [--instance ID]
    consulpy demo web [--port 8080] [--bind 127.0.0.1] --upstream http://127.0.0.1:9191
    consulpy demo probe URL          exit 0 when URL answers 200 (for container health checks)

Every flag also reads an environment variable (DEMO_PORT, DEMO_BIND, DEMO_INSTANCE,
UPSTREAM_URL), which is handy in containers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
import urllib.request

USAGE = "Usage: consulpy demo <api|web|probe> [options]"
DEFAULT_PORTS = {"api": 9090, "web": 8080}


def _parser(kind: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"consulpy demo {kind}", allow_abbrev=False)
    p.add_argument(
        "-port",
        "--port",
        type=int,
        default=int(os.environ.get("DEMO_PORT", DEFAULT_PORTS[kind])),
        help=f"port to listen on, 0 = any free port (env DEMO_PORT; default {DEFAULT_PORTS[kind]})",
    )
    p.add_argument(
        "-bind",
        "--bind",
        default=os.environ.get("DEMO_BIND", "127.0.0.1"),
        help="address to listen on (env DEMO_BIND; default 127.0.0.1)",
    )
    p.add_argument(
        "-instance",
        "--instance",
        default=os.environ.get("DEMO_INSTANCE", ""),
        help="instance name shown in answers (env DEMO_INSTANCE; default host:port)",
    )
    p.add_argument("-name", "--name", default=kind, help=f"service name shown (default {kind})")
    if kind == "web":
        p.add_argument(
            "-upstream",
            "--upstream",
            default=os.environ.get("UPSTREAM_URL", ""),
            help="URL of the upstream api, normally web's sidecar's local bind port, "
            "e.g. http://127.0.0.1:9191 (env UPSTREAM_URL)",
        )
    return p


def _serve(kind: str, argv: list[str]) -> int:
    args = _parser(kind).parse_args(argv)
    from consulpy.demo.apps import api_app, serve, web_app

    instance = args.instance  # empty: host:port, once the port is known
    if kind == "api":
        app = api_app(args.name, instance)
    else:
        if not args.upstream:
            print("consulpy demo web: --upstream (or UPSTREAM_URL) is required", file=sys.stderr)
            return 1
        app = web_app(args.upstream, args.name, instance)

    def announce(url: str) -> None:
        extra = f", upstream {args.upstream}" if kind == "web" else ""
        print(f"==> demo {args.name} listening on {url}{extra}", flush=True)

    try:
        asyncio.run(serve(app, args.bind, args.port, announce))
    except OSError as exc:
        print(f"consulpy demo {kind}: {exc}", file=sys.stderr)
        return 1
    return 0


def _probe(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="consulpy demo probe", allow_abbrev=False)
    p.add_argument("url")
    p.add_argument("-timeout", "--timeout", type=float, default=3.0)
    args = p.parse_args(argv)
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{args.url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "-help", "--help"):
        print(USAGE + "\n" + (__doc__ or ""), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 1
    kind, rest = argv[0], argv[1:]
    if kind in ("api", "web"):
        return _serve(kind, rest)
    if kind == "probe":
        return _probe(rest)
    print(f"consulpy demo: unknown service {kind!r}\n{USAGE}", file=sys.stderr)
    return 1
