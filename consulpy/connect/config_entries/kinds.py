"""Config entry kinds, shared constants, the two error types and the Go-isms Consul's
error texts need (`%q` quoting, go-multierror's layout)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

PROXY_DEFAULTS = "proxy-defaults"
SERVICE_DEFAULTS = "service-defaults"
SERVICE_INTENTIONS = "service-intentions"
SERVICE_ROUTER = "service-router"
SERVICE_SPLITTER = "service-splitter"
SERVICE_RESOLVER = "service-resolver"
MESH = "mesh"
INGRESS_GATEWAY = "ingress-gateway"
TERMINATING_GATEWAY = "terminating-gateway"

KINDS: tuple[str, ...] = (
    PROXY_DEFAULTS,
    SERVICE_DEFAULTS,
    SERVICE_INTENTIONS,
    SERVICE_ROUTER,
    SERVICE_SPLITTER,
    SERVICE_RESOLVER,
    MESH,
    INGRESS_GATEWAY,
    TERMINATING_GATEWAY,
)

WILDCARD = "*"
DEFAULT_NAMESPACE = "default"
DEFAULT_PROTOCOL = "tcp"
HTTP_LIKE_PROTOCOLS = frozenset({"http", "http2", "grpc"})
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}
)
META_MAX_PAIRS = 64
META_KEY_MAX = 128
META_VALUE_MAX = 512

# (kind, name) -> the stored entry, or None.
Lookup = Callable[[str, str], dict[str, Any] | None]
# kind -> every stored entry of that kind.
ListEntries = Callable[[str], Iterable[dict[str, Any]]]


class EntryError(ValueError):
    """A config entry body that cannot be stored. `str(err)` is Consul's text.

    `decoding` is True when Consul would fail while decoding the body (HTTP 400 with
    `Request decoding failed: <text>`); otherwise the body decoded but failed the kind's
    validation, which Consul reports from its RPC layer."""

    def __init__(self, text: str, *, decoding: bool = False) -> None:
        super().__init__(text)
        self.decoding = decoding


class GraphError(ValueError):
    """The write is valid on its own but breaks a discovery chain; Consul answers HTTP 500."""


# --------------------------------------------------------------------------------------------
# Small Go-isms used in error texts.


def multierror(errors: list[str]) -> str:
    """hashicorp/go-multierror's text for a list of errors (Consul returns these as is)."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def _go_kind(value: object) -> str:
    """The Go type a JSON value decodes to, as mapstructure names it in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>" if value is None else type(value).__name__


def _snake(name: str) -> str:
    """`PathPrefix` -> `path_prefix`, `ExternalSNI` -> `external_sni`, `TLSMinVersion` ->
    `tls_min_version`: the alias Consul declares for a multi-word field."""
    out = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", out)
    return out.lower()


def is_http_like(protocol: str) -> bool:
    """http, http2 and grpc allow routers and splitters; tcp does not."""
    return protocol.lower() in HTTP_LIKE_PROTOCOLS
