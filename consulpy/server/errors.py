"""Errors the server role raises to its callers (HTTP renders them as Consul does)."""

from __future__ import annotations


class CommandError(Exception):
    """A command or read the server refused; the text is what Consul reports (HTTP 500)."""


class NoLeaderError(Exception):
    """No leader within rpc_hold_timeout; writes were not proposed (HTTP 500)."""

    def __str__(self) -> str:
        return "No cluster leader"


class RequestError(CommandError):
    """A request refused before it reaches the log because it is malformed or invalid
    (HTTP 400 with the text, as Consul answers a bad request)."""


class RateLimitExceeded(CommandError):
    """A server refused the RPC under its `limits.rpc_rate` (HTTP 429 "rate limit exceeded")."""
