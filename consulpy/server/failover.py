"""A prepared query failing over to other datacenters (Consul's queryFailover).

When the local execution found no node, the server that ran it sends the whole (rendered)
query to one server of each failover datacenter in turn, as `PreparedQuery.ExecuteRemote`
over the datacenter router, and answers with the first non-empty result. `Failovers` counts
the targets tried; `Datacenter` is the one whose result is returned (the last one that
answered when none had a node), as in Consul.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from consulpy.server.prepared_query import failover_targets
from consulpy.server.query import QueryOptions
from consulpy.state.prepared_queries import QueryError

if TYPE_CHECKING:
    from consulpy.server.endpoints.request import Request
    from consulpy.server.server import Server

log = structlog.get_logger("consulpy.server")

EXECUTE_REMOTE = "PreparedQuery.ExecuteRemote"


def other_datacenters(server: Server) -> list[str]:
    """The other datacenters of the WAN pool, nearest first by WAN RTT (unknown
    coordinates: by name)."""
    router = server.router
    if router is None:
        return []
    return [dc for dc in router.datacenters() if dc != server.datacenter]


async def execute_with_failover(
    server: Server, request: Request[Any], hops: int, result: Any
) -> Any:
    """`result` (the local execute response), or what the failover targets answer."""
    if not isinstance(result, dict) or result.get("Nodes"):
        return result
    try:
        _, query = server.store.prepared_query_resolve(None, request.payload.query)
    except QueryError:
        return result
    if query is None:
        return result
    failover = (query.get("Service") or {}).get("Failover")
    targets = failover_targets(failover, other_datacenters(server))
    if not targets:
        return result
    from consulpy.server.endpoints.prepared_query import PreparedQueryExecuteRemote
    from consulpy.server.endpoints.request import Request as Req

    out = dict(result)
    ep = server.endpoints[EXECUTE_REMOTE]
    opts = request.options
    remote_opts = QueryOptions(consistency=opts.consistency, max_stale=opts.max_stale)
    # The caller's token, as for the local execution (Consul prefers the query's stored
    # Token for both; docs/compatibility.md).
    token = request.token
    tried = 0
    for target in targets:
        tried += 1
        if target.peer:  # cluster peering: counted as tried, finds nothing (spec 7.8)
            continue
        remote = Req(
            payload=PreparedQueryExecuteRemote(
                query=query,
                dc=target.datacenter,
                limit=request.payload.limit,
                connect=request.payload.connect,
            ),
            datacenter=target.datacenter,
            token=token,
            options=remote_opts,
        )
        timeout = server.rpc_hold_timeout + 30
        try:
            # A new request (hop count from 0), as Consul's: ExecuteRemote never fails over
            # again, so this cannot loop.
            reply = await server._forward_dc(ep, remote, 0, timeout)
        except Exception as exc:  # as Consul: any error moves on to the next target
            log.warning(
                "prepared query failover: datacenter failed",
                datacenter=target.datacenter,
                error=str(exc),
            )
            continue
        answer = reply.get("result") if isinstance(reply, dict) else None
        if not isinstance(answer, dict):
            continue
        out.update(
            Service=answer.get("Service", out.get("Service")),
            Nodes=list(answer.get("Nodes") or []),
            DNS=answer.get("DNS", out.get("DNS")),
            Datacenter=answer.get("Datacenter") or target.datacenter,
        )
        if out["Nodes"]:
            break
    out["Failovers"] = tried
    return out
