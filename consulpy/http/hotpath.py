"""The hot read, `GET /v1/kv/<key>`, answered straight from the bytes a connection received.

aiohttp spends most of such a request's time on machinery the request does not need: a
parsed URL, a Request, a task, the router, a Response, the prepare signal, and a second trip
through the event loop. On a leader holding its lease the read itself is a dictionary lookup
(`Server.read_at_once`), so that machinery was most of the cost of the busiest request there
is (Patroni, locks and config clients poll single keys).

The connection handler (http/limits.py) offers each chunk to `HotPath.answer` when aiohttp
has nothing of a request buffered and no request in progress on the connection. The chunk is
taken only when the full path would give the very same answer:

- exactly one whole request: `GET /v1/kv/<key> HTTP/1.1`, no body, no query string;
- a key of plain visible ASCII: nothing percent-encoded, no dot segment or `..` (what key
  validation looks at), so aiohttp's decoded path and the raw one are the same text;
- only headers that do not change the answer while ACLs are off (Host, User-Agent, Accept,
  Accept-Encoding, Connection: keep-alive, a token), each once, printable ASCII;
- no `http_config` rule that refuses or adds headers, no debug request log;
- and `read_at_once` answers now (a plain read, ACLs off, this server leads with its lease).

Everything else, byte for byte, goes to aiohttp as before. The answer is the full path's:
the same status line, headers in the same order (Date and Server included), body and
metrics (`consul.api.http` for GET v1_kv_, and the server's read metrics).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp.helpers import rfc822_formatted_time  # the Date aiohttp's path sends
from aiohttp.http import SERVER_SOFTWARE

from consulpy.http.endpoint import compact_json, indented_json, meta_headers
from consulpy.log import enabled as log_enabled
from consulpy.server.endpoints.kvs import KVSGet

if TYPE_CHECKING:
    from consulpy.agent.agent import Agent
    from consulpy.http.limits import RequestLimits
    from consulpy.metrics.registry import Series

PREFIX = b"GET /v1/kv/"
# Key bytes taken as they are: visible ASCII without '%' (an escape), '?' and '#'.
_KEY_BYTES = bytes(b for b in range(0x21, 0x7F) if b not in b"%?#")
# Header block bytes: printable ASCII, tab, CR and LF (a bare CR or LF is looked at below).
_HEAD_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F)])
# Headers that leave the answer as it is while ACLs are off (a token is read only then).
_PASSIVE = frozenset(
    (b"host", b"user-agent", b"accept", b"accept-encoding", b"x-consul-token", b"authorization")
)


def parse_get(data: bytes) -> str | None:
    """The key of `data` when it is exactly one request the hot path may take, else None."""
    end = data.find(b"\r\n\r\n")
    if end != len(data) - 4 or not data.startswith(PREFIX):
        return None
    head = data[:end]
    crlf = head.count(b"\r\n")
    if head.translate(None, _HEAD_BYTES) or head.count(b"\r") != crlf or head.count(b"\n") != crlf:
        return None  # a byte aiohttp would refuse, or a bare CR or LF
    lines = head.split(b"\r\n")
    target, _, version = lines[0][len(PREFIX) :].partition(b" ")
    if (
        version != b"HTTP/1.1"
        or not target
        or target.translate(None, _KEY_BYTES)
        or b".." in target
        or b"/." in target
        or target[0] == 0x2E  # '.': a dot segment right after /v1/kv/
    ):
        return None
    seen: set[bytes] = set()
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        name = name.lower()
        if not colon or name in seen:
            return None
        seen.add(name)
        if name not in _PASSIVE and (
            name != b"connection" or value.strip(b" \t").lower() != b"keep-alive"
        ):
            return None
    return target.decode("ascii")


class HotPath:
    """Answers the requests `parse_get` takes for one app (see the module's docstring)."""

    def __init__(self, agent: Agent, limits: RequestLimits, policy: str, series: Series) -> None:
        self._agent = agent
        self._limits = limits
        self._series = series
        server = SERVER_SOFTWARE.encode("ascii")
        self._tail = (
            b"\r\nServer: " + server + b"\r\nX-Consul-Default-ACL-Policy: " + policy.encode()
        )
        self._printable = policy.isprintable()
        self.answered = 0  # requests this path answered (the rest went to aiohttp)

    def answer(self, data: bytes) -> bytes | None:
        """The whole HTTP response to `data`, or None: the full path takes it."""
        key = parse_get(data)
        if key is None:
            return None
        agent = self._agent
        rules = self._limits.rules()
        if rules.refuses or rules.headers or not self._printable or log_enabled(logging.DEBUG):
            return None
        read_at_once = getattr(agent.delegate, "read_at_once", None)
        if read_at_once is None:  # a client agent: its servers answer
            return None
        start = time.perf_counter()
        try:
            reply: tuple[Any, Any] | None = read_at_once("KVS.Get", KVSGet(key))
        except Exception:  # the full path renders the error as Consul does
            return None
        if reply is None:
            return None
        meta, entries = reply
        head = _meta_lines(meta)
        date = rfc822_formatted_time().encode()
        if entries is None:
            out = b"HTTP/1.1 404 Not Found\r\n%sContent-Length: 0\r\nDate: %s%s\r\n\r\n" % (
                head,
                date,
                self._tail,
            )
        else:
            body = indented_json(entries) if agent.pretty_json else compact_json(entries)
            out = (
                b"HTTP/1.1 200 OK\r\n%sContent-Type: application/json\r\nContent-Length: %d"
                b"\r\nDate: %s%s\r\n\r\n%s" % (head, len(body), date, self._tail, body)
            )
        self._series.add((time.perf_counter() - start) * 1000.0)
        self.answered += 1
        return out


def _meta_lines(meta: Any) -> bytes:
    """`endpoint.meta_headers(meta)` as header lines."""
    return "".join(f"{name}: {value}\r\n" for name, value in meta_headers(meta).items()).encode()
