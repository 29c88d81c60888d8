"""/v1/acl/*: bootstrap, tokens, policies, roles, auth methods, binding rules, login, logout;
and /v1/agent/token/<kind> (the agent's own tokens).

The handlers decode the body, call the ACL server endpoints (consulpy/server/endpoints/acl.py,
which validate with Consul's texts) and render Consul's status codes: Consul's HTTP layer
recognises "ACL support disabled" (401), "Permission denied" and "ACL not found" (403) by their
text, and so does this module.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from consulpy.agent.agent import Agent
from consulpy.http.agent_acl import authorize
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    endpoint,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.server.endpoints.acl import (
    ACLBootstrap,
    ByID,
    Login,
    Logout,
    RowSet,
    TokenClone,
    TokenSet,
)
from consulpy.server.endpoints.request import Empty
from consulpy.server.errors import CommandError, RequestError
from consulpy.util.decode import DecodeError, parse_json

DISABLED = "ACL support disabled"
BODY_LIMIT = 1 << 20
AGENT_TOKEN_KINDS = (
    "default",
    "agent",
    "agent_recovery",
    "replication",
    "config_file_service_registration",
    "dns",
)
# Consul's pre-1.11 names for the same kinds.
AGENT_TOKEN_ALIASES = {
    "acl_token": "default",
    "acl_agent_token": "agent",
    "agent_master": "agent_recovery",
    "acl_agent_master_token": "agent_recovery",
    "acl_replication_token": "replication",
}
PERSIST_FILE = "acl-tokens.json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def acl_endpoint(*methods: str) -> Callable[[Handler], Handler]:
    """Consul's method/tenancy/dc checks, then 401 when ACLs are off and Consul's status for
    ACL errors the servers return."""

    def wrap(fn: Handler) -> Handler:
        async def handler(req: web.Request) -> web.StreamResponse:
            if not agent_of(req).config.acl.enabled:
                raise HTTPError(401, DISABLED)
            try:
                return await fn(req)
            except RequestError:
                raise
            except CommandError as exc:
                raise _status(str(exc)) from exc

        handler.__name__ = fn.__name__
        return endpoint(*methods)(handler)

    return wrap


def _status(text: str) -> HTTPError:
    if DISABLED in text:
        return HTTPError(401, text)
    if "Permission denied" in text or (text.endswith("ACL not found") and ":" not in text):
        return HTTPError(403, text)
    if text.startswith("Cannot find") and text.endswith("ACL not found"):
        return HTTPError(404, text)
    return HTTPError(500, text)


# Consul decodes bodies with Go's case-insensitive field matching (py-consul sends "name",
# "rules"); keys are mapped onto these names, except inside Config and Meta (free-form maps).
_FIELDS = {
    name.lower(): name
    for name in [
        "AccessorID",
        "SecretID",
        "Description",
        "Policies",
        "Roles",
        "ServiceIdentities",
        "NodeIdentities",
        "ServiceName",
        "Datacenters",
        "NodeName",
        "Datacenter",
        "Local",
        "AuthMethod",
        "ExpirationTime",
        "ExpirationTTL",
        "ID",
        "Name",
        "Rules",
        "Type",
        "DisplayName",
        "MaxTokenTTL",
        "TokenLocality",
        "Config",
        "Selector",
        "BindType",
        "BindName",
        "BootstrapSecret",
        "BearerToken",
        "Meta",
        "Token",
        "TemplatedPolicies",
        "Hash",
        "CreateIndex",
        "ModifyIndex",
        "CreateTime",
        "Legacy",
    ]
}
_OPAQUE = ("Config", "Meta")


def _canonical(value: Any) -> Any:
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _FIELDS.get(str(key).lower(), key)
        out[name] = item if name in _OPAQUE else _canonical(item)
    return out


async def _body(req: web.Request, what: str, *, optional: bool = False) -> dict[str, Any]:
    raw = await read_body(req, BODY_LIMIT, lambda n: f"Request body too large ({n} bytes)")
    if not raw.strip():
        if optional:
            return {}
        raise HTTPError(400, f"{what} decoding failed: unexpected EOF")
    try:
        doc = parse_json(raw)
    except DecodeError as exc:
        raise HTTPError(400, f"{what} decoding failed: {exc}") from exc
    if not isinstance(doc, dict):
        raise HTTPError(400, f"{what} decoding failed: expected a JSON object")
    doc = _canonical(doc)
    if doc.get("TemplatedPolicies"):
        raise HTTPError(400, "Templated policies are not supported by consulpy")
    return doc


async def _apply(req: web.Request, name: str, payload: Any) -> Any:
    return await agent_of(req).delegate.apply(name, payload, request_token(req))


async def _read(
    req: web.Request, name: str, args: dict[str, Any], missing: str = ""
) -> web.StreamResponse:
    opts = query_options(req)
    if opts.filter:
        args["filter"] = opts.filter
    meta, result = await agent_of(req).delegate.read(name, args, opts, token=request_token(req))
    if result is None:
        raise HTTPError(404, f"{missing}: ACL not found" if missing else "ACL not found")
    return respond(req, result, meta=meta)


# ---------------------------------------------------------------- replication
@endpoint("GET")
async def replication(req: web.Request) -> web.StreamResponse:
    """The ACL replication status of the datacenter's leader (`Enabled: false` in the
    primary and where ACLs are off, as in Consul)."""
    status = await _apply(req, "ACL.ReplicationStatus", Empty())
    return respond(req, status)


# ------------------------------------------------------------------ bootstrap
@acl_endpoint("PUT")
async def bootstrap(req: web.Request) -> web.StreamResponse:
    body = await _body(req, "Bootstrap", optional=True)
    secret = body.get("BootstrapSecret") or ""
    if not isinstance(secret, str):
        raise HTTPError(400, "Bootstrap decoding failed: BootstrapSecret must be a string")
    token = await _apply(req, "ACL.BootstrapTokens", ACLBootstrap(secret=secret))
    return respond(req, dict(token, ID=token["SecretID"]))


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _require_uuid(value: str, what: str) -> None:
    """IDs are UUIDs: a malformed one is bad input (Consul fails its UUID index lookup)."""
    if not _UUID.match(value):
        raise HTTPError(400, f"{what} is not a valid UUID: {value!r}")


# --------------------------------------------------------------------- tokens
@acl_endpoint("PUT")
async def token_create(req: web.Request) -> web.StreamResponse:
    body = await _body(req, "Token")
    return respond(req, await _apply(req, "ACL.TokenSet", TokenSet(token=body, create=True)))


@acl_endpoint("GET", "PUT", "DELETE")
async def token_item(req: web.Request) -> web.StreamResponse:
    accessor = req.match_info["id"]
    if req.method == "GET":
        if accessor == "self":
            return await token_self(req)
        _require_uuid(accessor, "AccessorID")
        opts = query_options(req)
        meta, result = await agent_of(req).delegate.read(
            "ACL.TokenRead", {"accessor": accessor}, opts, token=request_token(req)
        )
        if result is None:
            # Consul's server answers a missing accessor with its not-found error, which the
            # HTTP layer turns into 403 (py-consul's suite relies on a read of a deleted
            # token raising).
            raise HTTPError(403, "ACL not found")
        return respond(req, result, meta=meta)
    if req.method == "DELETE":
        return respond(req, await _apply(req, "ACL.TokenDelete", ByID(id=accessor)))
    body = await _body(req, "Token")
    if body.get("AccessorID") and body["AccessorID"] != accessor:
        raise HTTPError(400, "Token Accessor ID in URL and payload do not match")
    body["AccessorID"] = accessor
    return respond(req, await _apply(req, "ACL.TokenSet", TokenSet(token=body, create=False)))


async def token_self(req: web.Request) -> web.StreamResponse:
    secret = request_token(req) or agent_of(req).config.acl.tokens.get("default", "") or "anonymous"
    opts = query_options(req)
    meta, result = await agent_of(req).delegate.read(
        "ACL.TokenRead", {"secret": secret}, opts, token=secret
    )
    if result is None:
        raise HTTPError(403, "ACL not found")
    return respond(req, result, meta=meta)


@acl_endpoint("PUT")
async def token_clone(req: web.Request) -> web.StreamResponse:
    body = await _body(req, "Token", optional=True)
    description = body.get("Description") or ""
    payload = TokenClone(accessor=req.match_info["id"], description=str(description))
    return respond(req, await _apply(req, "ACL.TokenClone", payload))


@acl_endpoint("GET")
async def token_list(req: web.Request) -> web.StreamResponse:
    args = {
        k: req.query[k] for k in ("policy", "role", "authmethod", "servicename") if k in req.query
    }
    return await _read(req, "ACL.TokenList", args)


# ------------------------------------------------------------ policies, roles
def _row_routes(
    kind: str, label: str, set_name: str, delete_name: str, read_name: str
) -> tuple[Handler, Handler, Handler]:
    @acl_endpoint("PUT")
    async def create(req: web.Request) -> web.StreamResponse:
        body = await _body(req, label)
        return respond(req, await _apply(req, set_name, RowSet(row=body, create=True)))

    @acl_endpoint("GET", "PUT", "DELETE")
    async def item(req: web.Request) -> web.StreamResponse:
        key = req.match_info["id"]
        if req.method == "GET":
            arg = "name" if kind == "auth method" else "id"
            if arg == "id":
                _require_uuid(key, f"{label} ID")
            return await _read(req, read_name, {arg: key}, f"Requested {kind} does not exist")
        if req.method == "DELETE":
            return respond(req, await _apply(req, delete_name, ByID(id=key)))
        body = await _body(req, label)
        field = "Name" if kind == "auth method" else "ID"
        if body.get(field) and body[field] != key:
            raise HTTPError(400, f"{label} {field} in URL and payload do not match")
        body[field] = key
        return respond(req, await _apply(req, set_name, RowSet(row=body, create=False)))

    @acl_endpoint("GET")
    async def by_name(req: web.Request) -> web.StreamResponse:
        return await _read(
            req, read_name, {"name": req.match_info["name"]}, f"Requested {kind} does not exist"
        )

    return create, item, by_name


policy_create, policy_item, policy_by_name = _row_routes(
    "policy", "Policy", "ACL.PolicySet", "ACL.PolicyDelete", "ACL.PolicyRead"
)
role_create, role_item, role_by_name = _row_routes(
    "role", "Role", "ACL.RoleSet", "ACL.RoleDelete", "ACL.RoleRead"
)
method_create, method_item, _ = _row_routes(
    "auth method", "AuthMethod", "ACL.AuthMethodSet", "ACL.AuthMethodDelete", "ACL.AuthMethodRead"
)
rule_create, rule_item, _ = _row_routes(
    "binding rule",
    "BindingRule",
    "ACL.BindingRuleSet",
    "ACL.BindingRuleDelete",
    "ACL.BindingRuleRead",
)


def _lister(name: str, params: tuple[str, ...]) -> Handler:
    @acl_endpoint("GET")
    async def lister(req: web.Request) -> web.StreamResponse:
        return await _read(req, name, {k: req.query[k] for k in params if k in req.query})

    return lister


policy_list = _lister("ACL.PolicyList", ())
role_list = _lister("ACL.RoleList", ("policy",))
method_list = _lister("ACL.AuthMethodList", ())
rule_list = _lister("ACL.BindingRuleList", ("authmethod",))


# -------------------------------------------------------------- login/logout
@acl_endpoint("POST")
async def login(req: web.Request) -> web.StreamResponse:
    body = await _body(req, "Login")
    method, bearer = body.get("AuthMethod") or "", body.get("BearerToken") or ""
    if not isinstance(method, str) or not method:
        raise HTTPError(400, "Missing auth method name")
    if not isinstance(bearer, str) or not bearer:
        raise HTTPError(400, "Missing bearer token")
    meta = body.get("Meta") or {}
    if not isinstance(meta, dict):
        raise HTTPError(400, "Login decoding failed: Meta must be an object")
    payload = Login(method=method, bearer_token=bearer, meta=meta)
    return respond(req, await _apply(req, "ACL.Login", payload))


@acl_endpoint("POST")
async def logout(req: web.Request) -> web.StreamResponse:
    await _apply(req, "ACL.Logout", Logout())
    return respond(req, True)


# --------------------------------------------------------------- agent tokens
@endpoint("PUT")
async def agent_token(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    if not agent.config.acl.enabled:
        raise HTTPError(401, DISABLED)
    await authorize(req, "acl", "write")
    kind = req.match_info["name"]
    kind = AGENT_TOKEN_ALIASES.get(kind, kind)
    if kind not in AGENT_TOKEN_KINDS:
        raise HTTPError(404, f"Token {req.match_info['name']!r} is unknown")
    body = await _body(req, "Token")
    value = body.get("Token", "")
    if not isinstance(value, str):
        raise HTTPError(400, "Token decoding failed: Token must be a string")
    agent.config.acl.tokens[kind] = value
    if kind in ("agent", "default"):
        # The agent's own calls (anti-entropy, leaf certs, proxy config) use it from now on.
        agent.delegate.agent_token = agent.agent_token()
    if agent.config.acl.enable_token_persistence:
        _persist(agent, kind, value)
    return web.Response(status=200)


def _persist(agent: Agent, kind: str, value: str) -> None:
    data_dir = agent.config.data_dir
    if not data_dir:
        return
    path = os.path.join(data_dir, PERSIST_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        doc = {}
    doc[kind] = value
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_persisted_tokens(agent: Agent) -> None:
    """Tokens set through the API win over the configuration files, as in Consul."""
    acl = agent.config.acl
    if not acl.enable_token_persistence or not agent.config.data_dir:
        return
    try:
        with open(os.path.join(agent.config.data_dir, PERSIST_FILE), encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return
    for kind, value in doc.items() if isinstance(doc, dict) else ():
        if kind in AGENT_TOKEN_KINDS and isinstance(value, str):
            acl.tokens[kind] = value


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/acl/bootstrap", bootstrap),
        web.route("*", "/v1/acl/replication", replication),
        web.route("*", "/v1/acl/token", token_create),
        web.route("*", "/v1/acl/tokens", token_list),
        web.route("*", "/v1/acl/token/{id}/clone", token_clone),
        web.route("*", "/v1/acl/token/{id}", token_item),
        web.route("*", "/v1/acl/policy", policy_create),
        web.route("*", "/v1/acl/policies", policy_list),
        web.route("*", "/v1/acl/policy/name/{name}", policy_by_name),
        web.route("*", "/v1/acl/policy/{id}", policy_item),
        web.route("*", "/v1/acl/role", role_create),
        web.route("*", "/v1/acl/roles", role_list),
        web.route("*", "/v1/acl/role/name/{name}", role_by_name),
        web.route("*", "/v1/acl/role/{id}", role_item),
        web.route("*", "/v1/acl/auth-method", method_create),
        web.route("*", "/v1/acl/auth-methods", method_list),
        web.route("*", "/v1/acl/auth-method/{id}", method_item),
        web.route("*", "/v1/acl/binding-rule", rule_create),
        web.route("*", "/v1/acl/binding-rules", rule_list),
        web.route("*", "/v1/acl/binding-rule/{id}", rule_item),
        web.route("*", "/v1/acl/login", login),
        web.route("*", "/v1/acl/logout", logout),
        web.route("*", "/v1/agent/token/{name:.*}", agent_token),
    ]
