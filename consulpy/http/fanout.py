"""Answering a shared blocking query's members straight from its driver's pass.

When a write moves the index of a read that thousands of identical blocking queries wait on,
the server's driver wakes them all at once (`server/blocking.py`). Answering each through
aiohttp means resuming its handler chain, building a response object, running the
on_response_prepare hooks and serialising the same headers once per connection: about 60 µs a
watcher, so the last of 10,000 waited over a second. Here the whole answer (status line,
headers, body) is serialised once per (evaluation, rendering, second) and written to each
member's transport in one pass; each handler then only unwinds and hands aiohttp a response
that has already been sent.

Only what nothing per-request changes may go this way: a GET over keep-alive HTTP/1.1 whose
handler would answer with `respond(...)` of the shared result as is (no `?peer`, no WAN
translation, no extra headers). Everything else is answered by its handler as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from multidict import CIMultiDict

from consulpy.server.query import QueryMeta

# The app's own last touch on every response's headers (http_config.response_headers, the ACL
# policy header, escaping); `app.build_app` sets it, and runs it from on_response_prepare too.
FinalHeaders = Callable[["CIMultiDict[str]"], None]
FINAL_HEADERS: web.AppKey[FinalHeaders] = web.AppKey("final_headers", object)  # type: ignore[arg-type]

# Render = (the request, the result, its QueryMeta, whether the consistency header is sent)
# -> (the JSON body, the headers the handler's response would carry before aiohttp's own).
Render = Callable[[web.Request, Any, QueryMeta, bool], tuple[bytes, "CIMultiDict[str]"]]

_date_second = -1
_date_value = ""


def http_date() -> str:
    """The Date header's value, formatted once per second as aiohttp does."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = formatdate(now, usegmt=True)
        _date_second = now
    return _date_value


def eligible(req: web.Request) -> bool:
    """Whether an answer may bypass aiohttp for this request: a GET on a keep-alive HTTP/1.1
    connection (the header block below is written for exactly that)."""
    return (
        req.method == "GET"
        and req.version == HttpVersion11
        and req.keep_alive
        and FINAL_HEADERS in req.app
    )


class EarlyAnswer:
    """An `Answer` (server/blocking.py) for one HTTP request: `sent` says it has answered.
    What varies per request (the connection, the rendering) is taken when the query parks, so
    the driver's pass does little more than one transport write per member."""

    __slots__ = ("_consistency_header", "_render", "_req", "_slot", "_transport", "sent")

    def __init__(
        self, req: web.Request, render: Render, *, pretty: bool, consistency_header: bool
    ) -> None:
        self._req = req
        self._render = render
        self._consistency_header = consistency_header
        self._slot = ("wire", pretty, consistency_header)
        self._transport = req.transport
        self.sent = False

    def __call__(self, outcome: Any) -> bool:
        meta, result = outcome
        shared = meta.shared if isinstance(meta, QueryMeta) else None
        transport = self._transport
        if shared is None or transport is None or transport.is_closing():
            return False  # the handler answers (or meets the closed connection) as before
        entry = shared.get(self._slot)
        date = http_date()
        if entry is None or entry[0] != date or entry[1] is not result:
            entry = shared[self._slot] = (date, result, self._wire(meta, result, date))
        transport.write(entry[2])
        self.sent = True
        return True

    def _wire(self, meta: QueryMeta, result: Any, date: str) -> bytes:
        """The full answer: what the handler path would send (its cached body and headers,
        aiohttp's own headers, then the app's), serialised once per evaluation, rendering and
        second, and kept in the evaluation's `meta.shared` beside the handler path's cache."""
        req = self._req
        body, headers = self._render(req, result, meta, self._consistency_header)
        out = CIMultiDict(headers)
        out["Content-Length"] = str(len(body))
        out["Date"] = date
        out.setdefault("Server", SERVER_SOFTWARE)
        req.app[FINAL_HEADERS](out)
        lines = ["HTTP/1.1 200 OK", *(f"{name}: {value}" for name, value in out.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def response(self) -> web.StreamResponse:
        """What the handler returns once the answer has gone out."""
        return SENT


class _Sent(web.StreamResponse):
    """A response already written to the transport: aiohttp's finishing steps do nothing, and
    the connection stays open for the client's next request."""

    async def prepare(self, request: web.BaseRequest) -> None:  # type: ignore[override]
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None

    @property
    def keep_alive(self) -> bool:
        return True


# Stateless (aiohttp only calls the no-op methods above and reads keep_alive): one for all.
SENT = _Sent()
