"""Small helpers for writing Envoy config as proto-JSON dicts.

Builders in this package write each resource as the dict Envoy's own JSON/YAML config would
use (``{"name": ..., "typed_config": {"@type": ..., ...}}``) and convert it once with
``json_format.ParseDict``. That keeps the builders readable next to Envoy's documentation,
and ParseDict rejects any misspelt field, so a typo fails the unit tests instead of reaching
Envoy. Importing this module registers every message type the builders reference, which
``ParseDict`` needs to resolve ``@type`` inside ``Any`` fields.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

# Registration imports: ParseDict resolves "@type" names through the default descriptor pool.
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.clusters.aggregate.v3 import cluster_pb2 as _aggregate  # noqa: F401
from envoy.extensions.filters.http.grpc_http1_bridge.v3 import config_pb2 as _bridge  # noqa: F401
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as _gstats  # noqa: F401
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as _http_rbac  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.connection_limit.v3 import (  # noqa: F401
    connection_limit_pb2,
)
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as _net_rbac  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

TYPE_PREFIX = "type.googleapis.com/"

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
NETWORK_RBAC = "envoy.extensions.filters.network.rbac.v3.RBAC"
HTTP_RBAC = "envoy.extensions.filters.http.rbac.v3.RBAC"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
GRPC_STATS = "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"
GRPC_BRIDGE = "envoy.extensions.filters.http.grpc_http1_bridge.v3.Config"
CONNECTION_LIMIT = "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILE_ACCESS_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"


def typed(type_name: str, **fields: Any) -> dict[str, Any]:
    """An ``Any`` in proto-JSON form."""
    return {"@type": TYPE_PREFIX + type_name, **fields}


def extension(name: str, type_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """A named extension (filter, transport socket) with its typed config."""
    return {"name": name, "typed_config": typed(type_name, **config)}


def duration(seconds: float) -> str:
    """A ``google.protobuf.Duration`` in JSON form (``"5s"``, ``"0.250s"``)."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    nanos = round(seconds * 1_000_000_000)
    whole, frac = divmod(nanos, 1_000_000_000)
    if frac == 0:
        return f"{whole}s"
    return f"{whole}.{frac:09d}".rstrip("0") + "s"


def socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def http2_protocol_options() -> dict[str, Any]:
    """Cluster ``typed_extension_protocol_options`` that make the upstream speak HTTP/2."""
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
            HTTP_PROTOCOL_OPTIONS, explicit_http_config={"http2_protocol_options": {}}
        )
    }


def to_message(data: dict[str, Any], message: M) -> M:
    """Parse a proto-JSON dict into ``message`` (unknown fields are an error)."""
    return json_format.ParseDict(data, message)


def to_dict(message: Message) -> dict[str, Any]:
    """The proto-JSON view of a message (what golden files and logs show)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


_RE2_PLAIN = re.compile(r"[A-Za-z0-9_\-]")


def re2_escape(text: str) -> str:
    """Quote ``text`` for an RE2 pattern: every character but letters, digits, ``_`` and
    ``-`` is backslash-escaped (RE2 accepts an escaped punctuation character as itself)."""
    out = []
    for ch in text:
        if _RE2_PLAIN.fullmatch(ch):
            out.append(ch)
        elif ch.isascii() and ch.isprintable() and not ch.isspace():
            out.append("\\" + ch)
        else:
            out.append(f"\\x{{{ord(ch):x}}}")
    return "".join(out)
