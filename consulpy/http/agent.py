"""/v1/agent/*: this agent's own view and its local services and checks."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aiohttp import web

from consulpy.agent.definitions import DefinitionError
from consulpy.http.agent_acl import authorize, caller, can, filtered_header, require
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    empty_ok,
    endpoint,
    parse_wait,
    read_body,
    respond,
    text_error,
)
from consulpy.http.tokens import request_token
from consulpy.state.views import aggregated_status
from consulpy.util.decode import DecodeError, Struct, decode_struct, parse_json
from consulpy.util.goparse import parse_bool

MAX_BODY = 1 << 20
DEFAULT_HASH_WAIT = 300.0
MAX_HASH_WAIT = 600.0


async def _json_body(req: web.Request, allow_empty: bool = False) -> dict[str, Any]:
    raw = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("Request decode failed: EOF")
    try:
        doc = parse_json(raw)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    if not isinstance(doc, dict):
        raise bad_request("Request decode failed: json: cannot unmarshal array into Go value")
    return doc


def _definition_error(exc: DefinitionError) -> HTTPError:
    return HTTPError(exc.status, str(exc))


def _filtered(req: web.Request, mapping: dict[str, Any], schema: str) -> dict[str, Any]:
    expr = req.query.get("filter", "")
    if not expr:
        return mapping
    from consulpy.server.filtering import filter_map

    try:
        return filter_map(mapping, expr, schema)
    except ValueError as exc:
        raise HTTPError(500, f"Failed to create boolean expression evaluator: {exc}") from exc


# ------------------------------------------------------------------- self
@endpoint("GET", check_dc=False)
async def agent_self(req: web.Request) -> web.StreamResponse:
    from consulpy.agent.views import self_info

    agent = agent_of(req)
    await authorize(req, "agent", "read", agent.node_name)
    return respond(req, await self_info(agent))


@endpoint("GET", check_dc=False)
async def agent_members(req: web.Request) -> web.StreamResponse:
    q = req.query
    wan = bool(q.get("wan"))
    segment = q.get("segment", "")
    if wan and segment not in ("", "_all"):
        raise bad_request("Cannot provide a segment with wan=true")
    who = await caller(req)
    members = agent_of(req).members(wan=wan)
    visible = [m for m in members if can(who, "node", "read", m.get("Name", ""))]
    headers = filtered_header(req, who, len(visible) != len(members))
    return respond(req, visible, headers=headers)


@endpoint("GET", check_dc=False)
async def agent_version(req: web.Request) -> web.StreamResponse:
    from consulpy.agent.views import version_info

    return respond(req, version_info())


@endpoint("PUT", check_dc=False)
async def agent_reload(req: web.Request) -> web.StreamResponse:
    await authorize(req, "agent", "write", agent_of(req).node_name)
    try:
        await agent_of(req).reload()
    except Exception as exc:  # any reload failure is reported as is, the old config stays
        raise HTTPError(500, str(exc)) from exc
    return empty_ok()


# --------------------------------------------------------------- services
def agent_service_view(row: dict[str, Any], datacenter: str) -> dict[str, Any]:
    """AgentService: Tags [] and Meta {} forced; Proxy only for proxies, Connect only when
    native; Kind, SocketPath, TaggedAddresses omitted when empty."""
    out: dict[str, Any] = {}
    if row.get("Kind"):
        out["Kind"] = row["Kind"]
    out["ID"] = row["ID"]
    out["Service"] = row["Service"]
    out["Tags"] = list(row.get("Tags") or [])
    out["Meta"] = dict(row.get("Meta") or {})
    out["Port"] = row.get("Port") or 0
    out["Address"] = row.get("Address") or ""
    if row.get("SocketPath"):
        out["SocketPath"] = row["SocketPath"]
    if row.get("TaggedAddresses"):
        out["TaggedAddresses"] = row["TaggedAddresses"]
    out["Weights"] = row.get("Weights") or {"Passing": 1, "Warning": 1}
    out["EnableTagOverride"] = bool(row.get("EnableTagOverride"))
    if row.get("Kind"):
        out["Proxy"] = row.get("Proxy") or {}
    if (row.get("Connect") or {}).get("Native"):
        out["Connect"] = {"Native": True}
    if row.get("Locality"):
        out["Locality"] = row["Locality"]
    out["Datacenter"] = datacenter
    return out


def content_hash(view: dict[str, Any]) -> str:
    encoded = json.dumps(view, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


@endpoint("GET", check_dc=False)
async def agent_services(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    who = await caller(req)
    services = {
        sid: agent_service_view(svc.row, agent.datacenter)
        for sid, svc in sorted(agent.local.services.items())
        if can(who, "service", "read", svc.row["Service"])
    }
    headers = filtered_header(req, who, len(services) != len(agent.local.services))
    return respond(req, _filtered(req, services, "agent_service"), headers=headers)


@endpoint("GET", check_dc=False)
async def agent_service(req: web.Request) -> web.StreamResponse:
    """One service, hash-blocking: ?hash=<ContentHash>&wait=<d> waits for a change."""
    agent = agent_of(req)
    sid = req.match_info.get("id", "")
    if not sid:
        raise bad_request("Missing service ID")
    want_hash = req.query.get("hash", "")
    wait = parse_wait(req.query["wait"]) if req.query.get("wait") else DEFAULT_HASH_WAIT
    who = await caller(req)
    if sid in agent.local.services:
        require(who, "service", "read", agent.local.services[sid].row["Service"])
    deadline = time.monotonic() + min(wait, MAX_HASH_WAIT)
    while True:
        svc = agent.local.services.get(sid)
        if svc is None:
            raise HTTPError(404, f"unknown service ID: {sid}")
        view = agent_service_view(svc.row, agent.datacenter)
        digest = content_hash(view)
        remaining = deadline - time.monotonic()
        if not want_hash or digest != want_hash or remaining <= 0:
            break
        await agent.local.wait_change(remaining)
    view["ContentHash"] = digest
    return respond(req, view, headers={"X-Consul-ContentHash": digest})


def _replace_existing(req: web.Request) -> bool:
    if "replace-existing-checks" not in req.query:
        return False
    return req.query.get("replace-existing-checks", "") in ("", "true")


@endpoint("PUT", check_dc=False)
async def agent_service_register(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    body = await _json_body(req)
    token = request_token(req)
    who = await caller(req)
    for name in _service_write_names(body):
        require(who, "service", "write", name)
    try:
        await agent.register_service(
            body, replace_existing_checks=_replace_existing(req), token=token
        )
    except DefinitionError as exc:
        raise _definition_error(exc) from exc
    return empty_ok()


def _field(doc: Any, name: str) -> Any:
    """A body field the way Consul decodes it: exact, snake_case or any case."""
    if not isinstance(doc, dict):
        return None
    if name in doc:
        return doc[name]
    snake = "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
    for key, value in doc.items():
        if isinstance(key, str) and key.lower() in (name.lower(), snake):
            return value
    return None


def _service_write_names(body: dict[str, Any]) -> list[str]:
    """Services a registration writes: the service, a proxy's destination, the sidecar."""
    name = _field(body, "Name")
    name = name if isinstance(name, str) else ""
    names = [name]
    proxy = _field(body, "Proxy")
    destination = _field(proxy, "DestinationServiceName")
    if isinstance(destination, str) and destination:
        names.append(destination)
    sidecar = _field(_field(body, "Connect"), "SidecarService")
    if isinstance(sidecar, dict):
        own = _field(sidecar, "Name")
        names.append(own if isinstance(own, str) and own else f"{name}-sidecar-proxy")
    # A registration without a name is refused by validation (400) before any permission.
    return [n for n in dict.fromkeys(names) if n]


