"""A small synchronous HTTP client for the CLI subcommands (stdlib only, so `consulpy kv get`
starts fast), honouring Consul's CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE
and -http-addr, -token, -token-file (in Consul's order: -token, -token-file, the token
variable, the token-file variable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_ADDR = "127.0.0.1:8500"


class APIError(Exception):
    def __init__(self, status: int, body: str) -> None:
        text = body.strip()
        super().__init__(f"Unexpected response code: {status} ({text})" if status else text)
        self.status = status
        self.body = body


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def add_http_flags(parser: argparse.ArgumentParser) -> None:
    """Consul's common HTTP API flags, in both -flag and --flag spellings."""
    parser.add_argument(
        "-http-addr",
        "--http-addr",
        dest="http_addr",
        default=None,
        help="address of the agent (env CONSUL_HTTP_ADDR)",
    )
    parser.add_argument(
        "-token", "--token", dest="token", default=None, help="ACL token (env CONSUL_HTTP_TOKEN)"
    )
    parser.add_argument(
        "-token-file",
        "--token-file",
        dest="token_file",
        default=None,
        help="file holding the ACL token (env CONSUL_HTTP_TOKEN_FILE)",
    )
    parser.add_argument("-datacenter", "--datacenter", dest="datacenter", default=None)
    parser.add_argument("-stale", "--stale", dest="stale", action="store_true")


class Client:
    def __init__(
        self,
        http_addr: str | None = None,
        token: str | None = None,
        datacenter: str | None = None,
        stale: bool = False,
        timeout: float = 60,
        token_file: str | None = None,
    ) -> None:
        addr = http_addr or os.environ.get("CONSUL_HTTP_ADDR") or DEFAULT_ADDR
        if "://" not in addr:
            scheme = (
                "https"
                if os.environ.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true")
                else "http"
            )
            addr = f"{scheme}://{addr}"
        self.base = addr.rstrip("/")
        self.token = _pick_token(token, token_file)
        self.datacenter = datacenter
        self.stale = stale
        self.timeout = timeout

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        return cls(
            args.http_addr,
            args.token,
            args.datacenter,
            args.stale,
            token_file=getattr(args, "token_file", None),
        )

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Response:
        query: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            if value is None or value is False:
                continue
            query.append((key, "" if value is True else str(value)))
        if self.datacenter:
            query.append(("dc", self.datacenter))
        if self.stale and method == "GET":
            query.append(("stale", ""))
        url = self.base + urllib.parse.quote(path, safe="/")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, data=body, method=method)
        if self.token:
            req.add_header("X-Consul-Token", self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers.items()))
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            if exc.code in ok:
                return Response(exc.code, payload, dict(exc.headers.items()))
            raise APIError(exc.code, payload.decode("utf-8", "replace")) from exc
        except urllib.error.URLError as exc:
            raise APIError(0, f"Error connecting to agent at {self.base}: {exc.reason}") from exc


def _read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise APIError(0, f"Error loading token file: {exc}") from exc


def _pick_token(token: str | None, token_file: str | None) -> str:
    if token:
        return token
    if token_file:
        return _read_token_file(token_file)
    if os.environ.get("CONSUL_HTTP_TOKEN"):
        return os.environ["CONSUL_HTTP_TOKEN"]
    if os.environ.get("CONSUL_HTTP_TOKEN_FILE"):
        return _read_token_file(os.environ["CONSUL_HTTP_TOKEN_FILE"])
    return ""


def make_parser(prog: str) -> argparse.ArgumentParser:
    """A subcommand's parser with the common HTTP flags."""
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    add_http_flags(parser)
    return parser


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces, as consul's CLI prints them."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1
