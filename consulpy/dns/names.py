"""Question names -> what to look up (the grammar of the spec's section 3).

Pure functions over lower-cased label tuples; no I/O, so every name form is unit-testable.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("service", "connect", "ingress", "virtual", "node", "query", "addr")
_LOCALITY_KEYS = ("dc", "cluster", "peer", "ns", "ap", "sg")


@dataclass(frozen=True, slots=True)
class Parsed:
    kind: str
    parts: tuple[str, ...]
    datacenter: str | None  # None: the local one
    domain: str  # the zone the question used, e.g. "consul."


class Invalid(Exception):
    """The name is inside the zone but names nothing (NXDOMAIN)."""


def zone_of(labels: tuple[str, ...], zones: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """(zone, labels left of it) for the longest matching zone, or None."""
    best: tuple[str, tuple[str, ...]] | None = None
    for zone in zones:
        zlabels = tuple(zone.rstrip(".").split("."))
        n = len(zlabels)
        matches = len(labels) >= n and labels[len(labels) - n :] == zlabels
        if matches and (best is None or n > len(best[0].rstrip(".").split("."))):
            best = (zone, labels[: len(labels) - n])
    return best


def _locality(suffix: tuple[str, ...], kind: str) -> str | None:
    """The datacenter named by the labels right of the kind label (None = local).

    Raises Invalid for namespaces/partitions other than `default`, peers, sameness groups and
    anything that does not parse.
    """
    if not suffix:
        return None
    if kind == "addr":
        return None
    if len(suffix) == 1:
        return suffix[0]
    if kind == "query":
        raise Invalid("a prepared-query name takes at most a datacenter")
    if len(suffix) == 2 and suffix[1] not in _LOCALITY_KEYS:
        namespace, dc = suffix
        if namespace != "default":
            raise Invalid("namespaces are a Consul Enterprise feature")
        return dc
    if len(suffix) % 2 or len(suffix) > 6:
        raise Invalid("bad locality")
    found: dict[str, str] = {}
    for i in range(0, len(suffix), 2):
        value, key = suffix[i], suffix[i + 1]
        if key not in _LOCALITY_KEYS or key in found:
            raise Invalid("bad locality")
        found["dc" if key == "cluster" else key] = value
    if "peer" in found or "sg" in found:
        raise Invalid("peering and sameness groups are not supported")
    for key in ("ns", "ap"):
        if found.get(key, "default") != "default":
            raise Invalid("namespaces and partitions are a Consul Enterprise feature")
    return found.get("dc")


def parse(labels: tuple[str, ...], domain: str, *, srv: bool) -> Parsed:
    """Labels (lower-case, zone stripped) -> Parsed; Invalid when they name nothing."""
    kind_at = -1
    for i in range(len(labels) - 1, -1, -1):
        if labels[i] in KINDS:
            kind_at = i
            break
    if kind_at < 0 and srv:
        # `_web._tcp.consul`: the first label from the right starting with `_` acts as if it
        # were followed by `service`.
        for i in range(len(labels) - 1, -1, -1):
            if labels[i].startswith("_"):
                kind_at = i + 1
                labels = (*labels[:kind_at], "service", *labels[kind_at:])
                break
    if kind_at <= 0:
        raise Invalid("no lookup kind")
    kind = labels[kind_at]
    parts = labels[:kind_at]
    suffix = labels[kind_at + 1 :]
    if kind == "addr" and kind_at != 1:
        raise Invalid("addr must be the second label")
    return Parsed(kind, parts, _locality(suffix, kind), domain)


def ptr_address(labels: tuple[str, ...]) -> str | None:
    """The IP text of an in-addr.arpa / ip6.arpa name (labels without the trailing root)."""
    import ipaddress

    if labels[-2:] == ("in-addr", "arpa") and len(labels) == 6:
        octets = labels[:4]
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(octets))))
        except ValueError:
            return None
    if labels[-2:] == ("ip6", "arpa") and len(labels) == 34:
        nibbles = labels[:32]
        if not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return None
        text = "".join(reversed(nibbles))
        groups = ":".join(text[i : i + 4] for i in range(0, 32, 4))
        return str(ipaddress.IPv6Address(groups))
    return None


def hex_address(label: str) -> str | None:
    """`0a000001` -> `10.0.0.1`, 32 hex digits -> the IPv6 address; None if not hex/size."""
    import ipaddress

    if len(label) not in (8, 32):
        return None
    try:
        raw = bytes.fromhex(label)
    except ValueError:
        return None
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    return str(ipaddress.IPv6Address(raw))


def address_hex(ip: str) -> str:
    """The reverse of hex_address: lower-case hex of the packed address."""
    import ipaddress

    return ipaddress.ip_address(ip).packed.hex()
