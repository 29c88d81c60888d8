"""Errors that cross the RPC boundary by kind, so the caller re-raises the same exception the
server raised (and the HTTP layer renders it as Consul would)."""

from __future__ import annotations


class RPCError(Exception):
    """An error raised by the remote handler (kind names its class) or by the RPC itself."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text


class RPCUnavailable(RPCError):
    """The server could not be reached or the connection broke before an answer."""

    def __init__(self, text: str) -> None:
        super().__init__("unavailable", text)


class RPCDialError(RPCUnavailable):
    """The connection could not be made: nothing was sent, so the call is safe to retry."""
