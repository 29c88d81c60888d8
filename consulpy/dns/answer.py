"""One DNS request -> one response plan: the lookup runs once, the rendering many times.

`Responder.resolve` does the asynchronous part (catalog reads through `lookup.Lookups`,
recursor exchanges) and returns a `Plan`. `Plan.render()` is synchronous and cheap: it shuffles
the instances, applies the record limits and returns a `truncate.Draft`, so the server can
cache a plan and still give every client a freshly shuffled answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

from consulpy.dns import names
from consulpy.dns import records as rec
from consulpy.dns.lookup import Lookups
from consulpy.dns.recursor import Recursors
from consulpy.dns.settings import DNSSettings
from consulpy.dns.truncate import Draft
from consulpy.server.errors import CommandError
from consulpy.server.router import TARGET_DC
from consulpy.util.durations import parse_duration

RT = dns.rdatatype
Row = dict[str, Any]
RRset = dns.rrset.RRset
_ADDRESS_TYPES = (RT.A, RT.AAAA, RT.ANY)
_MAX_CNAME_DEPTH = 3
NO_PATH = "No path to datacenter"  # the servers' answer for a datacenter they do not know


@dataclass(slots=True)
class Sections:
    """What a lookup produced; rcode NXDOMAIN/NOERROR decides the authority SOA."""

    rcode: int = dns.rcode.NOERROR
    answer: list[RRset] = field(default_factory=list)
    additional: list[RRset] = field(default_factory=list)
    authority: list[RRset] = field(default_factory=list)
    soa: bool = False  # add the zone SOA to the authority section
    cacheable: bool = True  # False: the answer may change without a catalog change


@dataclass(slots=True)
class Plan:
    """A resolved request. `render` builds a fresh (re-shuffled) draft on each call;
    `varies` says whether two renders can differ; `cacheable` whether it may be reused."""

    render: Callable[[], Draft]
    varies: bool = False
    cacheable: bool = True


class Responder:
    def __init__(self, lookups: Lookups, settings: DNSSettings, recursors: Recursors) -> None:
        self.lookups = lookups
        self.settings = settings
        self.recursors = recursors
        zones = [settings.domain] + ([settings.alt_domain] if settings.alt_domain else [])
        self.zones = tuple(zones)

    # ------------------------------------------------------------------ entry
    async def resolve(self, request: dns.message.Message, *, tcp: bool, source: str = "") -> Plan:
        base_flags = dns.flags.QR | (request.flags & (dns.flags.RD | dns.flags.CD))
        if request.opcode() != dns.opcode.QUERY:
            return self._fixed(request, base_flags, dns.rcode.NOTIMP)
        if request.edns > 0:  # only EDNS version 0 exists (RFC 6891)
            return self._fixed(request, base_flags, dns.rcode.BADVERS)
        if not request.question:
            return self._fixed(request, base_flags, dns.rcode.REFUSED)
        q = request.question[0]
        if q.rdtype in (RT.AXFR, RT.IXFR):
            return self._fixed(request, base_flags, dns.rcode.NOTIMP)
        labels = tuple(label.decode("ascii", "replace").lower() for label in q.name.labels[:-1])
        hit = names.zone_of(labels, self.zones)
        in_arpa = labels[-1:] == ("arpa",)
        if hit is None and not in_arpa:
            return await self._recurse(request, tcp, base_flags)
        flags = base_flags | dns.flags.AA
        if self.recursors:
            flags |= dns.flags.RA
        if hit is None:
            sections = await self._ptr(q, labels)
            if sections is None:
                if self.recursors:
                    return await self._recurse(request, tcp, base_flags)
                sections = Sections(rcode=dns.rcode.NXDOMAIN, soa=True)
            zone = self.settings.domain
        else:
            zone, rest = hit
            for option in request.options:  # EDNS Client Subnet names the real client
                if isinstance(option, dns.edns.ECSOption):
                    source = str(option.address)
            sections = await self._in_zone(q.name, q.rdtype, rest, zone, depth=0, source=source)
        return self._plan(request, flags, sections, zone)

    def _draft(self, request: dns.message.Message, flags: int, rcode: int) -> Draft:
        question = request.question[0] if request.question else None
        rcode_flags, ednsflags = dns.rcode.to_flags(rcode)
        draft = Draft(id=request.id, flags=flags | rcode_flags, question=question)
        if request.edns >= 0:
            options = []
            for option in request.options:
                if isinstance(option, dns.edns.ECSOption):
                    options.append(dns.edns.ECSOption(option.address, option.srclen, 0))
            echo = dns.message.Message()
            echo.use_edns(0, ednsflags, request.payload, options=options)
            draft.opt = echo.opt
        return draft

    def _fixed(self, request: dns.message.Message, flags: int, rcode: int) -> Plan:
        return Plan(lambda: self._draft(request, flags, rcode))

    def _plan(
        self, request: dns.message.Message, flags: int, sections: Sections | _Shuffled, zone: str
    ) -> Plan:
        zone_name = rec.make_name(zone) or dns.name.root

        def render() -> Draft:
            current = sections.render() if isinstance(sections, _Shuffled) else sections
            draft = self._draft(request, flags, current.rcode)
            draft.answer = list(current.answer)
            draft.additional = list(current.additional)
            draft.authority = list(current.authority)
            if current.soa:
                draft.authority.append(rec.soa_rr(zone_name, self.settings))
            return draft

        return Plan(
            render,
            varies=isinstance(sections, _Shuffled),
            cacheable=getattr(sections, "cacheable", True),
        )

    # ------------------------------------------------------------ recursion
    async def _recurse(self, request: dns.message.Message, tcp: bool, base_flags: int) -> Plan:
        if not self.recursors:
            return self._fixed(request, base_flags, dns.rcode.REFUSED)
        reply = await self.recursors.exchange(request, tcp=tcp)
        if reply is None:
            return Plan(
                lambda: self._draft(request, base_flags | dns.flags.RA, dns.rcode.SERVFAIL),
                cacheable=False,
            )

        def relay() -> Draft:
            draft = self._draft(request, reply.flags & ~0xF, reply.rcode())
            draft.flags |= dns.flags.RA
            draft.answer = [r for r in reply.answer]
            draft.authority = [r for r in reply.authority]
            draft.additional = [r for r in reply.additional]
            return draft

        return Plan(relay, cacheable=False)

    # ------------------------------------------------------------- the zone
    async def _in_zone(
        self,
        qname: dns.name.Name,
        qtype: int,
        rest: tuple[str, ...],
        zone: str,
        depth: int,
        source: str = "",
    ) -> Sections | _Shuffled:
        if qtype in (RT.SOA, RT.NS):
            return await self._apex(qtype, zone)
        try:
            parsed = names.parse(rest, zone, srv=qtype == RT.SRV)
        except names.Invalid:
            return Sections(rcode=dns.rcode.NXDOMAIN, soa=True)
        local = self.settings.datacenter
        remote = parsed.datacenter if parsed.datacenter not in (None, local) else None
        # Another datacenter's names: the same reads with that datacenter as their target
        # (the servers forward them over the WAN, as `?dc=`); never cached here, since the
        # answer cache follows this datacenter's catalog.
        routed = TARGET_DC.set(remote or "")
        try:
            sections = await self._dispatch(qname, qtype, parsed, depth, source, remote)
        except CommandError as exc:
            if remote is None or str(exc) != NO_PATH:
                raise
            sections = Sections(rcode=dns.rcode.NXDOMAIN, soa=True)  # unknown datacenter
        finally:
            TARGET_DC.reset(routed)
        if remote is not None:
            sections.cacheable = False
        return sections

    async def _dispatch(
        self,
        qname: dns.name.Name,
        qtype: int,
        parsed: names.Parsed,
        depth: int,
        source: str,
        remote: str | None,
    ) -> Sections | _Shuffled:
        kind = parsed.kind
        if kind == "node":
            return await self._node(qname, qtype, parsed, depth, remote)
        if kind in ("service", "connect", "ingress"):
            return await self._service(qname, qtype, parsed, depth, remote)
        if kind == "addr":
            return self._addr(qname, qtype, parsed)
        if kind == "virtual":
            # No virtual IPs exist in consulpy yet: Consul's answer for a service without one.
            return Sections()
        if kind == "query":
            return await self._query(qname, qtype, parsed, depth, source)
        return Sections(rcode=dns.rcode.NXDOMAIN, soa=True)

    def _fqdn(self, *labels: str) -> dns.name.Name | None:
        return rec.make_name(".".join(labels))

    async def _apex(self, qtype: int, zone: str) -> Sections:
        s = self.settings
        zone_name = rec.make_name(zone) or dns.name.root
        rows = await self.lookups.service_nodes("consul")
        healthy = [r for r in rows if self._healthy(r, only_passing=False)]
        random.shuffle(healthy)
        ns: list[RRset] = []
        glue: list[RRset] = []
        for row in healthy:
            if len(ns) >= 3:
                break
            node = row["Node"]
            target = self._fqdn(node["Node"].lower(), "node", s.datacenter, zone)
            address = rec.instance_address(node, None, RT.ANY)
            if target is None or rec.ip_family(address) == 0:
                continue
            ns.append(rec.ns_rr(zone_name, s.node_ttl, target))
            glue.append(rec.address_rr(target, s.node_ttl, address))
        if qtype == RT.SOA:
            return Sections(answer=[rec.soa_rr(zone_name, s)], authority=ns, additional=glue)
        return Sections(answer=ns, additional=glue)

    # ----------------------------------------------------------------- node
    async def _find_node(self, name: str, remote: str | None = None) -> Row | None:
        found = await self.lookups.node(name)
        if found is not None:
            return found["Node"]
        # The cached index holds this datacenter's nodes only.
        nodes = await (self.lookups.nodes() if remote else self.lookups.nodes_index())
        for node in nodes:
            if node["Node"].lower() == name:
                return node
        if len(name) >= 2 and all(c in "0123456789abcdef-" for c in name):
            matches = [n for n in nodes if (n.get("ID") or "").lower().startswith(name)]
            if len(matches) == 1:
                return matches[0]
        return None

    async def _node(
        self,
        qname: dns.name.Name,
        qtype: int,
        parsed: names.Parsed,
        depth: int,
        remote: str | None = None,
    ) -> Sections:
        s = self.settings
        node = await self._find_node(".".join(parsed.parts), remote)
        if node is None:
            return Sections(rcode=dns.rcode.NXDOMAIN, soa=True)
        ttl = s.node_ttl
        out = Sections()
        if qtype in _ADDRESS_TYPES:
            address = rec.instance_address(node, None, qtype, wan=self._wan(remote))
            family = rec.ip_family(address)
            if family and (qtype == RT.ANY or (family == 4) == (qtype == RT.A)):
                out.answer.append(rec.address_rr(qname, ttl, address))
            elif address and family == 0:
                await self._cname(qname, ttl, address, out, depth)
        if qtype in (RT.TXT, RT.ANY):
            out.answer.extend(rec.meta_txt(qname, ttl, node.get("Meta")))
        elif qtype in (RT.A, RT.AAAA) and s.enable_additional_node_meta_txt and out.answer:
            out.additional.extend(rec.meta_txt(qname, ttl, node.get("Meta")))
        if not out.answer:
            out.soa = True
        return out

    # -------------------------------------------------------------- service
    def _healthy(self, row: Row, *, only_passing: bool) -> bool:
        for check in row.get("Checks") or ():
            status = check.get("Status")
            if status == "critical" or (only_passing and status != "passing"):
                return False
        return True

    async def _instances(self, service: str, connect: bool, ingress: bool = False) -> list[Row]:
        if ingress:  # <svc>.ingress: the ingress gateways exposing the service
            return await self.lookups.service_nodes(service, ingress=True)
        rows = await self.lookups.service_nodes(service, connect=connect)
        if rows or connect:
            return rows
        # Service names are case-insensitive in DNS; the catalog keys them as registered.
        for name in await self.lookups.service_names():
            if name.lower() == service and name != service:
                return await self.lookups.service_nodes(name)
        return rows

    def _wan(self, datacenter: str | None) -> bool:
        """Whether answers for `datacenter`'s instances use their WAN addresses."""
        return (
            self.settings.translate_wan_addrs
            and datacenter is not None
            and datacenter.lower() != self.settings.datacenter
        )

    async def _service(
        self,
        qname: dns.name.Name,
        qtype: int,
        parsed: names.Parsed,
        depth: int,
        remote: str | None = None,
    ) -> Sections | _Shuffled:
        s = self.settings
        parts = parsed.parts
        tag: str | None = None
        if parsed.kind in ("connect", "ingress"):
            service = parts[-1]
        elif len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
            service = parts[0][1:]
            tag = None if parts[1] == "_tcp" else parts[1][1:]
        elif len(parts) == 1:
            service = parts[0]
        elif len(parts) == 2:
            tag, service = parts
        else:
            return Sections(rcode=dns.rcode.NXDOMAIN, soa=True)
        rows = await self._instances(
            service, parsed.kind == "connect", ingress=parsed.kind == "ingress"
        )
        rows = [
            r
            for r in rows
            if self._healthy(r, only_passing=s.only_passing)
            and (tag is None or tag in {t.lower() for t in r["Service"].get("Tags") or ()})
        ]
        if not rows:
            return Sections(rcode=dns.rcode.NXDOMAIN, soa=True)
        ttl = s.service_ttl_for(service)
        wan = self._wan(remote)
        hostnames = {}
        for row in rows:
            address = rec.instance_address(row["Node"], row["Service"], qtype, wan=wan)
            if address and rec.ip_family(address) == 0 and address not in hostnames:
                if len(hostnames) >= 5:
                    break
                sub = Sections()
                await self._cname(qname, ttl, address, sub, depth)
                hostnames[address] = sub
        return _Shuffled(
            lambda: self._render_service(
                qname, qtype, rows, ttl, parsed.domain, hostnames, dc=remote or s.datacenter
            )
        )

    def _render_service(
        self,
        qname: dns.name.Name,
        qtype: int,
        rows: list[Row],
        ttl: int,
        zone: str,
        hostnames: dict[str, Sections],
        shuffle: bool = True,
        dc: str = "",
    ) -> Sections:
        """`dc`: the datacenter of `rows` (in the SRV targets' names; another one's
        addresses are translated when `translate_wan_addrs` is on)."""
        s = self.settings
        dc = dc or s.datacenter
        wan = self._wan(dc)
        rows = list(rows)
        if shuffle:
            random.shuffle(rows)
        out = Sections()
        if qtype == RT.SRV:
            seen: set[tuple[str, str, int]] = set()
            for row in rows:
                node, svc = row["Node"], row["Service"]
                address = rec.instance_address(node, svc, RT.SRV, wan=wan)
                port = rec.instance_port(svc, wan=wan)
                key = (node["Node"], address, port)
                if key in seen or not address:
                    continue
                seen.add(key)
                weight = self._weight(row)
                family = rec.ip_family(address)
                node_meta = s.enable_additional_node_meta_txt
                own = svc.get("Address") or (wan and rec.service_wan_address(svc))
                if family and not own:
                    target = self._fqdn(node["Node"].lower(), "node", dc, zone)
                elif family:
                    target = self._fqdn(names.address_hex(address), "addr", dc, zone)
                else:
                    target = rec.make_name(address)
                if target is None:
                    continue
                out.answer.append(rec.srv_rr(qname, ttl, weight, port, target))
                if family:
                    out.additional.append(rec.address_rr(target, ttl, address))
                else:
                    resolved = hostnames.get(address)
                    if resolved is not None:
                        out.additional.extend(_retarget(resolved.answer[1:], ttl))
                if node_meta:
                    node_name = self._fqdn(node["Node"].lower(), "node", dc, zone)
                    if node_name is not None:
                        out.additional.extend(rec.meta_txt(node_name, ttl, node.get("Meta")))
        elif qtype in _ADDRESS_TYPES:
            emitted: set[str] = set()
            cname_group: list[RRset] | None = None
            produced = 0
            for row in rows:
                if s.a_record_limit and produced >= s.a_record_limit:
                    break
                address = rec.instance_address(row["Node"], row["Service"], qtype, wan=wan)
                family = rec.ip_family(address)
                if family and (qtype == RT.ANY or (family == 4) == (qtype == RT.A)):
                    if address in emitted:
                        continue
                    emitted.add(address)
                    out.answer.append(rec.address_rr(qname, ttl, address))
                    produced += 1
                elif address and not family and cname_group is None:
                    resolved = hostnames.get(address)
                    if resolved is not None:
                        cname_group = _retarget(resolved.answer, ttl)
            if not out.answer and cname_group:
                out.answer = cname_group
        if not out.answer:
            out.soa = True
        return out

    @staticmethod
    def _weight(row: Row) -> int:
        weights = row["Service"].get("Weights") or {}
        statuses = {c.get("Status") for c in row.get("Checks") or ()}
        if "warning" in statuses:
            return int(weights.get("Warning", 1))
        return int(weights.get("Passing", 1))

    async def _cname(
        self,
        owner: dns.name.Name,
        ttl: int,
        hostname: str,
        out: Sections,
        depth: int,
    ) -> None:
        """CNAME owner -> hostname, then what resolving the hostname gives (internally when it
        is inside a Consul domain, else an A question to the recursors)."""
        target = rec.make_name(hostname)
        if target is None or target == owner:
            return
        out.answer.append(rec.cname_rr(owner, ttl, target))
        labels = tuple(label.decode("ascii", "replace").lower() for label in target.labels[:-1])
        hit = names.zone_of(labels, self.zones)
        resolved: list[RRset] = []
        if hit is not None:
            if depth >= _MAX_CNAME_DEPTH:
                return
            inner = await self._in_zone(target, RT.ANY, hit[1], hit[0], depth + 1)
            if isinstance(inner, _Shuffled):
                inner = inner.render()
            resolved = inner.answer
        elif self.recursors:
            query = dns.message.make_query(target, RT.A)
            reply = await self.recursors.exchange(query, tcp=False)
            if reply is not None:
                resolved = list(reply.answer)
        out.answer.extend(_retarget(resolved, ttl))

    # ---------------------------------------------------------- prepared query
    async def _query(
        self, qname: dns.name.Name, qtype: int, parsed: names.Parsed, depth: int, source: str
    ) -> Sections:
        """`<name-or-id>.query.<domain>` (spec 4.7): the query executed on the servers, its
        nodes rendered as a service lookup, TTL from the query's DNS.TTL. Never cached: a
        query can change (or go with its session) without any catalog change."""
        parts = list(parsed.parts)
        if len(parts) >= 2 and parts[0].startswith("_") and parts[-1].startswith("_"):
            parts = [parts[0][1:], *parts[1:-1]]  # RFC 2782: the protocol label is ignored
        result = await self.lookups.execute_query(".".join(parts), source)
        if result is None or not result.get("Nodes"):
            return Sections(rcode=dns.rcode.NXDOMAIN, soa=True, cacheable=False)
        nodes = result["Nodes"]
        ttl_text = (result.get("DNS") or {}).get("TTL") or ""
        service = str(result.get("Service") or "")
        ttl = _query_ttl(ttl_text) if ttl_text else self.settings.service_ttl_for(service)
        # The datacenter that answered: ours, the one named, or a failover target.
        dc = str(result.get("Datacenter") or self.settings.datacenter).lower()
        wan = self._wan(dc)
        hostnames: dict[str, Sections] = {}
        for row in nodes:
            address = rec.instance_address(row["Node"], row["Service"], qtype, wan=wan)
            if address and rec.ip_family(address) == 0 and address not in hostnames:
                if len(hostnames) >= 5:
                    break
                sub = Sections()
                await self._cname(qname, ttl, address, sub, depth)
                hostnames[address] = sub
        # Kept in the execution's order: it shuffled, then moved the near node first.
        out = self._render_service(
            qname, qtype, nodes, ttl, parsed.domain, hostnames, shuffle=False, dc=dc
        )
        out.cacheable = False
        return out

    # ----------------------------------------------------------------- addr
    def _addr(self, qname: dns.name.Name, qtype: int, parsed: names.Parsed) -> Sections:
        ip = names.hex_address(parsed.parts[0]) if len(parsed.parts) == 1 else None
        if ip is None:
            return Sections(rcode=dns.rcode.NXDOMAIN, soa=True)
        record = rec.address_rr(qname, self.settings.node_ttl, ip)
        family_type = RT.A if rec.ip_family(ip) == 4 else RT.AAAA
        if qtype in (family_type, RT.ANY):
            return Sections(answer=[record])
        return Sections(additional=[record])

    # ------------------------------------------------------------------ PTR
    async def _ptr(self, q: dns.rrset.RRset, labels: tuple[str, ...]) -> Sections | None:
        """PTR for a catalog address; None when nothing matches (recursors may know)."""
        ip = names.ptr_address(labels) if q.rdtype in (RT.PTR, RT.ANY) else None
        if ip is None:
            return None
        s = self.settings
        nodes, services = await self.lookups.address_index()
        if ip in nodes:
            target = self._fqdn(nodes[ip].lower(), "node", s.datacenter, s.domain)
        elif ip in services:
            target = self._fqdn(services[ip].lower(), "service", s.datacenter, s.domain)
        else:
            return None
        return Sections(answer=[rec.ptr_rr(q.name, target)]) if target is not None else None


class _Shuffled:
    """Sections whose order is drawn anew on every render."""

    __slots__ = ("cacheable", "render")

    def __init__(self, render: Callable[[], Sections]) -> None:
        self.render = render
        self.cacheable = True


def _query_ttl(text: str) -> int:
    """A query's DNS.TTL (a Go duration, validated when stored) in whole seconds."""
    try:
        return max(0, int(parse_duration(text)))
    except ValueError:
        return 0


def _retarget(rrsets: list[RRset], ttl: int) -> list[RRset]:
    """Copies with the TTL overwritten (resolved records take the lookup's TTL)."""
    out = []
    for rrset in rrsets:
        for rdata in rrset:
            copy = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            copy.add(rdata, ttl)
            out.append(copy)
    return out
