"""The OpenAPI 3.1 document of the HTTP API, built from what the code serves: the route table
(`app.api_routes`), the methods each handler's `endpoint` decorator allows, and the Go-struct
specs the handlers decode bodies with. Nothing here is written by hand per route except which
spec a body uses and the parameters a route reads, so the document cannot drift from the routes.
Served at /v1/openapi.json; `python -m consulpy.http.openapi` prints it (docs/openapi.json).
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from typing import Any

from aiohttp import web

from consulpy.agent import definitions
from consulpy.http import connect, gossip_api, session, specs, txn
from consulpy.util.decode import ListOf, MapOf, Struct
from consulpy.version import __version__

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

_GO_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "uint64": {"type": "integer", "minimum": 0},
    "float": {"type": "number"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "duration": {
        "description": "a Go duration string (10s, 1m30s) or nanoseconds",
        "type": ["string", "integer"],
    },
    "any": {},
}

# Request bodies decoded with a Go-struct spec, by (path, method).
_BODIES: dict[tuple[str, str], Any] = {
    ("/v1/catalog/register", "PUT"): specs.REGISTER_REQUEST,
    ("/v1/catalog/deregister", "PUT"): specs.DEREGISTER_REQUEST,
    ("/v1/agent/service/register", "PUT"): definitions.SERVICE_DEFINITION,
    ("/v1/agent/check/register", "PUT"): definitions.CHECK_TYPE,
    ("/v1/session/create", "PUT"): session.SESSION_BODY,
    ("/v1/txn", "PUT"): ListOf(txn.TXN_OP),
    ("/v1/connect/ca/configuration", "PUT"): connect.CA_CONFIG_BODY,
    ("/v1/agent/connect/authorize", "POST"): connect.AUTHORIZE_BODY,
    ("/v1/operator/keyring", "POST"): gossip_api.KEY_BODY,
    ("/v1/operator/keyring", "PUT"): gossip_api.KEY_BODY,
    ("/v1/operator/keyring", "DELETE"): gossip_api.KEY_BODY,
}

# Raw (non-JSON) bodies.
_RAW_BODIES: dict[tuple[str, str], str] = {
    ("/v1/kv/{key}", "PUT"): "the value, stored as sent",
    ("/v1/snapshot", "PUT"): "a snapshot archive (gzip tar) to restore",
    ("/v1/event/fire/{name}", "PUT"): "the event payload",
}

# The 500s Consul answers (for requests it cannot serve now, and for some client errors) whose
# texts clients match on: consulpy answers them with the same status and the text starting so.
# docs/compatibility.md lists them; any other 5xx is a defect (the fuzz and sweep tests fail).
CONSUL_500_TEXTS: tuple[str, ...] = (
    "No path to datacenter",
    "No cluster leader",
    "Failed to create boolean expression evaluator: ",  # ?filter= syntax
    "Failed to join ",  # an address that does not resolve
    "Gossip encryption is not enabled on this agent",
    'invalid session "',  # ?acquire= a session that does not exist
    "UUID must be 36 characters",  # a session or prepared query ID
    "Invalid UUID",
    "cannot transfer leadership",  # a single server has no other voter
    "agent: No node found with name ",  # force-leave of a node gossip does not know
)

_STRING = {"type": "string"}
_UINT = {"type": "integer", "minimum": 0}
_FLAG = {"type": "string", "description": "present means true; the value is ignored"}

# Query parameters every read (GET) accepts: Consul's blocking-query and consistency options.
_READ_PARAMS: dict[str, dict[str, Any]] = {
    "dc": _STRING,
    "index": _UINT,
    "wait": {"type": "string", "description": "a duration, e.g. 10s"},
    "stale": _FLAG,
    "consistent": _FLAG,
    "cached": _FLAG,
    "filter": {"type": "string", "description": "a filter expression"},
}
_WRITE_PARAMS: dict[str, dict[str, Any]] = {"dc": _STRING}

# What particular routes read besides the common parameters, by path prefix.
_ROUTE_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "/v1/kv/": {
        "recurse": _FLAG,
        "keys": _FLAG,
        "separator": _STRING,
        "raw": _FLAG,
        "cas": _UINT,
        "acquire": _STRING,
        "release": _STRING,
        "flags": _UINT,
    },
    "/v1/catalog/": {"near": _STRING, "node-meta": _STRING, "tag": _STRING},
    "/v1/health/": {"near": _STRING, "node-meta": _STRING, "tag": _STRING, "passing": _FLAG},
    "/v1/agent/check/update": {},
    "/v1/agent/service/maintenance": {"enable": _STRING, "reason": _STRING},
    "/v1/agent/maintenance": {"enable": _STRING, "reason": _STRING},
    "/v1/connect/intentions/exact": {"source": _STRING, "destination": _STRING},
    "/v1/connect/intentions/check": {"source": _STRING, "destination": _STRING},
    "/v1/connect/intentions/match": {"by": _STRING, "name": _STRING},
    "/v1/event/": {"node": _STRING, "service": _STRING, "tag": _STRING, "name": _STRING},
}


def go_schema(spec: Any) -> dict[str, Any]:
    """JSON Schema of a decode spec. Go's decoder takes null for any field (zero value)."""
    if isinstance(spec, str):
        return dict(_GO_SCHEMAS[spec])
    if isinstance(spec, ListOf):
        return {"type": ["array", "null"], "items": go_schema(spec.item)}
    if isinstance(spec, MapOf):
        return {"type": ["object", "null"], "additionalProperties": go_schema(spec.value)}
    if isinstance(spec, Struct):
        return {
            "type": "object",
            "title": spec.name,
            "properties": {name: go_schema(sub) for name, sub in spec.fields.items()},
            "additionalProperties": not spec.strict,
        }
    raise TypeError(f"no schema for {spec!r}")


