"""Address checks for bind/advertise/client settings, and private-IP detection.

Consul accepts go-sockaddr templates (`{{ GetPrivateIP }}`) wherever an address goes; we do not
evaluate templates and say so clearly instead of failing later with a confusing bind error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")
)
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


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_ifu", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _interface_ipv4_addresses() -> list[str]:
    """Every IPv4 address of every interface that is up (getifaddrs(3): unlike the
    SIOCGIFADDR ioctl it also lists an interface's secondary addresses)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    head = ctypes.POINTER(_IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        return []
    found: list[str] = []
    try:
        node = head
        while node:
            ifa = node.contents
            if ifa.ifa_addr and ifa.ifa_flags & _IFF_UP:
                family = ctypes.c_ushort.from_address(ifa.ifa_addr).value
                if family == socket.AF_INET:
                    raw = ctypes.string_at(ifa.ifa_addr + 4, 4)  # sockaddr_in.sin_addr
                    found.append(str(ipaddress.IPv4Address(raw)))
            node = ifa.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found


def private_ipv4_addresses() -> list[str]:
    """Private IPv4 addresses of interfaces that are up (what Consul advertises for 0.0.0.0),
    secondary addresses included: two of them make the choice ambiguous, as in Consul.

    Read locally with getifaddrs(3); nothing is sent anywhere. [] where it is unavailable.
    """
    found: list[str] = []
    try:
        addresses = _interface_ipv4_addresses()
    except (OSError, AttributeError):
        return found
    for text in addresses:
        addr = ipaddress.IPv4Address(text)
        if any(addr in net for net in _PRIVATE_V4) and text not in found:
            found.append(text)
    return found
