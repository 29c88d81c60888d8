"""Limits that protect the agent's HTTP API, from the `limits` and `http_config` settings:

- `limits.http_max_conns_per_client`: concurrent connections per client IP; one more is
  answered `429 Too Many Requests` and closed (as Consul's connection limiter does).
- `http_config.block_endpoints`: paths starting with one of these prefixes get 403.
- `http_config.allow_write_http_from`: requests other than GET from addresses outside these
  CIDRs get 403.
- `http_config.response_headers`: added to every response.
- request bodies: a Content-Length above the largest body any endpoint accepts is refused with
  413 before the body is read (endpoints then enforce their own, smaller limits).
- header sizes: `http_config.max_header_bytes` bounds each header line (aiohttp's parser
  limits), 16 KiB when unset.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from consulpy.http.endpoint import text_error

if TYPE_CHECKING:
    from consulpy.config import AgentConfig
    from consulpy.http.hotpath import HotPath

log = structlog.get_logger("consulpy.http.limits")

DEFAULT_HEADER_BYTES = 16384
TOO_MANY_CONNS = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REFUSED_LINGER = 5.0
# A client that lets this much of its answers pile up unread gets no hot-path answer: aiohttp's
# path waits for it to drain.
HOT_WRITE_BUFFER = 64 * 1024
# Streaming endpoints that read their own (large) bodies in chunks.
STREAMING_PATHS = ("/v1/snapshot",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def whole_requests(data: bytes) -> bool:
    """Whether `data` is one whole request, headers and body (by Content-Length, not
    chunked): after it aiohttp's parser holds nothing. A doubt answers False."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = data[:end].lower()
    if b"transfer-encoding" in head:
        return False
    at = head.find(b"\r\ncontent-length:")
    length = 0
    if at >= 0:
        if head.find(b"\r\ncontent-length:", at + 1) >= 0:
            return False
        value = head[at + 17 :].split(b"\r\n", 1)[0].strip(b" \t")
        if not value.isdigit():
            return False
        length = int(value)
    return len(data) == end + 4 + length


def header_limits(config: AgentConfig) -> dict[str, int]:
    """aiohttp parser limits for the request line and each header."""
    size = int(config.http_config.get("max_header_bytes") or 0) or DEFAULT_HEADER_BYTES
    return {"max_field_size": size, "max_line_size": size}