def _operation(path: str, method: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    query = dict(_READ_PARAMS if method == "GET" else _WRITE_PARAMS)
    for prefix, extra in _ROUTE_PARAMS.items():
        if path.startswith(prefix):
            query.update(extra)
    op: dict[str, Any] = {
        "operationId": f"{method.lower()} {path}",
        "parameters": [
            *params,
            *({"name": n, "in": "query", "schema": s} for n, s in query.items()),
            {"name": "X-Consul-Token", "in": "header", "schema": _STRING},
        ],
        "responses": {
            "200": {
                "description": "success",
                "content": {
                    "application/json": {"schema": {}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            "500": {
                "description": "as Consul: the request cannot be served now (e.g. "
                + "; ".join(CONSUL_500_TEXTS[:2])
                + "), or a server refused it with Consul's text (the RPC layer's errors). A "
                "defect answers `Internal Server Error (request ID: <id>)`.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "default": {
                "description": "an error: Consul's status code with a plain-text reason (some "
                "answer JSON, as Consul: a 404 agent health view, a 409 transaction's Errors)",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/json": {"schema": {}},
                },
            },
        },
    }
    if (path, method) in _BODIES:
        op["requestBody"] = {
            "content": {"application/json": {"schema": go_schema(_BODIES[path, method])}}
        }
    elif (path, method) in _RAW_BODIES:
        op["requestBody"] = {
            "description": _RAW_BODIES[path, method],
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    elif method in ("PUT", "POST"):
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {}}}}
    return op


def document(routes: list[web.RouteDef]) -> dict[str, Any]:
    """The OpenAPI document of `routes` (handlers wrapped by `endpoint`)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        methods = getattr(route.handler, "methods", None)
        if methods is None:
            raise ValueError(f"{route.path}: handler is not wrapped by endpoint()")
        path = _PARAM.sub(r"{\1}", route.path)
        params = [
            {"name": name, "in": "path", "required": True, "schema": _STRING}
            for name in _PARAM.findall(route.path)
        ]
        item = paths.setdefault(path, {})
        for method in methods:
            item[method.lower()] = _operation(path, method, params)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "consulpy HTTP API",
            "version": __version__,
            "description": "Consul's /v1 HTTP API as consulpy serves it "
            "(docs/compatibility.md lists every difference).",
        },
        "paths": dict(sorted(paths.items())),
    }


@cache
def document_json() -> bytes:
    from consulpy.http.app import api_routes

    return json.dumps(document(api_routes()), indent=1, sort_keys=True).encode() + b"\n"


async def openapi_json(_req: web.Request) -> web.Response:
    return web.Response(body=document_json(), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get("/v1/openapi.json", openapi_json)]


if __name__ == "__main__":
    sys.stdout.write(document_json().decode())
