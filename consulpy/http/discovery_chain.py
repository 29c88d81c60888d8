"""/v1/discovery-chain/<service>: the compiled discovery chain (GET), or compiled with
overrides (POST). Both are reads: blocking queries and consistency modes apply."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from consulpy.http.endpoint import (
    agent_of,
    bad_request,
    endpoint,
    query_options,
    read_body,
    respond,
)
from consulpy.http.tokens import request_token
from consulpy.util.decode import DecodeError, parse_json
from consulpy.util.durations import DurationError, duration_from_json

MAX_BODY = 64 * 1024
MESH_GATEWAY_MODES = ("", "none", "local", "remote")
# Body keys (lower-cased, as mapstructure matches them) -> our field; Consul also accepts the
# snake_case spellings.
_KEYS = {
    "overrideconnecttimeout": "timeout",
    "override_connect_timeout": "timeout",
    "overrideprotocol": "protocol",
    "override_protocol": "protocol",
    "overridemeshgateway": "mesh_gateway",
    "override_mesh_gateway": "mesh_gateway",
}


def _decoding_failed(text: str) -> Exception:
    return bad_request(f"Request decoding failed: {text}")


def _overrides(doc: Any) -> dict[str, Any]:
    """The read's override arguments from a POST body; every setting is checked."""
    if not isinstance(doc, dict):
        raise _decoding_failed("the body must be a JSON object")
    fields: dict[str, Any] = {}
    unknown = []
    for key, value in doc.items():
        field = _KEYS.get(key.lower())
        if field is None:
            unknown.append(key)
        else:
            fields[field] = value
    if unknown:
        raise _decoding_failed(f"'' has invalid keys: {', '.join(sorted(unknown))}")
    args: dict[str, Any] = {}
    if fields.get("protocol") is not None:
        protocol = fields["protocol"]
        if not isinstance(protocol, str):
            raise _decoding_failed("'OverrideProtocol' expected a string")
        args["override_protocol"] = protocol.lower()
    if fields.get("timeout") is not None:
        raw = fields["timeout"]
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _decoding_failed(
                "'OverrideConnectTimeout' expected a duration string or a number of nanoseconds"
            )
        try:
            timeout = duration_from_json(raw)
        except (DurationError, ValueError) as exc:
            raise _decoding_failed(f"'OverrideConnectTimeout' {exc}") from exc
        if timeout < 0:
            raise _decoding_failed("'OverrideConnectTimeout' must not be negative")
        args["override_connect_timeout_ns"] = int(timeout)
    if fields.get("mesh_gateway") is not None:
        gateway = fields["mesh_gateway"]
        if not isinstance(gateway, dict):
            raise _decoding_failed("'OverrideMeshGateway' expected a map")
        extra = [k for k in gateway if k.lower() != "mode"]
        if extra:
            raise _decoding_failed(
                f"'OverrideMeshGateway' has invalid keys: {', '.join(sorted(extra))}"
            )
        mode = next((v for k, v in gateway.items() if k.lower() == "mode"), "")
        if not isinstance(mode, str) or mode not in MESH_GATEWAY_MODES:
            raise bad_request("Invalid OverrideMeshGateway.Mode parameter")
        args["override_mesh_gateway_mode"] = mode
    return args


@endpoint("GET", "POST")
async def discovery_chain(req: web.Request) -> web.StreamResponse:
    agent = agent_of(req)
    name = req.match_info.get("name", "")
    if not name:
        raise bad_request("Missing chain name")
    opts = query_options(req)
    args: dict[str, Any] = {
        "name": name,
        "compile_dc": req.query.get("compile-dc") or agent.datacenter,
    }
    if req.method == "POST":
        raw = await read_body(req, MAX_BODY, lambda n: f"Request body too large: {n} bytes")
        if raw.strip():
            try:
                doc = parse_json(raw)
            except DecodeError as exc:
                raise _decoding_failed(str(exc)) from exc
            args.update(_overrides(doc))
    meta, result = await agent.delegate.read(
        "DiscoveryChain.Get", args, opts, token=request_token(req)
    )
    return respond(req, result, meta=meta)


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1/discovery-chain/{name:.*}", discovery_chain)]