def _networks(cidrs: list[str]) -> list[Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def _client_ip(req: web.Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    peer = req.transport.get_extra_info("peername") if req.transport else None
    if not peer:
        return None  # a unix socket: local
    addr = ipaddress.ip_address(peer[0].split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True)
class HTTPRules:
    """The request rules of one `http_config` (rebuilt when a reload replaces it)."""

    allowed: tuple[Network, ...]
    headers: tuple[tuple[str, str], ...]
    blocked: tuple[str, ...]
    refuses: bool = False  # whether these rules may refuse a request without a body

    @classmethod
    def of(cls, http_config: dict[str, Any]) -> HTTPRules:
        allowed = tuple(_networks(list(http_config.get("allow_write_http_from") or [])))
        blocked = tuple(http_config.get("block_endpoints") or ())
        return cls(
            allowed=allowed,
            headers=tuple(
                (str(k), str(v)) for k, v in (http_config.get("response_headers") or {}).items()
            ),
            blocked=blocked,
            refuses=bool(allowed or blocked),
        )


class HasConfig(Protocol):
    """Whatever holds the agent's current config (the agent: a reload replaces it)."""

    config: AgentConfig


class RequestLimits:
    """The write restriction, blocked endpoints, body-size check and response headers of an
    app. They follow the agent's current config, so a reload applies them. The app's front
    wrapper (http/app.py) takes the `rules` before every handler and asks `refusal` only
    when they may refuse (`HTTPRules.refuses`) or the request has a body: one plain call
    rather than a middleware layer per request."""

    def __init__(self, owner: HasConfig, max_body: int) -> None:
        self._owner = owner
        self._max_body = max_body
        self._http_config: dict[str, Any] | None = None
        self._rules = HTTPRules((), (), ())

    def rules(self) -> HTTPRules:
        http_config = self._owner.config.http_config
        if http_config is not self._http_config:
            self._rules = HTTPRules.of(http_config)
            self._http_config = http_config
        return self._rules

    def refusal(
        self, req: web.Request, rules: HTTPRules | None = None
    ) -> web.StreamResponse | None:
        """The answer for a request these rules refuse, None for one they let through."""
        r = rules or self.rules()
        if r.blocked and req.path.startswith(r.blocked):
            return text_error(403, "Endpoint is blocked by agent configuration")
        if r.allowed and req.method != "GET":
            ip = _client_ip(req)
            if ip is not None and not any(ip in net for net in r.allowed):
                return text_error(403, "Access is restricted")
        length = req.content_length
        if (
            length is not None
            and length > self._max_body
            and not req.path.startswith(STREAMING_PATHS)
        ):
            return text_error(
                413, f"Request body too large: {length} bytes (limit {self._max_body})"
            )
        return None


class _LimitedHandler(RequestHandler):
    """aiohttp's connection handler, counted per client IP by its ConnectionLimiter. A
    refused connection drops what it reads and closes on EOF. That is a flag checked per
    chunk, not methods swapped on the instance: uvloop binds `data_received` when the
    connection is made, so a swap after that was never called (the refused client's request
    was served instead, after the 429 and the EOF, and the client waited).

    A chunk that arrives while aiohttp waits for the next request, with nothing of one
    buffered, is offered to the limiter's hot path first (http/hotpath.py). `whole` says
    whether aiohttp's parser is between requests: every chunk it was given so far held whole
    requests (on a connection where one did not, aiohttp keeps every request)."""

    limiter: ConnectionLimiter
    client_ip: str | None = None
    refused = False
    whole = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.limiter.opened(self, transport)

    def refuse(self) -> None:
        """Read and drop what the client sends; close when it hangs up."""
        self.refused = True

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.whole and data:  # (aiohttp feeds itself b"" to resume a paused read)
            hot = self.limiter.hot
            # a chunk longer than aiohttp's line limits may hold a line it refuses (400)
            if hot is not None and len(data) <= self._hot_max and self._idle():
                reply = hot.answer(data)
                if reply is not None:
                    self._answered(reply)
                    return
            self.whole = whole_requests(data)
        super().data_received(data)

    @property
    def _hot_max(self) -> int:
        return min(self.max_line_size, self.max_field_size)

    def _idle(self) -> bool:
        """aiohttp waits for a request (none queued, none in progress), the connection stays
        open, and the client reads what it is sent (else aiohttp's path waits for it)."""
        waiter = self._waiter
        transport = self.transport
        return (
            waiter is not None
            and not waiter.done()
            and not self._messages
            and self._payload_parser is None
            and not self._upgraded
            and not self._close
            and not self._force_close
            and transport is not None
            and transport.get_write_buffer_size() < HOT_WRITE_BUFFER
        )

    def _answered(self, reply: bytes) -> None:
        """Send a hot-path answer and account for it as aiohttp would for its own: a request
        served, and the keep-alive timer counting from now."""
        assert self.transport is not None and self._manager is not None
        self.transport.write(reply)  # type: ignore[attr-defined]
        self._manager.requests_count += 1
        if self._keepalive_timeout > 0:
            loop = self._loop
            close_time = loop.time() + self._keepalive_timeout
            self._next_keepalive_close_time = close_time
            if self._keepalive_handle is None:
                self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)

    def eof_received(self) -> None:
        if not self.refused:
            super().eof_received()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.limiter.closed(self)
        super().connection_lost(exc)


class ConnectionLimiter:
    """Stands in for the runner's protocol factory (aiohttp's `Server`), counting the open
    connections of each client IP; a connection over the limit gets a bare 429 and is closed."""

    def __init__(self, inner: Any, limit_of: Callable[[], int]) -> None:
        self._inner = inner
        self.limit_of = limit_of
        self.open: dict[str, int] = {}
        self.refused = 0
        self.hot: HotPath | None = None  # offered each chunk first (http/hotpath.py)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self) -> RequestHandler:
        inner = self._inner
        handler = _LimitedHandler(inner, loop=inner._loop, **inner._kwargs)
        handler.limiter = self
        return handler

    def opened(self, handler: _LimitedHandler, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        limit = self.limit_of()
        if not peer:
            return
        ip = str(peer[0])
        if limit and self.open.get(ip, 0) >= limit:
            self.refused += 1
            log.warning("too many connections from one client", client=ip, limit=limit)
            # Answer, stop writing, and drop what the client sends until it hangs up (or the
            # linger time passes): closing at once would reset the connection and lose the 429.
            # A cast, not an isinstance check: uvloop's TCP transport is no subclass of
            # asyncio.WriteTransport (the assertion that stood here failed on uvloop, so the
            # 429 was never sent).
            writer = cast(asyncio.WriteTransport, transport)
            handler.refuse()
            writer.write(TOO_MANY_CONNS)
            if writer.can_write_eof():
                writer.write_eof()
            asyncio.get_running_loop().call_later(REFUSED_LINGER, writer.close)
            return
        self.open[ip] = self.open.get(ip, 0) + 1
        handler.client_ip = ip

    def closed(self, handler: _LimitedHandler) -> None:
        ip, handler.client_ip = handler.client_ip, None
        if ip is None:
            return
        left = self.open.get(ip, 1) - 1
        if left > 0:
            self.open[ip] = left
        else:
            self.open.pop(ip, None)


def limit_connections(
    runner: web.AppRunner, config_of: Callable[[], AgentConfig], hot: HotPath | None = None
) -> ConnectionLimiter:
    """Wrap the runner's protocol factory (after setup, before sites start); the limit
    follows the agent's current config. `hot` answers the hot read (http/hotpath.py)."""
    limiter = ConnectionLimiter(
        runner._server, lambda: config_of().limits.http_max_conns_per_client
    )
    limiter.hot = hot
    runner._server = limiter  # type: ignore[assignment]
    return limiter