def _unknown_service(sid: str) -> HTTPError:
    return HTTPError(
        404,
        f'Unknown service ID "{sid}". Ensure that the service ID is passed, not the service name.',
    )


@endpoint("PUT", check_dc=False)
async def agent_service_deregister(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    sid = req.match_info.get("id", "")
    if not sid:
        raise bad_request("Missing service ID")
    who = await caller(req)
    if sid not in agent.local.services:
        raise _unknown_service(sid)
    require(who, "service", "write", agent.local.services[sid].row["Service"])
    await agent.deregister_service(sid)
    return empty_ok()


def _enable(req: web.Request) -> bool:
    if "enable" not in req.query:
        raise bad_request("Missing value for enable")
    raw = req.query.get("enable", "")
    value = parse_bool(raw)
    if value is None:
        raise bad_request(f'Invalid value for enable: "{raw}"')
    return value


@endpoint("PUT", check_dc=False)
async def agent_service_maintenance(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    sid = req.match_info.get("id", "")
    if not sid:
        raise bad_request("Missing service ID")
    enable = _enable(req)
    if sid not in agent.local.services:
        raise _unknown_service(sid)
    await authorize(req, "service", "write", agent.local.services[sid].row["Service"])
    await agent.service_maintenance(sid, enable, req.query.get("reason", ""))
    return empty_ok()


@endpoint("PUT", check_dc=False)
async def agent_maintenance(req: web.Request) -> web.StreamResponse:
    enable = _enable(req)
    await authorize(req, "node", "write", agent_of(req).node_name)
    await agent_of(req).node_maintenance(enable, req.query.get("reason", ""))
    return empty_ok()


# ------------------------------------------------------------------ checks
@endpoint("GET", check_dc=False)
async def agent_checks(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    who = await caller(req)
    checks = {
        cid: dict(
            check.row,
            ServiceTags=list(check.row.get("ServiceTags") or []),
            CreateIndex=0,
            ModifyIndex=0,
        )
        for cid, check in sorted(agent.local.checks.items())
        if _may_see_check(who, check.row)
    }
    headers = filtered_header(req, who, len(checks) != len(agent.local.checks))
    return respond(req, _filtered(req, checks, "health_check"), headers=headers)


def _may_see_check(who: Any, row: dict[str, Any]) -> bool:
    if row.get("ServiceName"):
        return can(who, "service", "read", row["ServiceName"])
    return can(who, "node", "read", row.get("Node", ""))


def _require_check_write(who: Any, agent: Any, service_id: str, service_name: str) -> None:
    """A service's check needs service:write on it; a node check node:write on this node."""
    if service_id and not service_name and service_id in agent.local.services:
        service_name = agent.local.services[service_id].row["Service"]
    if service_id:
        require(who, "service", "write", service_name or service_id)
    else:
        require(who, "node", "write", agent.node_name)


@endpoint("PUT", check_dc=False)
async def agent_check_register(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    body = await _json_body(req)
    token = request_token(req)
    sid = _field(body, "ServiceID")
    _require_check_write(await caller(req), agent, sid if isinstance(sid, str) else "", "")
    try:
        await agent.register_check(body, token=token)
    except DefinitionError as exc:
        raise _definition_error(exc) from exc
    return empty_ok()


def _unknown_check(cid: str) -> HTTPError:
    return HTTPError(
        404,
        f'Unknown check ID "{cid}". Ensure that the check ID is passed, not the check name.',
    )


def _check_id(req: web.Request) -> str:
    cid = req.match_info.get("id", "")
    if not cid:
        raise bad_request("Missing check ID")
    return cid


@endpoint("PUT", check_dc=False)
async def agent_check_deregister(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    cid = _check_id(req)
    who = await caller(req)
    if cid not in agent.local.checks:
        raise _unknown_check(cid)
    row = agent.local.checks[cid].row
    _require_check_write(who, agent, row.get("ServiceID", ""), row.get("ServiceName", ""))
    await agent.deregister_check(cid)
    return empty_ok()


async def _ttl(req: web.Request, status: str, output: str) -> web.StreamResponse:
    agent = agent_of(req)
    cid = _check_id(req)
    who = await caller(req)
    if cid not in agent.local.checks:
        raise _unknown_check(cid)
    row = agent.local.checks[cid].row
    _require_check_write(who, agent, row.get("ServiceID", ""), row.get("ServiceName", ""))
    try:
        await agent.update_ttl(cid, status, output)
    except DefinitionError as exc:
        raise _definition_error(exc) from exc
    return empty_ok()


@endpoint("PUT", check_dc=False)
async def agent_check_pass(req: web.Request) -> web.StreamResponse:
    return await _ttl(req, "passing", req.query.get("note", ""))


@endpoint("PUT", check_dc=False)
async def agent_check_warn(req: web.Request) -> web.StreamResponse:
    return await _ttl(req, "warning", req.query.get("note", ""))


@endpoint("PUT", check_dc=False)
async def agent_check_fail(req: web.Request) -> web.StreamResponse:
    return await _ttl(req, "critical", req.query.get("note", ""))


UPDATE_BODY = Struct("checkUpdate", {"Status": "string", "Output": "string"})


@endpoint("PUT", check_dc=False)
async def agent_check_update(req: web.Request) -> web.StreamResponse:
    doc = await _json_body(req)
    try:
        body = decode_struct(doc, UPDATE_BODY)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    status = body.get("Status", "")
    if status not in ("passing", "warning", "critical"):
        raise bad_request(f"Invalid check status: '{status}'")
    return await _ttl(req, status, body.get("Output", ""))


# ------------------------------------------------------------ local health
_STATUS_CODES = {"passing": 200, "warning": 429, "critical": 503, "maintenance": 503}


def _wants_text(req: web.Request) -> bool:
    return req.query.get("format") == "text" or req.headers.get("Accept", "").startswith(
        "text/plain"
    )


def _health_of(agent: Any, sid: str) -> dict[str, Any]:
    svc = agent.local.services[sid]
    checks = [
        check.row
        for check in agent.local.checks.values()
        if check.row.get("ServiceID") in ("", sid)
    ]
    return {
        "AggregatedStatus": aggregated_status(checks),
        "Service": agent_service_view(svc.row, agent.datacenter),
        "Checks": [_health_check_view(c) for c in checks],
    }


def _health_check_view(row: dict[str, Any]) -> dict[str, Any]:
    """Checks here are serialised with the Go client's struct: zero-valued extras included."""
    return {
        "Node": row["Node"],
        "CheckID": row["CheckID"],
        "Name": row["Name"],
        "Status": row["Status"],
        "Notes": row.get("Notes", ""),
        "Output": row.get("Output", ""),
        "ServiceID": row.get("ServiceID", ""),
        "ServiceName": row.get("ServiceName", ""),
        "ServiceTags": list(row.get("ServiceTags") or []),
        "Type": "",
        "Namespace": "",
        "ExposedPort": 0,
        "Definition": {
            "Interval": "0s",
            "Timeout": "0s",
            "DeregisterCriticalServiceAfter": "0s",
            "HTTP": "",
            "Header": None,
            "Method": "",
            "Body": "",
            "TLSServerName": "",
            "TLSSkipVerify": False,
            "TCP": "",
            "TCPUseTLS": False,
            "UDP": "",
            "GRPC": "",
            "OSService": "",
            "GRPCUseTLS": False,
        },
        "CreateIndex": 0,
        "ModifyIndex": 0,
    }


@endpoint("GET", check_dc=False)
async def agent_health_by_id(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    sid = req.match_info.get("id", "")
    if not sid:
        raise bad_request("Missing serviceID")
    if sid not in agent.local.services:
        text = f"ServiceId {sid} not found"
        if _wants_text(req):
            return text_error(404, text)
        return respond(
            req,
            {"AggregatedStatus": "critical", "Service": None, "Checks": None},
            status=404,
            headers={"X-Consul-Reason": text},
        )
    await authorize(req, "service", "read", agent.local.services[sid].row["Service"])
    health = _health_of(agent, sid)
    status = health["AggregatedStatus"]
    code = _STATUS_CODES.get(status, 503)
    if _wants_text(req):
        return web.Response(status=code, text=status, headers={"X-Consul-Reason": status})
    return respond(req, health, status=code, headers={"X-Consul-Reason": status})


@endpoint("GET", check_dc=False)
async def agent_health_by_name(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    name = req.match_info.get("name", "")
    if not name:
        raise bad_request("Missing service Name")
    await authorize(req, "service", "read", name)
    ids = sorted(sid for sid, s in agent.local.services.items() if s.row["Service"] == name)
    if not ids:
        text = f"ServiceName {name} Not Found"
        if _wants_text(req):
            return text_error(404, text)
        return respond(req, [], status=404, headers={"X-Consul-Reason": text})
    results = [_health_of(agent, sid) for sid in ids]
    worst = max(results, key=lambda r: _STATUS_CODES.get(r["AggregatedStatus"], 503))
    status = worst["AggregatedStatus"]
    code = _STATUS_CODES.get(status, 503)
    if _wants_text(req):
        return web.Response(status=code, text=status, headers={"X-Consul-Reason": status})
    return respond(req, results, status=code, headers={"X-Consul-Reason": status})


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/agent/self", agent_self),
        web.route("*", "/v1/agent/members", agent_members),
        web.route("*", "/v1/agent/version", agent_version),
        web.route("*", "/v1/agent/reload", agent_reload),
        web.route("*", "/v1/agent/services", agent_services),
        web.route("*", "/v1/agent/service/register", agent_service_register),
        web.route("*", "/v1/agent/service/deregister/{id:.*}", agent_service_deregister),
        web.route("*", "/v1/agent/service/maintenance/{id:.*}", agent_service_maintenance),
        web.route("*", "/v1/agent/service/{id:.*}", agent_service),
        web.route("*", "/v1/agent/maintenance", agent_maintenance),
        web.route("*", "/v1/agent/checks", agent_checks),
        web.route("*", "/v1/agent/check/register", agent_check_register),
        web.route("*", "/v1/agent/check/deregister/{id:.*}", agent_check_deregister),
        web.route("*", "/v1/agent/check/pass/{id:.*}", agent_check_pass),
        web.route("*", "/v1/agent/check/warn/{id:.*}", agent_check_warn),
        web.route("*", "/v1/agent/check/fail/{id:.*}", agent_check_fail),
        web.route("*", "/v1/agent/check/update/{id:.*}", agent_check_update),
        web.route("*", "/v1/agent/health/service/id/{id:.*}", agent_health_by_id),
        web.route("*", "/v1/agent/health/service/name/{name:.*}", agent_health_by_name),
    ]
