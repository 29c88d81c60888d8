"""Executing a (rendered) prepared query over health rows, in the local datacenter (spec 7.6).

`execute` takes the `Health.ServiceNodes` rows of the query's service ({Node, Service,
Checks}) and applies, in Consul's order: health with `OnlyPassing` and `IgnoreCheckIDs`, node
meta, service meta, tags (`!tag` excludes), a shuffle, the near-node move-to-front rule and the
limit. Pure, so the endpoint that will serve `/v1/query/<q>/execute` and the DNS `.query`
lookup share it (through the PreparedQuery.Execute read).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
NEAR_WINDOW = 10  # Consul moves the near node to the front only if it is among the first 10


@dataclass(frozen=True)
class ExecuteResult:
    service: str
    nodes: list[Row]
    dns: dict[str, Any] = field(default_factory=lambda: {"TTL": ""})
    datacenter: str = "dc1"
    failovers: int = 0

    def to_api(self) -> Row:
        return {
            "Service": self.service,
            "Nodes": self.nodes,
            "DNS": self.dns,
            "Datacenter": self.datacenter,
            "PeerName": "",
            "Failovers": self.failovers,
        }


def _healthy(row: Row, only_passing: bool, ignore: set[str]) -> bool:
    for check in row.get("Checks") or ():
        if check.get("CheckID") in ignore:
            continue
        status = check.get("Status")
        if status == "critical" or (only_passing and status != "passing"):
            return False
    return True


def _tags_ok(row: Row, wanted: list[str]) -> bool:
    have = {t.lower() for t in row["Service"].get("Tags") or ()}
    for tag in wanted:
        tag = tag.lower()
        if tag.startswith("!"):
            if tag[1:] in have:
                return False
        elif tag and tag not in have:
            return False
    return True


def _meta_ok(meta: dict[str, str] | None, wanted: dict[str, str]) -> bool:
    meta = meta or {}
    return all(meta.get(k) == v for k, v in wanted.items())


def execute(
    query: Row,
    rows: list[Row],
    *,
    near: str = "",
    limit: int = 0,
    datacenter: str = "dc1",
    rng: random.Random | None = None,
    sort: Callable[[list[Row]], list[Row]] | None = None,
) -> ExecuteResult:
    """The local execution of `query` (already rendered if it was a template). `near` is a
    node name already resolved from `_agent`/`_ip` by the caller ("" = no sort)."""
    service = query.get("Service") or {}
    ignore = set(service.get("IgnoreCheckIDs") or ())
    only_passing = bool(service.get("OnlyPassing"))
    node_meta = service.get("NodeMeta") or {}
    service_meta = service.get("ServiceMeta") or {}
    tags = list(service.get("Tags") or ())
    nodes = [
        r
        for r in rows
        if _healthy(r, only_passing, ignore)
        and _meta_ok(r["Node"].get("Meta"), node_meta)
        and _meta_ok(r["Service"].get("Meta"), service_meta)
        and _tags_ok(r, tags)
    ]
    (rng or random).shuffle(nodes)
    if sort is not None:  # by estimated RTT from the near node; the shuffle stays for ties
        nodes = sort(nodes)
    near = near or service.get("Near") or ""
    if near and near not in ("_agent", "_ip"):
        for i, row in enumerate(nodes[:NEAR_WINDOW]):
            if row["Node"]["Node"].lower() == near.lower():
                nodes.insert(0, nodes.pop(i))
                break
    if limit > 0:
        nodes = nodes[:limit]
    dns = dict(query.get("DNS") or {"TTL": ""})
    dns.setdefault("TTL", "")
    return ExecuteResult(
        service=service.get("Service", ""), nodes=nodes, dns=dns, datacenter=datacenter
    )


@dataclass(frozen=True, slots=True)
class FailoverTarget:
    datacenter: str = ""
    peer: str = ""


def failover_targets(failover: Row | None, others: list[str]) -> list[FailoverTarget]:
    """Where to try a query whose local execution found nothing, in order, as Consul's
    queryFailover: `Targets` as listed (datacenters we do not know are skipped, peers kept);
    else the `NearestN` first of `others` (the other datacenters, nearest first), then the
    listed `Datacenters` not tried yet, unknown ones (and our own) skipped."""
    failover = failover or {}
    known = set(others)
    targets = failover.get("Targets") or ()
    if targets:
        out = []
        for t in targets:
            dc, peer = t.get("Datacenter") or "", t.get("Peer") or t.get("PeerName") or ""
            if dc:
                if dc in known:
                    out.append(FailoverTarget(datacenter=dc))
            elif peer:
                out.append(FailoverTarget(peer=peer))
        return out
    chosen: list[str] = list(others[: max(int(failover.get("NearestN") or 0), 0)])
    for dc in failover.get("Datacenters") or ():
        if dc in known and dc not in chosen:
            chosen.append(dc)
    return [FailoverTarget(datacenter=dc) for dc in chosen]
