"""Address checks for bind/advertise/client settings, and private-IP detection.

Consul accepts go-sockaddr templates (`{{ GetPrivateIP }}`) wherever an address goes; we do not
evaluate templates and say so clearly instead of failing later with a confusing bind error.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")
)
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1


def parse_ip(text: str) -> IPAddress:
    """One IP address (v4 or v6; `[::]` is read as `::`); ValueError says why not."""
    if "{{" in text:
        raise ValueError(
            f"go-sockaddr templates are not supported: {text!r}; give a literal IP address"
        )
    if text.startswith("unix://"):
        raise ValueError(f"unix sockets are not supported: {text!r}")
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        raise ValueError(f"invalid ip address: {text!r}") from None


def normalise_ip(text: str) -> str:
    """The canonical text of one IP address."""
    return str(parse_ip(text))


def normalise_ip_list(text: str) -> str:
    """Space-separated IP addresses (as `client_addr` allows), canonicalised."""
    parts = text.split()
    if "{{" in text:
        parse_ip(text)  # raises the templates error
    return " ".join(normalise_ip(p) for p in parts)


def is_unspecified(text: str) -> bool:
    """True for 0.0.0.0 and :: (the "any" addresses that cannot be advertised)."""
    return parse_ip(text).is_unspecified


def private_ipv4_addresses() -> list[str]:
    """Private IPv4 addresses of interfaces that are up (what Consul advertises for 0.0.0.0).

    Read with ioctls on a local socket; nothing is sent anywhere. Returns [] where the ioctls
    are unavailable.
    """
    found: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return found
    with sock:
        for name in names:
            packed = struct.pack("256s", name.encode()[:15])
            try:
                flags = struct.unpack(
                    "H", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, packed)[16:18]
                )[0]
                if not flags & _IFF_UP:
                    continue
                raw = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, packed)[20:24]
            except OSError:
                continue
            addr = ipaddress.IPv4Address(raw)
            if any(addr in net for net in _PRIVATE_V4) and str(addr) not in found:
                found.append(str(addr))
    return found
