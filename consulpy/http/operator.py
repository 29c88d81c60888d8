"""/v1/operator/raft/*, /v1/operator/autopilot/*, /v1/operator/usage and /v1/agent/host
(operator:read, as in Consul)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from consulpy.agent.host import host_info
from consulpy.http.agent_acl import authorize
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    empty_ok,
    endpoint,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.autopilot import render as render_autopilot
from consulpy.server.endpoints.operator import (
    AutopilotSetConfiguration,
    RaftRemovePeer,
    TransferLeader,
)
from consulpy.server.endpoints.request import Empty
from consulpy.util.decode import DecodeError, Struct, decode_struct, parse_json
from consulpy.util.goquote import go_quote

MAX_BODY = 1 << 20
# api.AutopilotConfiguration; a PUT body is decoded on top of its defaults.
AUTOPILOT_BODY = Struct(
    "AutopilotConfiguration",
    {
        "CleanupDeadServers": "bool",
        "LastContactThreshold": "duration",
        "MaxTrailingLogs": "uint64",
        "MinQuorum": "uint64",
        "ServerStabilizationTime": "duration",
        "RedundancyZoneTag": "string",
        "DisableUpgradeMigration": "bool",
        "UpgradeVersionTag": "string",
        "CreateIndex": "uint64",
        "ModifyIndex": "uint64",
    },
    strict=False,
)
AUTOPILOT_FIELDS = {
    "CleanupDeadServers": "cleanup_dead_servers",
    "LastContactThreshold": "last_contact_threshold_ns",
    "MaxTrailingLogs": "max_trailing_logs",
    "MinQuorum": "min_quorum",
    "ServerStabilizationTime": "server_stabilization_time_ns",
    "RedundancyZoneTag": "redundancy_zone_tag",
    "DisableUpgradeMigration": "disable_upgrade_migration",
    "UpgradeVersionTag": "upgrade_version_tag",
}


async def _leader_call(req: web.Request, name: str, payload: object) -> object:
    return await agent_of(req).delegate.apply(name, payload, request_token(req))


@endpoint("GET")
async def raft_configuration(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if "stale" in req.query and agent.server is not None:
        from consulpy.server.operator import raft_configuration as local_configuration

        return respond(req, local_configuration(agent.server))
    return respond(req, await _leader_call(req, "Operator.RaftConfiguration", Empty()))


@endpoint("DELETE")
async def raft_peer(req: web.Request) -> web.StreamResponse:
    payload = RaftRemovePeer(id=req.query.get("id", ""), address=req.query.get("address", ""))
    await _leader_call(req, "Operator.RaftRemovePeer", payload)
    return empty_ok()


@endpoint("POST")
async def transfer_leader(req: web.Request) -> web.StreamResponse:
    payload = TransferLeader(id=req.query.get("id", ""))
    result = await _leader_call(req, "Operator.TransferLeader", payload)
    return respond(req, result)


@endpoint("GET")
async def autopilot_health(req: web.Request) -> web.StreamResponse:
    health = await _leader_call(req, "Operator.AutopilotHealth", Empty())
    return respond(req, health, status=200 if health["Healthy"] else 429)  # type: ignore[index]


async def _autopilot_payload(req: web.Request) -> AutopilotSetConfiguration:
    cas: int | None = None
    if "cas" in req.query:
        raw = req.query["cas"]
        if not raw.isdigit() or int(raw) >= 1 << 64:
            raise bad_request(
                f"Error parsing cas value: strconv.ParseUint: parsing {go_quote(raw)}: "
                + ("value out of range" if raw.isdigit() else "invalid syntax")
            )
        cas = int(raw)
    raw_body = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
    try:
        doc: Any = parse_json(raw_body) if raw_body.strip() else {}
        if not isinstance(doc, dict):
            raise DecodeError(
                "json: cannot unmarshal "
                f"{type(doc).__name__} into Go value of type api.AutopilotConfiguration"
            )
        body = decode_struct(doc, AUTOPILOT_BODY)
    except DecodeError as exc:
        raise bad_request(f"Error parsing autopilot config: {exc}") from exc
    given = {
        field: value
        for key, field in AUTOPILOT_FIELDS.items()
        if (value := body.get(key)) is not None
    }
    return AutopilotSetConfiguration(**given, cas=cas)


@endpoint("GET", "PUT")
async def autopilot_configuration(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if req.method == "PUT":
        payload = await _autopilot_payload(req)
        done = await agent.delegate.apply(
            "Operator.AutopilotSetConfiguration", payload, request_token(req)
        )
        return respond(req, bool(done))
    opts = query_options(req)
    opts.index, opts.wait = 0, 0.0  # not a blocking endpoint in Consul
    meta, row = await agent.delegate.read(
        "Operator.AutopilotGetConfiguration", {}, opts, token=request_token(req)
    )
    if row is None:
        raise HTTPError(500, "autopilot config not initialized yet")
    return respond(req, render_autopilot(row), meta=meta)


@endpoint("GET")
async def autopilot_state(req: web.Request) -> web.StreamResponse:
    return respond(req, await _leader_call(req, "Operator.AutopilotState", Empty()))


@endpoint("GET")
async def usage(req: web.Request) -> web.StreamResponse:
    """One datacenter: `?global` answers the same (every datacenter this agent knows)."""
    agent = agent_of(req)
    meta, counts = await agent.delegate.read(
        "Operator.Usage", {}, query_options(req), token=request_token(req)
    )
    body = {
        "Usage": {agent.datacenter: counts},
        "Index": meta.index,
        "LastContact": meta.last_contact_ms * 1_000_000,
        "KnownLeader": meta.known_leader,
        "ConsistencyLevel": meta.consistency,
        "NotModified": False,
        "Backend": 0,
        "ResultsFilteredByACLs": False,
    }
    return respond(req, body, meta=meta)


@endpoint("GET", check_dc=False)
async def agent_host(req: web.Request) -> web.StreamResponse:
    await authorize(req, "operator", "read")
    info = await asyncio.get_running_loop().run_in_executor(None, host_info)
    return respond(req, info)


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/operator/raft/configuration", raft_configuration),
        web.route("*", "/v1/operator/raft/peer", raft_peer),
        web.route("*", "/v1/operator/raft/transfer-leader", transfer_leader),
        web.route("*", "/v1/operator/autopilot/health", autopilot_health),
        web.route("*", "/v1/operator/autopilot/configuration", autopilot_configuration),
        web.route("*", "/v1/operator/autopilot/state", autopilot_state),
        web.route("*", "/v1/operator/usage", usage),
        web.route("*", "/v1/agent/host", agent_host),
    ]
