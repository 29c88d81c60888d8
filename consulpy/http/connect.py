"""/v1/connect/* and /v1/agent/connect/*: the CA, leaf certificates, intentions, authorize."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from consulpy.http.agent_acl import authorize
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    endpoint,
    meta_headers,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.connect_ca import CAConfigurationSet
from consulpy.server.endpoints.intention import IntentionApply
from consulpy.server.query import QueryOptions
from consulpy.util.decode import DecodeError, Struct, decode_struct, parse_json

MAX_BODY = 1 << 20
CA_INIT_WAIT = 5.0  # seconds a CA configuration read waits for a new leader's CA
CAS_RETRIES = 5


async def _body(req: web.Request) -> dict[str, Any]:
    raw = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
    if not raw.strip():
        return {}
    try:
        doc = parse_json(raw)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    if not isinstance(doc, dict):
        raise bad_request("Request decode failed: expected a JSON object")
    return doc


def _default_allow(req: web.Request) -> bool:
    return agent_of(req).config.acl.intention_default_allow


# --------------------------------------------------------------------- CA
@endpoint("GET")
async def ca_roots(req: web.Request) -> web.StreamResponse:
    meta, roots = await agent_of(req).delegate.read(
        "ConnectCA.Roots", {}, query_options(req), token=request_token(req)
    )
    if req.query.get("pem", "").lower() in ("true", "1"):
        pems = []
        for root in roots["Roots"]:
            pems.append(root["RootCert"])
            pems.extend(root.get("IntermediateCerts") or [])
        return web.Response(
            text="".join(pems),
            content_type="application/pem-certificate-chain",
            headers=meta_headers(meta),
        )
    return respond(req, roots, meta=meta)


CA_CONFIG_BODY = Struct(
    "CAConfiguration",
    {
        "Provider": "string",
        "Config": "any",
        "ForceWithoutCrossSigning": "bool",
        "State": "any",
        "ClusterID": "string",
        "CreateIndex": "any",
        "ModifyIndex": "any",
    },
)


@endpoint("GET", "PUT")
async def ca_configuration(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if req.method == "GET":
        opts = query_options(req)
        meta, config = await agent.delegate.read(
            "ConnectCA.Config", {}, opts, token=request_token(req)
        )
        if config is None:
            # A new leader creates the CA just after its election: a request in that window
            # waits for it (a blocking read on the config's index, CA_INIT_WAIT at most).
            opts.index, opts.wait = max(meta.index, 1), CA_INIT_WAIT
            meta, config = await agent.delegate.read(
                "ConnectCA.Config", {}, opts, token=request_token(req)
            )
        if config is None:
            raise HTTPError(500, "Connect CA not initialized yet")
        return respond(req, config, meta=meta)
    try:
        body = decode_struct(await _body(req), CA_CONFIG_BODY)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    if not isinstance(body.get("Config") or {}, dict):
        raise bad_request("Request decode failed: Config must be an object")
    payload = CAConfigurationSet(
        provider=body.get("Provider") or "",
        config=body.get("Config") or {},
        force_without_cross_signing=bool(body.get("ForceWithoutCrossSigning")),
    )
    await agent.delegate.apply("ConnectCA.ConfigurationSet", payload, request_token(req))
    return respond(req, None)


@endpoint("GET")
async def agent_leaf(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    service = req.match_info.get("service", "")
    if not service:
        raise bad_request("Missing service name")
    who = await authorize(req, "service", "write", service)
    acl = agent.acl
    token = acl.effective(request_token(req)) if acl is not None and who is not None else None
    opts = query_options(req)
    wait = opts.blocking_timeout(0.0, agent.query_times) if opts.index else 0.0
    from consulpy.agent.leafcert import public_view

    cert = await agent.leaf_certs.get(service, min_index=opts.index, wait=wait, token=token)
    headers = {"X-Consul-Index": str(cert["ModifyIndex"]), "X-Cache": "HIT"}
    return respond(req, public_view(cert), headers=headers)


AUTHORIZE_BODY = Struct(
    "ConnectAuthorizeRequest",
    {
        "Target": "string",
        "ClientCertURI": "string",
        "ClientCertSerial": "string",
        "Namespace": "string",
        "Partition": "string",
    },
)


@endpoint("POST")
async def agent_authorize(req: web.Request) -> web.StreamResponse:
    from consulpy.connect import spiffe

    try:
        body = decode_struct(await _body(req), AUTHORIZE_BODY)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    target = body.get("Target") or ""
    if not target:
        raise bad_request("Target service must be specified")
    await authorize(req, "service", "write", target)
    try:
        identity = spiffe.parse(body.get("ClientCertURI") or "")
    except spiffe.SpiffeError as exc:
        raise bad_request("ClientCertURI not a valid Connect identifier") from exc
    if not isinstance(identity, spiffe.ServiceID):
        raise bad_request("ClientCertURI not a valid Service identifier")
    _, roots = await agent_of(req).delegate.read(
        "ConnectCA.Roots", {}, QueryOptions(), token=request_token(req)
    )
    trust_domain = (roots or {}).get("TrustDomain", "")
    if trust_domain and identity.host.lower() != trust_domain.lower():
        return respond(
            req,
            {
                "Authorized": False,
                "Reason": f"Identity from an external trust domain: {identity.host}",
            },
        )
    _, decision = await agent_of(req).delegate.read(
        "Intention.Decide",
        {"source": identity.service, "destination": target, "default_allow": _default_allow(req)},
        QueryOptions(),
        token=request_token(req),
    )
    return respond(req, {"Authorized": decision["Allowed"], "Reason": decision["Reason"]})


# --------------------------------------------------------------- intentions
def _targets(req: web.Request) -> tuple[str, str]:
    source = req.query.get("source", "")
    destination = req.query.get("destination", "")
    if not source:
        raise bad_request("required query parameter 'source' not set")
    if not destination:
        raise bad_request("required query parameter 'destination' not set")
    return source, destination


async def _update_entry(
    req: web.Request, destination_name: str, change: Any, *, legacy: bool = False
) -> None:
    """Read-modify-write the destination's service-intentions entry with CAS, retrying when
    another writer got there first. `legacy`: the change comes from the legacy ID-based API
    (Intention.Apply validates it with that API's rules)."""
    from consulpy.connect import intentions as ix

    delegate = agent_of(req).delegate
    for _ in range(CAS_RETRIES):
        _, entry = await delegate.read(
            "ConfigEntry.Get",
            {"kind": "service-intentions", "name": destination_name, "primary": True},
            QueryOptions(),
            token=request_token(req),
        )
        try:
            new_entry = change(entry)
        except ix.IntentionError as exc:
            raise bad_request(str(exc)) from exc
        cas = entry["ModifyIndex"] if entry is not None else 0
        if new_entry is None and entry is None:
            return
        payload = IntentionApply(destination_name, new_entry, cas, legacy=legacy)
        if await delegate.apply("Intention.Apply", payload, request_token(req)):
            return
    raise HTTPError(500, "intention changed concurrently too many times; try again")


@endpoint("GET", "PUT", "DELETE")
async def intentions_exact(req: web.Request) -> web.StreamResponse:
    from consulpy.connect import intentions as ix

    source, destination = _targets(req)
    try:
        _, dst_name = ix.parse_target(destination)
        ix.parse_target(source)
    except ix.IntentionError as exc:
        raise bad_request(str(exc)) from exc
    delegate = agent_of(req).delegate
    if req.method == "GET":
        meta, intention = await delegate.read(
            "Intention.Exact",
            {"source": source, "destination": destination},
            query_options(req),
            token=request_token(req),
        )
        if intention is None:
            raise HTTPError(404, "Intention not found")
        return respond(req, intention, meta=meta)
    if req.method == "PUT":
        body = await _body(req)
        await _update_entry(
            req, dst_name, lambda entry: ix.upsert_exact(entry, source, destination, body)
        )
        return respond(req, True)
    await _update_entry(
        req, dst_name, lambda entry: ix.delete_exact(entry, source) if entry is not None else None
    )
    return respond(req, True)


@endpoint("GET", "POST")
async def intentions_list(req: web.Request) -> web.StreamResponse:
    from consulpy.connect import intentions as ix

    delegate = agent_of(req).delegate
    if req.method == "GET":
        opts = query_options(req)
        meta, items = await delegate.read(
            "Intention.List", {"filter": opts.filter}, opts, token=request_token(req)
        )
        return respond(req, items, meta=meta)
    body = await _body(req)
    new_id = str(uuid.uuid4())
    now = _now_rfc3339()
    destination = body.get("DestinationName") or body.get("destinationname") or ""
    if not destination:
        raise bad_request("Invalid intention: DestinationName is required")

    def create(entry: dict[str, Any] | None) -> dict[str, Any]:
        return ix.create_legacy({destination: entry} if entry else {}, body, new_id=new_id, now=now)

    await _update_entry(req, destination, create, legacy=True)
    return respond(req, {"ID": new_id})


@endpoint("GET", "PUT", "DELETE")
async def intention_by_id(req: web.Request) -> web.StreamResponse:
    from consulpy.connect import intentions as ix

    delegate = agent_of(req).delegate
    intention_id = req.match_info["id"]
    meta, current = await delegate.read(
        "Intention.Get",
        {"id": intention_id},
        query_options(req) if req.method == "GET" else QueryOptions(),
        token=request_token(req),
    )
    if current is None:
        raise HTTPError(404, "Intention not found")
    if req.method == "GET":
        return respond(req, current, meta=meta)
    destination = current["DestinationName"]
    now = _now_rfc3339()
    body = await _body(req) if req.method == "PUT" else {}

    def change(entry: dict[str, Any] | None) -> dict[str, Any] | None:
        entries = [entry] if entry is not None else []
        if req.method == "PUT":
            return ix.update_legacy(entries, intention_id, body, now=now)
        return ix.delete_legacy(entries, intention_id)[1]

    await _update_entry(req, destination, change, legacy=True)
    return respond(req, None if req.method == "PUT" else True)


@endpoint("GET")
async def intentions_match(req: web.Request) -> web.StreamResponse:
    by = req.query.get("by", "")
    if by not in ("source", "destination"):
        raise bad_request("required query parameter 'by' must be 'source' or 'destination'")
    names = req.query.getall("name", [])
    if not names:
        raise bad_request("required query parameter 'name' not set")
    meta, result = await agent_of(req).delegate.read(
        "Intention.Match", {"by": by, "names": names}, query_options(req), token=request_token(req)
    )
    return respond(req, result, meta=meta)


@endpoint("GET")
async def intentions_check(req: web.Request) -> web.StreamResponse:
    source, destination = _targets(req)
    meta, decision = await agent_of(req).delegate.read(
        "Intention.Decide",
        {"source": source, "destination": destination, "default_allow": _default_allow(req)},
        query_options(req),
        token=request_token(req),
    )
    return respond(req, {"Allowed": decision["Allowed"]}, meta=meta)


def _now_rfc3339() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/connect/ca/roots", ca_roots),
        web.route("*", "/v1/agent/connect/ca/roots", ca_roots),
        web.route("*", "/v1/connect/ca/configuration", ca_configuration),
        web.route("*", "/v1/agent/connect/ca/leaf/{service:.*}", agent_leaf),
        web.route("*", "/v1/agent/connect/authorize", agent_authorize),
        web.route("*", "/v1/connect/intentions/exact", intentions_exact),
        web.route("*", "/v1/connect/intentions/match", intentions_match),
        web.route("*", "/v1/connect/intentions/check", intentions_check),
        web.route("*", "/v1/connect/intentions", intentions_list),
        web.route("*", "/v1/connect/intentions/{id}", intention_by_id),
    ]
