"""Building resource records from catalog rows (spec section 5), with dnspython rdata.

Each record is its own one-element RRset so that truncation can count and drop records one at
a time, as Consul counts them; on the wire this is the same as a grouped RRset.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from consulpy.dns.settings import DNSSettings

IN = dns.rdataclass.IN
RT = dns.rdatatype
Row = dict[str, Any]
RRset = dns.rrset.RRset


def ip_family(text: str) -> int:
    """4 or 6 for an IP address, 0 for anything else (a hostname)."""
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return 0


def make_name(text: str) -> dns.name.Name | None:
    """An absolute name from dotted text; None when it cannot be a DNS name."""
    labels = [label for label in text.rstrip(".").split(".")]
    if not labels or any(not label for label in labels):
        return None
    try:
        return dns.name.Name([label.encode("ascii") for label in labels] + [b""])
    except (dns.name.LabelTooLong, dns.name.NameTooLong, UnicodeEncodeError, ValueError):
        return None


def rr(name: dns.name.Name, ttl: int, rdata: Any) -> RRset:
    rrset = dns.rrset.RRset(name, IN, rdata.rdtype)
    rrset.add(rdata, ttl)
    return rrset


def address_rr(name: dns.name.Name, ttl: int, ip: str) -> RRset:
    if ip_family(ip) == 6:
        return rr(name, ttl, AAAA(IN, RT.AAAA, str(ipaddress.IPv6Address(ip))))
    return rr(name, ttl, A(IN, RT.A, ip))


def cname_rr(name: dns.name.Name, ttl: int, target: dns.name.Name) -> RRset:
    return rr(name, ttl, CNAME(IN, RT.CNAME, target))


def srv_rr(name: dns.name.Name, ttl: int, weight: int, port: int, target: dns.name.Name) -> RRset:
    return rr(name, ttl, SRV(IN, RT.SRV, 1, weight, port, target))


def ptr_rr(name: dns.name.Name, target: dns.name.Name) -> RRset:
    return rr(name, 0, PTR(IN, RT.PTR, target))


def ns_rr(zone: dns.name.Name, ttl: int, target: dns.name.Name) -> RRset:
    return rr(zone, ttl, NS(IN, RT.NS, target))


def soa_rr(zone: dns.name.Name, settings: DNSSettings) -> RRset:
    soa = settings.soa
    return rr(
        zone,
        soa.min_ttl,
        SOA(
            IN,
            RT.SOA,
            dns.name.Name((b"ns", *zone.labels)),
            dns.name.Name((b"hostmaster", *zone.labels)),
            int(time.time()) & 0xFFFFFFFF,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.min_ttl,
        ),
    )


def _escape_key(key: str) -> str:
    key = key.replace("`", "``").replace("=", "`=")
    lead = len(key) - len(key.lstrip(" "))
    key = "` " * lead + key[lead:]
    trail = len(key) - len(key.rstrip(" "))
    if trail:
        key = key[: len(key) - trail] + "` " * trail
    return key


def meta_txt(name: dns.name.Name, ttl: int, meta: dict[str, str] | None) -> list[RRset]:
    """One TXT per node-meta pair: RFC 1464 `key=value`, or the bare value for `rfc1035-`
    keys."""
    out = []
    for key, value in (meta or {}).items():
        if key.lower().startswith("rfc1035-"):
            text = value
        else:
            text = f"{_escape_key(key)}={value.replace('`', '``')}"
        raw = text.encode("utf-8")
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        out.append(rr(name, ttl, TXT(IN, RT.TXT, chunks)))
    return out


def _tagged(tagged: dict[str, Any] | None, key: str) -> str:
    value = (tagged or {}).get(key)
    if isinstance(value, dict):
        return str(value.get("Address") or "")
    return str(value or "")


def instance_address(node: Row, service: Row | None, qtype: int, *, wan: bool = False) -> str:
    """The address an instance answers with for `qtype` (spec 5.1); "" for none. `wan`:
    the instance is in another datacenter and `translate_wan_addrs` is on, so the `wan`
    tagged addresses stand in for the plain ones (the service's first, then the node's),
    as Consul's TranslateServiceAddress / TranslateAddress."""
    prefix = "wan" if wan else "lan"
    svc_wan = _tagged(service.get("TaggedAddresses"), "wan") if wan and service else ""
    if service is not None and (service.get("Address") or svc_wan):
        default = svc_wan or service["Address"]
        tagged = service.get("TaggedAddresses")
    else:
        tagged = node.get("TaggedAddresses")
        default = (_tagged(tagged, "wan") if wan else "") or node.get("Address", "")
    v4 = _tagged(tagged, f"{prefix}_ipv4")
    v6 = _tagged(tagged, f"{prefix}_ipv6")
    family = ip_family(default)
    if qtype == RT.A:
        return v4 or (default if family in (0, 4) else "")
    if qtype == RT.AAAA:
        return v6 or (default if family in (0, 6) else "")
    return v6 or v4 or default


def service_wan_address(service: Row) -> str:
    """The service's own `wan` tagged address ("" when it has none)."""
    return _tagged(service.get("TaggedAddresses"), "wan")


def instance_port(service: Row, *, wan: bool = False) -> int:
    """The SRV port: the service's `wan` tagged port for a translated instance, if set."""
    if wan:
        tagged = (service.get("TaggedAddresses") or {}).get("wan")
        if isinstance(tagged, dict) and tagged.get("Port"):
            return int(tagged["Port"])
    return int(service.get("Port") or 0)
