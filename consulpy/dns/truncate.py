"""Fitting a response to its transport (spec section 6) and encoding it.

UDP without EDNS gets at most min(udp_answer_limit, 8) answers and 512 bytes; with EDNS the
requester's buffer size. TCP caps the answer count and 64 KiB. The TC bit is set only with
`enable_truncate` and only when answers were removed; by default clients get a silent cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.flags
import dns.name
import dns.rdatatype
import dns.renderer
import dns.rrset

RRset = dns.rrset.RRset
UDP_DEFAULT = 512
UDP_MAX = 65535 - 68
TCP_MAX = 65535 - 12


@dataclass(slots=True)
class Draft:
    """A response before it is fitted and encoded."""

    id: int
    flags: int
    question: dns.rrset.RRset | None
    answer: list[RRset] = field(default_factory=list)
    authority: list[RRset] = field(default_factory=list)
    additional: list[RRset] = field(default_factory=list)
    opt: dns.rrset.RRset | None = None  # echoed EDNS OPT record


def encode(draft: Draft, *, compress: bool, with_opt: bool = True) -> bytes:
    r = dns.renderer.Renderer(draft.id, draft.flags, 65535)
    if not compress:
        r.compress = None  # type: ignore[assignment]
    if draft.question is not None:
        r.add_question(draft.question.name, draft.question.rdtype, draft.question.rdclass)
    for section, rrsets in (
        (dns.renderer.ANSWER, draft.answer),
        (dns.renderer.AUTHORITY, draft.authority),
        (dns.renderer.ADDITIONAL, draft.additional),
    ):
        for rrset in rrsets:
            r.add_rrset(section, rrset)
    if with_opt and draft.opt is not None:
        opt = draft.opt
        r.add_rrset(dns.renderer.ADDITIONAL, opt)
    r.write_header()
    return r.get_wire()


def _resync(draft: Draft, kept: list[RRset]) -> list[RRset]:
    """For each SRV answer, the first additional record owned by its target (through CNAMEs)."""
    out: list[RRset] = []
    for answer in draft.answer:
        if answer.rdtype != dns.rdatatype.SRV:
            continue
        target = answer[0].target
        for _ in range(4):
            match = next((r for r in kept if r.name == target), None)
            if match is None:
                break
            if match not in out:
                out.append(match)
            if match.rdtype != dns.rdatatype.CNAME:
                break
            target = match[0].target
    return out


def fit(
    draft: Draft,
    *,
    tcp: bool,
    edns_payload: int | None,
    udp_answer_limit: int,
    enable_truncate: bool,
    compress: bool,
) -> bytes:
    """Trim `draft` in place for the transport and return the wire bytes."""
    original_additional = list(draft.additional)
    before = len(draft.answer)
    if tcp:
        is_srv = bool(draft.question is not None and draft.question.rdtype == dns.rdatatype.SRV)
        cap = 1024 if is_srv else 4096
        limit = TCP_MAX
        measure_compressed = compress
    else:
        limit = UDP_DEFAULT
        if edns_payload is not None and edns_payload > UDP_DEFAULT:
            limit = min(edns_payload, UDP_MAX)
        cap = min(udp_answer_limit, 8) if limit == UDP_DEFAULT else len(draft.answer)
        # In the 512-byte case Consul measures the uncompressed size.
        measure_compressed = compress and limit != UDP_DEFAULT
    if len(draft.answer) > cap:
        del draft.answer[cap:]
        draft.additional = _resync(draft, original_additional)

    def size() -> int:
        return len(encode(draft, compress=measure_compressed))

    budget = limit - 8
    if len(draft.answer) > 1 and size() > budget:
        draft.authority = []
        if size() > budget:
            answers = list(draft.answer)
            low, high = 1, len(answers)  # the largest count that fits, at least 1
            while low < high:
                mid = (low + high + 1) // 2
                draft.answer = answers[:mid]
                draft.additional = _resync(draft, original_additional)
                if size() <= budget:
                    low = mid
                else:
                    high = mid - 1
            draft.answer = answers[:low]
            draft.additional = _resync(draft, original_additional)
    if enable_truncate and len(draft.answer) < before:
        draft.flags |= dns.flags.TC
    return encode(draft, compress=compress)
