"""host:port text as Go's net.SplitHostPort / net.JoinHostPort read and write it.

One splitter for consulpy: check targets, RPC server addresses, Envoy's admin bind, the dev
agent's HTTP address. IPv6 hosts are bracketed (`[::1]:8500`); the errors are Go's texts,
which Consul shows in check output. `consulpy/raft` and `consulpy/gossip` are standalone
libraries and keep their own small parsers.
"""

from __future__ import annotations


class AddressError(ValueError):
    """A host:port that does not split; the message is Go's net.SplitHostPort text."""


def split_host_port(addr: str) -> tuple[str, int]:
    """Go's net.SplitHostPort plus a numeric port; "[::1]:80" -> ("::1", 80)."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise AddressError(f"address {addr}: missing ']' in address")
        host, rest = addr[1:end], addr[end + 1 :]
        if not rest.startswith(":"):
            raise AddressError(f"address {addr}: missing port in address")
        port_text = rest[1:]
    else:
        if ":" not in addr:
            raise AddressError(f"address {addr}: missing port in address")
        host, port_text = addr.rsplit(":", 1)
        if ":" in host:
            raise AddressError(f"address {addr}: too many colons in address")
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise AddressError(f"address {addr}: invalid port")
    return host, port


def join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort: brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
