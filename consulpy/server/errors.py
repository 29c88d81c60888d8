"""Errors the server role raises to its callers (HTTP renders them as Consul does)."""

from __future__ import annotations


class CommandError(Exception):
    """A command or read the server refused; the text is what Consul reports (HTTP 500)."""


class NoLeaderError(Exception):
    """No leader within rpc_hold_timeout; writes were not proposed (HTTP 500)."""

    def __str__(self) -> str:
        return "No cluster leader"
