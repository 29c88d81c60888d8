"""`consulpy monitor`: stream the local agent's log lines (GET /v1/agent/monitor) until
interrupted or the agent goes away."""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request

from consulpy.cli.client import Client, fail, make_parser


def main(argv: list[str]) -> int:
    parser = make_parser("consulpy monitor")
    parser.add_argument("-log-level", "--log-level", dest="log_level", default="info")
    parser.add_argument("-log-json", "--log-json", dest="log_json", action="store_true")
    args = parser.parse_args(argv)
    client = Client.from_args(args)
    query = [("loglevel", args.log_level)]
    if args.log_json:
        query.append(("logjson", ""))
    url = f"{client.base}/v1/agent/monitor?{urllib.parse.urlencode(query)}"
    req = urllib.request.Request(url, method="GET")
    if client.token:
        req.add_header("X-Consul-Token", client.token)
    try:
        resp = client.open(req, timeout=None)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace").strip()
        return fail(f"Error starting monitor: Unexpected response code: {exc.code} ({text})")
    except urllib.error.URLError as exc:
        return fail(f"Error starting monitor: error connecting to {client.where}: {exc.reason}")
    try:
        with resp:
            while True:
                line = resp.readline()
                if not line:
                    break
                sys.stdout.write(line.decode("utf-8", "replace"))
                sys.stdout.flush()
    except (OSError, ValueError):
        pass
    print(
        "Remote side ended the monitor! This usually means that the\n"
        "remote side has exited or crashed.",
        file=sys.stderr,
    )
    return 0
