"""Gossip-facing endpoints: /v1/agent/join, leave, force-leave, /v1/operator/keyring,
/v1/event/fire and /v1/event/list."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from aiohttp import web

from consulpy.agent.gossip import event_index
from consulpy.gossip.keyring import KeyringError
from consulpy.gossip.serf import JoinError, SerfError
from consulpy.http.agent_acl import authorize
from consulpy.http.endpoint import (
    HTTPError,
    agent_of,
    bad_request,
    empty_ok,
    endpoint,
    parse_wait,
    read_body,
    respond,
)
from consulpy.util.decode import DecodeError, Struct, decode_struct, parse_json
from consulpy.util.goparse import ascii_digits

EVENT_MAX_WAIT = 600.0


# ------------------------------------------------------------------- members
@endpoint("PUT", check_dc=False)
async def agent_join(req: web.Request) -> web.StreamResponse:
    address = req.match_info.get("address", "")
    if not address:
        raise bad_request("Missing address")
    await authorize(req, "agent", "write", agent_of(req).node_name)
    agent = agent_of(req)
    pool: Any = agent.gossip
    if req.query.get("wan"):
        if agent.wan is None:
            raise HTTPError(500, "Must be a server to join WAN cluster")
        pool = agent.wan
    try:
        await pool.join([address])
    except (JoinError, OSError, SerfError, ValueError) as exc:
        raise HTTPError(500, str(exc)) from exc
    return empty_ok()


@endpoint("PUT", check_dc=False)
async def agent_leave(req: web.Request) -> web.StreamResponse:
    """Leave gracefully, then shut the agent down (after answering)."""
    agent = agent_of(req)
    await authorize(req, "agent", "write", agent.node_name)
    await agent.leave()
    agent.request_shutdown()
    return empty_ok()


@endpoint("PUT", check_dc=False)
async def agent_force_leave(req: web.Request) -> web.StreamResponse:
    node = req.match_info.get("node", "")
    if not node:
        raise bad_request("Missing node name")
    await authorize(req, "operator", "write")
    agent = agent_of(req)
    prune = "prune" in req.query
    try:
        if req.query.get("wan"):
            # Only the WAN pool, where members are named <node>.<dc>.
            if agent.wan is None:
                raise HTTPError(500, "Must be a server to force-leave a WAN member")
            await agent.wan.force_leave(node, prune=prune)
            return empty_ok()
        # A server refuses a name that is no member of its LAN pool (a client agent asks its
        # serf without checking), as Consul's Server.RemoveFailedNode.
        known = {m["Name"] for m in agent.gossip.member_views()}
        if agent.server is not None and node not in known:
            raise HTTPError(500, f"agent: No node found with name '{node}'")
        await agent.gossip.force_leave(node, prune=prune)
        wan_name = node if node.endswith(f".{agent.datacenter}") else f"{node}.{agent.datacenter}"
        if agent.wan is not None and any(m.name == wan_name for m in agent.wan.members()):
            # A server of this datacenter leaves the WAN pool too, as in Consul.
            await agent.wan.force_leave(wan_name, prune=prune)
    except SerfError as exc:
        raise HTTPError(500, str(exc)) from exc
    return empty_ok()


# ------------------------------------------------------------------- keyring
KEY_BODY = Struct("KeyringRequest", {"Key": "string"})


async def _key(req: web.Request) -> str:
    raw = await read_body(req, 1 << 16, lambda n: f"Request body too large: {n} bytes")
    try:
        body = decode_struct(parse_json(raw) if raw.strip() else {}, KEY_BODY)
    except DecodeError as exc:
        raise bad_request(f"Request decode failed: {exc}") from exc
    key = body.get("Key", "")
    try:
        if len(base64.b64decode(key, validate=True)) not in (16, 24, 32):
            raise ValueError("key size must be 16, 24 or 32 bytes")
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"Invalid key: {exc}") from exc
    return key


def _keyring_view(agent: Any, report: Any, wan: bool) -> dict[str, Any]:
    return {
        "WAN": wan,
        "Datacenter": agent.datacenter,
        "Segment": "",
        "Partition": "",
        "Keys": dict(report.keys),
        "PrimaryKeys": dict(report.primary_keys),
        "NumNodes": report.num_nodes,
    }


def _check_report(agent: Any, report: Any, pool: str) -> None:
    if report.num_err:
        detail = "; ".join(f"{node}: {msg}" for node, msg in sorted(report.messages.items()))
        raise HTTPError(500, f"{pool} error: {detail}")


@endpoint("GET", "POST", "PUT", "DELETE", check_dc=False)
async def operator_keyring(req: web.Request) -> web.StreamResponse:
    """Keyring operations on every pool this agent is in, as Consul: a server acts on the WAN
    pool first, then its LAN pool; a client agent on its LAN pool."""
    agent = agent_of(req)
    relay = req.query.get("relay-factor", "0") or "0"
    if not ascii_digits(relay) or int(relay) > 5:
        raise bad_request("Error parsing relay factor: relay-factor must be 0-5")
    if agent.gossip.serf.keyring is None:
        raise HTTPError(500, "Gossip encryption is not enabled on this agent")
    pools: list[tuple[bool, str, Any]] = []
    if agent.wan is not None and agent.wan.serf.keyring is not None:
        pools.append((True, "WAN", agent.wan.serf.key_manager))
    pools.append((False, f"{agent.datacenter} (LAN)", agent.gossip.serf.key_manager))
    key = "" if req.method == "GET" else await _key(req)
    views = []
    for wan, label, manager in pools:
        try:
            if req.method == "GET":
                report = await manager.list_keys(relay_factor=int(relay))
                _check_report(agent, report, label)
                views.append(_keyring_view(agent, report, wan))
                continue
            op = {
                "POST": manager.install_key,
                "PUT": manager.use_key,
                "DELETE": manager.remove_key,
            }[req.method]
            report = await op(key, relay_factor=int(relay))
        except (KeyringError, SerfError) as exc:
            raise HTTPError(500, f"{label} error: {exc}") from exc
        _check_report(agent, report, label)
    if req.method == "GET":
        return respond(req, views)
    return empty_ok()


# -------------------------------------------------------------------- events
@endpoint("PUT")
async def event_fire(req: web.Request) -> web.StreamResponse:
    name = req.match_info.get("name", "")
    if not name:
        raise bad_request("Missing name")
    payload = await read_body(req, 1 << 16, lambda n: f"Request body too large: {n} bytes")
    q = req.query
    try:
        event = await agent_of(req).gossip.fire(
            name,
            payload,
            node=q.get("node", ""),
            service=q.get("service", ""),
            tag=q.get("tag", ""),
        )
    except (ValueError, SerfError) as exc:
        raise HTTPError(500, str(exc)) from exc
    return respond(req, event)


@endpoint("GET")
async def event_list(req: web.Request) -> web.StreamResponse:
    """Consul's special blocking: the index is derived from the last event's ID and only
    compared for equality; `index` alone waits up to 10 minutes, without jitter."""
    gossip = agent_of(req).gossip
    name = req.query.get("name", "")
    raw_index = req.query.get("index", "")
    if raw_index and not (ascii_digits(raw_index) and int(raw_index) < 1 << 64):
        raise bad_request("Invalid index")
    wait = parse_wait(req.query["wait"]) if req.query.get("wait") else EVENT_MAX_WAIT
    wait = min(wait, EVENT_MAX_WAIT)

    def current() -> tuple[int, list[dict[str, Any]]]:
        events = gossip.list_events(name)
        return (event_index(events[-1]["ID"]) if events else 1), events

    index, events = current()
    if raw_index and int(raw_index) == index:
        deadline = asyncio.get_running_loop().time() + wait
        while index == int(raw_index):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await gossip.wait_event(remaining)
            index, events = current()
    return respond(req, events, headers={"X-Consul-Index": str(index)})


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/v1/agent/join/{address:.*}", agent_join),
        web.route("*", "/v1/agent/leave", agent_leave),
        web.route("*", "/v1/agent/force-leave/{node:.*}", agent_force_leave),
        web.route("*", "/v1/operator/keyring", operator_keyring),
        web.route("*", "/v1/event/fire/{name:.*}", event_fire),
        web.route("*", "/v1/event/list", event_list),
    ]
