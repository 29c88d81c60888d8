"""The HTTP API's last line of defence: a bug answers 500 with a request ID (and the traceback
in the log under that ID) instead of aiohttp's anonymous page, and no user-supplied text can
break a response's header block.

Handlers map every expected failure to its status themselves (`endpoint.py`); anything else
that escapes a handler is a defect, answered by `defect_response`. The ID lets an operator
find the traceback from the client's report: it is in the body, in the `X-Request-ID` header
and in the log line.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import MutableMapping

import structlog
from aiohttp import web

log = structlog.get_logger("consulpy.http")

REQUEST_ID_HEADER = "X-Request-ID"
# The start of every answer to an unhandled exception (a defect): the fuzz test fails on it.
DEFECT_500 = "Internal Server Error"

# Control characters other than tab cannot appear in a header value: aiohttp refuses to send
# the response (the client sees the connection drop) and a CR/LF would split the header.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def safe_header_value(value: str) -> str:
    """`value` with its control characters written as `\\xNN` escapes."""
    return _CONTROL.sub(_escape, value)


def escape_headers(headers: MutableMapping[str, str]) -> None:
    """Escape, in place, what HTTP cannot carry in a response's headers (every response: the
    app's hook or a blocking query's early answer): headers echo user text (a check's notes,
    a service name in X-Consul-Reason). Almost every response has none of it: one scan of all
    the values together decides, and only then is each header looked at."""
    if "".join(headers.values()).isprintable():
        return  # no control character anywhere (isprintable is stricter: a superset)
    for name, value in list(headers.items()):
        if _CONTROL.search(value):
            headers[name] = safe_header_value(value)


def defect_response(req: web.Request) -> web.Response:
    """The answer to an unhandled exception in a handler (called from its `except`): a 500
    with a fresh request ID, and the traceback logged under that ID."""
    request_id = str(uuid.uuid4())
    log.exception(
        "unhandled error in HTTP handler",
        request_id=request_id,
        method=req.method,
        path=req.path,
    )
    return web.Response(
        status=500,
        text=f"{DEFECT_500} (request ID: {request_id})\n",
        content_type="text/plain",
        charset="utf-8",
        headers={REQUEST_ID_HEADER: request_id},
    )
