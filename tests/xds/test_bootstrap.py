"""Bootstrap JSON (spec 5.2), checked field by field and by Envoy's own validator, and every
resource the builders produce checked by Envoy's validator too."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2

from consulpy.xds.bootstrap import bootstrap_config, envoy_binary, stats_tags
from consulpy.xds.listeners import http_connection_manager
from consulpy.xds.protoutil import ROUTER, extension, to_dict, to_message
from consulpy.xds.resources import CLUSTER, LISTENER, ROUTE, build
from tests.xds import samples
from tests.xds.mesh import Certs


async def envoy_validate(config: dict, tmp: Path) -> tuple[int, str]:
    """``envoy --mode validate``: Envoy builds every object of the config (TLS contexts, RE2
    programs, clusters referenced by routes) without serving."""
    path = tmp / f"config-{len(list(tmp.glob('config-*')))}.json"
    path.write_text(json.dumps(config))
    proc = await asyncio.create_subprocess_exec(
        envoy_binary(),
        "--mode",
        "validate",
        "-c",
        str(path),
        "--disable-hot-restart",
        "-l",
        "error",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


def test_shape() -> None:
    b = bootstrap_config(
        "web-sidecar-proxy",
        "web",
        "127.0.0.1",
        8502,
        "localhost:19000",
        token="secret",
        datacenter="dc2",
    )
    to_message(b, bootstrap_pb2.Bootstrap())  # every field is a real Envoy field
    assert b["node"] == {
        "id": "web-sidecar-proxy",
        "cluster": "web",
        "metadata": {"namespace": "default", "partition": "default"},
    }
    assert b["admin"]["address"] == {
        "socket_address": {"address": "127.0.0.1", "port_value": 19000}
    }
    assert b["admin"]["access_log"][0]["typed_config"]["path"] == "/dev/null"
    assert b["layered_runtime"]["layers"][0]["static_layer"] == {
        "re2.max_program_size.error_level": 1048576
    }
    [agent] = b["static_resources"]["clusters"]
    assert agent["name"] == "local_agent" and agent["type"] == "STATIC"
    assert agent["connect_timeout"] == "1s"
    assert "transport_socket" not in agent
    options = agent["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert options["explicit_http_config"] == {"http2_protocol_options": {}}
    address = agent["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address == {"socket_address": {"address": "127.0.0.1", "port_value": 8502}}
    dyn = b["dynamic_resources"]
    for key in ("lds_config", "cds_config"):
        assert dyn[key] == {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    ads = dyn["ads_config"]
    assert ads["api_type"] == "DELTA_GRPC" and ads["transport_api_version"] == "V3"
    assert ads["grpc_services"] == [
        {
            "initial_metadata": [{"key": "x-consul-token", "value": "secret"}],
            "envoy_grpc": {"cluster_name": "local_agent"},
        }
    ]
    fixed = {
        t["tag_name"]: t["fixed_value"]
        for t in b["stats_config"]["stats_tags"]
        if "fixed_value" in t
    }
    assert fixed == {
        "local_cluster": "web",
        "consul.source.service": "web",
        "consul.source.namespace": "default",
        "consul.source.partition": "default",
        "consul.source.datacenter": "dc2",
    }
    assert b["stats_config"]["use_all_default_tags"] is True


def test_tls_and_unix_socket_agent() -> None:
    b = bootstrap_config("p", "s", "unix:///run/consul.sock", 0, "127.0.0.1:19001", ca_pem="CA")
    [agent] = b["static_resources"]["clusters"]
    address = agent["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address == {"pipe": {"path": "/run/consul.sock"}}
    tls = agent["transport_socket"]["typed_config"]
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"] == {"inline_string": "CA"}
    with pytest.raises(ValueError, match="address nope: missing port in address"):
        bootstrap_config("p", "s", admin_bind="nope")


@pytest.mark.parametrize(
    ("stat", "tags"),
    [
        (
            "cluster.api.default.dc1.internal.7f42.consul.upstream_rq_total",
            {
                "service": "api",
                "namespace": "default",
                "datacenter": "dc1",
                "routing_type": "internal",
                "trust_domain": "7f42",
                "target": "api.default.dc1",
                "full_target": "api.default.dc1.internal.7f42",
            },
        ),
        (
            "cluster.v2.api.default.dc1.internal.7f42.consul.upstream_rq_total",
            {"service_subset": "v2", "service": "api", "target": "v2.api.default.dc1"},
        ),
    ],
)
def test_stats_tags_split_cluster_names(stat: str, tags: dict[str, str]) -> None:
    rules = {t["tag_name"]: t["regex"] for t in stats_tags("web", "dc1") if "regex" in t}
    for name, want in tags.items():
        m = re.search(rules[f"consul.destination.{name}"], stat)
        assert m is not None and m.group(2) == want, name


def test_stats_tags_split_upstream_prefixes() -> None:
    rules = {t["tag_name"]: t["regex"] for t in stats_tags("web", "dc1") if "regex" in t}
    stat = "tcp.upstream.db.default.default.dc2.downstream_cx_total"
    got = {
        name: re.search(rules[f"consul.upstream.{name}"], stat).group(2)
        for name in ("service", "namespace", "partition", "datacenter")
    }
    assert got == {
        "service": "db",
        "namespace": "default",
        "partition": "default",
        "datacenter": "dc2",
    }


def test_envoy_binary() -> None:
    assert Path(envoy_binary()).is_file()


async def test_envoy_accepts_the_bootstrap(tmp_path: Path) -> None:
    b = bootstrap_config(
        "web-sidecar-proxy",
        "web",
        "127.0.0.1",
        8502,
        "127.0.0.1:0",
        token="t",
        ca_pem=Certs().roots[0],
    )
    code, out = await envoy_validate(b, tmp_path)
    assert code == 0, out


def resources_as_static_config(snapshot) -> dict:
    """The snapshot's clusters and listeners as static resources, and each route
    configuration inlined into a listener of its own, so ``--mode validate`` builds them."""
    res = build(snapshot)
    b = bootstrap_config(snapshot.proxy_id, snapshot.service, admin_bind="127.0.0.1:0")
    b["static_resources"]["clusters"] += [to_dict(r.message) for r in res.of_type(CLUSTER).values()]
    listeners = [to_dict(r.message) for r in res.of_type(LISTENER).values()]
    router = extension("envoy.filters.http.router", ROUTER, {})
    for n, route in enumerate(res.of_type(ROUTE).values()):
        hcm = http_connection_manager(
            "check", "http", [router], route_config=to_dict(route.message)
        )
        listeners.append(
            {
                "name": f"rds-check-{n}",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [hcm]}],
            }
        )
    b["static_resources"]["listeners"] = listeners
    return b


async def test_envoy_accepts_every_sample_snapshot(tmp_path: Path) -> None:
    certs = Certs()
    cert, key = certs.leaf("web")
    for name, make in samples.GOLDEN.items():
        snap = replace(make(), roots_pem=certs.roots, leaf_cert_pem=cert, leaf_key_pem=key)
        code, out = await envoy_validate(resources_as_static_config(snap), tmp_path)
        assert code == 0, f"{name}: {out}"

    # The validator has teeth: an RE2 error in an L7 intention is refused.
    bad = replace(
        samples.http_default_deny_l7(),
        roots_pem=certs.roots,
        leaf_cert_pem=cert,
        leaf_key_pem=key,
        intentions=(
            samples.intention(
                "x", Permissions=[{"Action": "allow", "HTTP": {"PathRegex": "(unclosed"}}]
            ),
        ),
    )
    code, out = await envoy_validate(resources_as_static_config(bad), tmp_path)
    assert code != 0, out
    assert "missing )" in out or "regex" in out.lower(), out
