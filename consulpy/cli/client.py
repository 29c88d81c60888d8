"""A small synchronous HTTP client for the CLI subcommands (stdlib only, so `consulpy kv get`
starts fast), honouring Consul's CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE
and -http-addr, -token, -token-file (in Consul's order: -token, -token-file, the token
variable, the token-file variable), and for HTTPS CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY,
CONSUL_CACERT / -ca-file, CONSUL_CAPATH / -ca-path, CONSUL_CLIENT_CERT / -client-cert,
CONSUL_CLIENT_KEY / -client-key and CONSUL_TLS_SERVER_NAME / -tls-server-name (a flag wins
over its variable, as in Consul).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, BinaryIO

from consulpy.util.tlsnames import ca_bundle

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
    for flag, env in _TLS_FLAGS.items():
        parser.add_argument(
            f"-{flag}", f"--{flag}", dest=flag.replace("-", "_"), default=None, help=f"env {env}"
        )


# -flag -> environment variable it overrides
_TLS_FLAGS = {
    "ca-file": "CONSUL_CACERT",
    "ca-path": "CONSUL_CAPATH",
    "client-cert": "CONSUL_CLIENT_CERT",
    "client-key": "CONSUL_CLIENT_KEY",
    "tls-server-name": "CONSUL_TLS_SERVER_NAME",
}


@dataclass(frozen=True)
class TLSOptions:
    """How the CLI talks HTTPS; `from_env` fills what the flags left unset."""

    ca_file: str | None = None
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    tls_server_name: str | None = None
    verify: bool = True

    @classmethod
    def from_env(cls, **flags: str | None) -> TLSOptions:
        values = {
            name.replace("-", "_"): flags.get(name.replace("-", "_")) or os.environ.get(env) or None
            for name, env in _TLS_FLAGS.items()
        }
        verify = os.environ.get("CONSUL_HTTP_SSL_VERIFY", "true").strip().lower()
        return cls(**values, verify=verify not in ("0", "false", "f", "no"))

    def context(self) -> ssl.SSLContext:
        if self.ca_file or self.ca_path:
            ctx = ssl.create_default_context(cadata=ca_bundle(self.ca_file, self.ca_path))
        else:
            ctx = ssl.create_default_context()
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert or self.client_key:
            ctx.load_cert_chain(self.client_cert or "", self.client_key or self.client_cert)
        return ctx


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """Checks the server's certificate against `server_name` instead of the dialed host."""

    def __init__(self, *args: Any, server_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self._server_name
        )


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, server_name: str | None) -> None:
        super().__init__(context=context)
        self._tls_context = context
        self._server_name = server_name

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        if self._server_name is None:
            return super().https_open(req)
        conn = functools.partial(_NamedHTTPSConnection, server_name=self._server_name)
        return self.do_open(conn, req, context=self._tls_context)  # type: ignore[arg-type]


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the agent's unix socket (CONSUL_HTTP_ADDR=unix:///path)."""

    def __init__(self, host: str, *, socket_path: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)  # type: ignore[arg-type]
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixHandler(urllib.request.HTTPHandler):
    def __init__(self, socket_path: str) -> None:
        super().__init__()
        self._socket_path = socket_path

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        conn = functools.partial(_UnixHTTPConnection, socket_path=self._socket_path)
        return self.do_open(conn, req)  # type: ignore[arg-type]


class Client:
    def __init__(
        self,
        http_addr: str | None = None,
        token: str | None = None,
        datacenter: str | None = None,
        stale: bool = False,
        timeout: float = 60,
        token_file: str | None = None,
        tls: TLSOptions | None = None,
    ) -> None:
        addr = http_addr or os.environ.get("CONSUL_HTTP_ADDR") or DEFAULT_ADDR
        self.unix_path: str | None = None
        if addr.startswith("unix://"):
            # As Consul's api package: the socket carries plain HTTP; "localhost" is only
            # the Host header.
            self.unix_path = addr.removeprefix("unix://")
            addr = "http://localhost"
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
        self.tls = tls or TLSOptions.from_env()
        self._opener: urllib.request.OpenerDirector | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        names = (name.replace("-", "_") for name in _TLS_FLAGS)
        tls = TLSOptions.from_env(**{name: getattr(args, name, None) for name in names})
        return cls(
            args.http_addr,
            args.token,
            args.datacenter,
            args.stale,
            token_file=getattr(args, "token_file", None),
            tls=tls,
        )

    @property
    def where(self) -> str:
        """The agent's address as the user gave it (for error messages)."""
        return f"unix://{self.unix_path}" if self.unix_path is not None else self.base

    def open(self, req: urllib.request.Request, timeout: float | None) -> Any:
        """Send `req` to the agent (over its unix socket, or with the TLS settings)."""
        if self.unix_path is not None:
            if self._opener is None:
                self._opener = urllib.request.build_opener(_UnixHandler(self.unix_path))
            return self._opener.open(req, timeout=timeout)
        if not self.base.startswith("https://"):
            return urllib.request.urlopen(req, timeout=timeout)
        if self._opener is None:
            try:
                context = self.tls.context()
            except (OSError, ssl.SSLError) as exc:
                raise APIError(0, f"Error loading TLS files: {exc}") from exc
            self._opener = urllib.request.build_opener(
                _HTTPSHandler(context, self.tls.tls_server_name)
            )
        return self._opener.open(req, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | BinaryIO | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Response:
        """One call to the agent. A file `body` is streamed from its position to its end
        (http.client reads it in blocks), never read whole."""
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
        if body is not None and not isinstance(body, bytes):
            size = os.fstat(body.fileno()).st_size - body.tell()
            req.add_header("Content-Length", str(size))
        if self.token:
            req.add_header("X-Consul-Token", self.token)
        try:
            with self.open(req, self.timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers.items()))
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            if exc.code in ok:
                return Response(exc.code, payload, dict(exc.headers.items()))
            raise APIError(exc.code, payload.decode("utf-8", "replace")) from exc
        except urllib.error.URLError as exc:
            raise APIError(0, f"Error connecting to agent at {self.where}: {exc.reason}") from exc
        except (http.client.HTTPException, OSError) as exc:
            # e.g. the agent closing a TLS 1.3 connection that lacks a client certificate
            reason = str(exc) or type(exc).__name__
            raise APIError(0, f"Error connecting to agent at {self.where}: {reason}") from exc


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
