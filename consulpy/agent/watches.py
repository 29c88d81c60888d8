"""Consul watches: a blocking query over the agent's own HTTP API whose results are handed to a
script (JSON on stdin) or an HTTP endpoint (JSON body), as `consul watch` and the agent's
`watches` config do. Used by the agent (started by the runtime, replaced on reload) and by
`consulpy watch`.

Watches go through HTTP rather than the store because that is what Consul does: the payloads
are exactly what the matching /v1 endpoint answers, with its ACLs and its consistency.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import aiohttp

    from consulpy.config import AgentConfig

log = structlog.get_logger("consulpy.watches")

WATCH_TYPES = ("key", "keyprefix", "services", "nodes", "service", "checks", "event")
# Parameters each type accepts besides the global ones.
_TYPE_PARAMS: dict[str, tuple[str, ...]] = {
    "key": ("key",),
    "keyprefix": ("prefix",),
    "services": (),
    "nodes": (),
    "service": ("service", "tag", "passingonly"),
    "checks": ("service", "state"),
    "event": ("name",),
}
_GLOBAL = ("type", "datacenter", "token", "args", "handler", "handler_type", "http_handler_config")
_HTTP_KEYS = ("path", "method", "header", "timeout", "tls_skip_verify")
BLOCK_WAIT = "5m"
RETRY_BASE = 1.0
RETRY_MAX = 30.0


class WatchError(ValueError):
    """A watch definition that cannot run; the message names the offending field."""


@dataclass(frozen=True)
class HTTPHandler:
    path: str
    method: str = "POST"
    header: dict[str, list[str]] = field(default_factory=dict)
    timeout: float = 10.0
    tls_skip_verify: bool = False


@dataclass(frozen=True)
class WatchPlan:
    """One parsed watch: what to query and whom to tell."""

    type: str
    path: str
    query: list[tuple[str, str]]
    datacenter: str = ""
    token: str = ""
    args: list[str] | None = None
    shell: str | None = None
    http: HTTPHandler | None = None

    def payload(self, status: int, body: Any) -> Any:
        """What the handler receives for one response of the query."""
        if self.type == "key":
            return body[0] if status == 200 and body else None
        if status == 404:
            return None
        return body


def _duration(value: Any, what: str) -> float:
    from consulpy.config.durations import parse_duration

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise WatchError(f"{what}: {exc}") from exc


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise WatchError(f"{what} must be a boolean")


def _str(spec: dict[str, Any], key: str) -> str:
    value = spec.get(key, "")
    if not isinstance(value, str):
        raise WatchError(f"{key} must be a string")
    return value


def _http_handler(raw: Any) -> HTTPHandler:
    if not isinstance(raw, dict):
        raise WatchError("http_handler_config must be an object")
    unknown = sorted(set(raw) - set(_HTTP_KEYS))
    if unknown:
        raise WatchError(f"http_handler_config: unknown keys {unknown}")
    path = raw.get("path")
    if not path or not isinstance(path, str):
        raise WatchError("http_handler_config.path is required")
    if not path.startswith(("http://", "https://")):
        raise WatchError(f"http_handler_config.path {path!r} must be an http(s) URL")
    header: dict[str, list[str]] = {}
    for name, values in (raw.get("header") or {}).items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise WatchError(f"http_handler_config.header.{name} must be a list of strings")
        header[str(name)] = list(values)
    method = raw.get("method") or "POST"
    if not isinstance(method, str):
        raise WatchError("http_handler_config.method must be a string")
    return HTTPHandler(
        path=path,
        method=method.upper(),
        header=header,
        timeout=_duration(raw.get("timeout", 10.0), "http_handler_config.timeout"),
        tls_skip_verify=_bool(
            raw.get("tls_skip_verify", False), "http_handler_config.tls_skip_verify"
        ),
    )


def parse_watch(spec: dict[str, Any], *, need_handler: bool = True) -> WatchPlan:
    """Check one watch definition (Consul's field names) completely and build its plan."""
    if not isinstance(spec, dict):
        raise WatchError("a watch must be an object")
    wtype = spec.get("type")
    if not wtype:
        raise WatchError("Watch type must be specified")
    if wtype not in WATCH_TYPES:
        raise WatchError(f"Unsupported watch type: {wtype}")
    allowed = set(_GLOBAL) | set(_TYPE_PARAMS[wtype])
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise WatchError(f"Invalid parameters for {wtype!r} watch: {unknown}")
    query: list[tuple[str, str]] = []
    if wtype == "key":
        key = _str(spec, "key")
        if not key:
            raise WatchError("Must specify a single key to watch")
        path = "/v1/kv/" + key.lstrip("/")
    elif wtype == "keyprefix":
        prefix = _str(spec, "prefix")
        if not prefix:
            raise WatchError("Must specify a single prefix to watch")
        path, query = "/v1/kv/" + prefix.lstrip("/"), [("recurse", "")]
    elif wtype == "services":
        path = "/v1/catalog/services"
    elif wtype == "nodes":
        path = "/v1/catalog/nodes"
    elif wtype == "service":
        service = _str(spec, "service")
        if not service:
            raise WatchError("Must specify a single service to watch")
        path = f"/v1/health/service/{service}"
        tags = spec.get("tag", [])
        tags = [tags] if isinstance(tags, str) else tags
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise WatchError("tag must be a string or a list of strings")
        query = [("tag", t) for t in tags if t]
        if _bool(spec.get("passingonly", False), "passingonly"):
            query.append(("passing", ""))
    elif wtype == "checks":
        service, state = _str(spec, "service"), _str(spec, "state")
        if service and state:
            raise WatchError("Cannot specify service and state")
        if service:
            path = f"/v1/health/checks/{service}"
        else:
            if state and state not in ("any", "passing", "warning", "critical"):
                raise WatchError(f"Invalid state: {state}")
            path = f"/v1/health/state/{state or 'any'}"
    else:
        path = "/v1/event/list"
        if _str(spec, "name"):
            query = [("name", _str(spec, "name"))]
    handler_type = spec.get("handler_type", "script") or "script"
    args: list[str] | None = None
    shell: str | None = None
    http: HTTPHandler | None = None
    if handler_type == "script":
        if "http_handler_config" in spec:
            raise WatchError('http_handler_config is only valid with handler_type "http"')
        raw_args, handler = spec.get("args"), spec.get("handler")
        if raw_args is not None and handler:
            raise WatchError("Only one watch handler allowed")
        if raw_args is not None:
            if not isinstance(raw_args, list) or not all(isinstance(a, str) for a in raw_args):
                raise WatchError("args must be a list of strings")
            if not raw_args:
                raise WatchError("args must not be empty")
            args = list(raw_args)
        elif handler:
            if not isinstance(handler, str):
                raise WatchError("handler must be a string")
            shell = handler
        elif need_handler:
            raise WatchError("Must define a watch handler (args or handler)")
    elif handler_type == "http":
        if spec.get("args") is not None or spec.get("handler"):
            raise WatchError('args/handler are only valid with handler_type "script"')
        http = _http_handler(spec.get("http_handler_config"))
    else:
        raise WatchError(f"Handler type '{handler_type}' not recognized")
    return WatchPlan(
        type=wtype,
        path=path,
        query=query,
        datacenter=_str(spec, "datacenter"),
        token=_str(spec, "token"),
        args=args,
        shell=shell,
        http=http,
    )


# ------------------------------------------------------------------ running
async def fetch(
    session: aiohttp.ClientSession, base: str, plan: WatchPlan, index: int, wait: str = BLOCK_WAIT
) -> tuple[int, Any]:
    """One (blocking, when index > 0) query; returns (X-Consul-Index, payload)."""
    import aiohttp

    query = list(plan.query)
    if plan.datacenter:
        query.append(("dc", plan.datacenter))
    if index:
        query += [("index", str(index)), ("wait", wait)]
    headers = {"X-Consul-Token": plan.token} if plan.token else {}
    async with session.get(base + plan.path, params=query, headers=headers) as resp:
        text = await resp.text()
        if resp.status not in (200, 404) or (
            resp.status == 404 and plan.type not in ("key", "keyprefix")
        ):
            raise aiohttp.ClientResponseError(
                resp.request_info, (), status=resp.status, message=text.strip()
            )
        new_index = int(resp.headers.get("X-Consul-Index", "0") or 0)
        body = json.loads(text) if resp.status == 200 and text else None
        return new_index, plan.payload(resp.status, body)


async def run_script(plan: WatchPlan, index: int, payload: Any) -> int:
    """Run the script handler with the payload on stdin; returns its exit code."""
    data = json.dumps(payload).encode()
    env = dict(os.environ, CONSUL_INDEX=str(index))
    if plan.args is not None:
        proc = await asyncio.create_subprocess_exec(
            *plan.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    else:
        shell = os.environ.get("SHELL") or "/bin/sh"
        proc = await asyncio.create_subprocess_exec(
            shell,
            "-c",
            plan.shell or "",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    out, _ = await proc.communicate(data)
    if out:
        log.info("watch handler output", type=plan.type, output=out.decode("utf-8", "replace"))
    return proc.returncode or 0


async def run_http(
    session: aiohttp.ClientSession, plan: WatchPlan, index: int, payload: Any
) -> int:
    """POST (or the configured method) the payload; returns the HTTP status."""
    import aiohttp

    assert plan.http is not None
    cfg = plan.http
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    headers += [(k, v) for k, vs in cfg.header.items() for v in vs]
    headers.append(("X-Consul-Index", str(index)))
    async with session.request(
        cfg.method,
        cfg.path,
        data=json.dumps(payload).encode(),
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=cfg.timeout),
        ssl=False if cfg.tls_skip_verify else None,
    ) as resp:
        await resp.read()
        return resp.status


Handler = Callable[[int, Any], Any]


async def run_watch(
    base: str,
    plan: WatchPlan,
    *,
    stop_on_handler_error: bool = False,
) -> int:
    """Run `plan` until cancelled (or, with stop_on_handler_error, until a handler fails:
    returns 1). Fires on the first result and whenever the index moves with changed data;
    query errors are retried with exponential back-off."""
    import aiohttp

    index = 0
    last: Any = object()
    backoff = RETRY_BASE
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        while True:
            try:
                new_index, payload = await fetch(session, base, plan, index)
            except (aiohttp.ClientError, ValueError, OSError) as exc:
                log.error("watch query failed", type=plan.type, error=str(exc), retry=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX)
                continue
            backoff = RETRY_BASE
            if new_index < index:
                new_index = 0  # the index went backwards (e.g. a restore): start over
            index = max(new_index, 1)
            if payload == last:
                continue
            last = payload
            try:
                if plan.http is not None:
                    status = await run_http(session, plan, index, payload)
                    ok = 200 <= status < 300
                    if not ok:
                        log.error("watch http handler failed", type=plan.type, status=status)
                else:
                    ok = await run_script(plan, index, payload) == 0
                    if not ok:
                        log.error("watch handler failed", type=plan.type)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                ok = False
                log.error("watch handler failed", type=plan.type, error=str(exc))
            if not ok and stop_on_handler_error:
                return 1


# --------------------------------------------------------------- in the agent
class AgentWatches:
    """The `watches` of the agent's config, running while the agent runs; `apply` replaces
    them all (what Consul does on reload)."""

    def __init__(self, base_url: Callable[[], str | None]) -> None:
        self._base_url = base_url
        self._tasks: list[asyncio.Task[int]] = []

    def plans(self, config: AgentConfig) -> list[WatchPlan]:
        plans = []
        for n, spec in enumerate(config.watches):
            try:
                plans.append(parse_watch(spec))
            except WatchError as exc:
                raise WatchError(f"Failed to parse watch #{n + 1}: {exc}") from exc
        return plans

    def apply(self, config: AgentConfig) -> None:
        """Check every watch of `config`, then stop the running ones and start these. A bad
        definition raises WatchError and leaves the running watches alone."""
        plans = self.plans(config)
        base = self._base_url()
        if plans and base is None:
            raise WatchError("watches need the HTTP API: no HTTP address is configured")
        self._cancel()
        for plan in plans:
            assert base is not None
            self._tasks.append(asyncio.get_running_loop().create_task(run_watch(base, plan)))
        if plans:
            log.info("watches started", count=len(plans))

    def _cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def local_base_url(addresses: list[tuple[str, int]]) -> str | None:
    """A URL of the agent's own HTTP listener (a wildcard address is reached via loopback)."""
    if not addresses:
        return None
    host, port = addresses[0]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def install_watches(agent: Any) -> AgentWatches:
    """Start the agent's configured watches and register `apply_watches` among the agent's
    reload hooks, so a reload replaces them."""
    watches = AgentWatches(lambda: local_base_url(agent.http_addresses))
    watches.apply(agent.config)
    agent.reload_hooks.append(watches.apply)
    agent.apply_watches = watches.apply
    return watches
