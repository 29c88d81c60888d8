"""A real Envoy renders the chain the endpoint serves: a dev agent, `web` with an Envoy
sidecar (started by `consulpy connect envoy -sidecar-for`) whose upstream `api` has a router,
nested splitters, and a resolver with subsets and failover; Envoy's /config_dump must show
the same routes, weights and clusters (failover as an aggregate cluster) as
`GET /v1/discovery-chain/api`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.connect.chain_scenario import ENTRIES, ROUTES, routes_of
from tests.helpers import eventually
from tests.mesh.harness import AgentProc, Sidecar, free_ports, service_file

DEADLINE = 30.0


def expected_clusters(chain: dict[str, Any]) -> dict[str, list[str]]:
    """Cluster name -> its aggregate members ([] for a plain EDS cluster), as Consul builds
    them: a resolver with failover is an aggregate over failover-target~<i>~<target name>."""
    names = {tid: target["Name"] for tid, target in chain["Targets"].items()}
    out: dict[str, list[str]] = {}
    for node in chain["Nodes"].values():
        if node["Type"] != "resolver":
            continue
        resolver = node["Resolver"]
        failover = (resolver.get("Failover") or {}).get("Targets") or []
        if not failover:
            out[names[resolver["Target"]]] = []
            continue
        members = [
            f"failover-target~{i}~{names[tid]}"
            for i, tid in enumerate([resolver["Target"], *failover])
        ]
        out[names[resolver["Target"]]] = members
        out.update({m: [] for m in members})
    return out


def envoy_view(dump: dict[str, Any], route_name: str) -> tuple[list[Any], dict[str, list[str]]]:
    """(routes of `route_name` as (prefix, [(cluster, weight)]), upstream clusters -> their
    aggregate members)."""
    routes: list[Any] = []
    clusters: dict[str, list[str]] = {}
    for config in dump["configs"]:
        kind = config["@type"].rsplit(".", 1)[-1]
        if kind == "RoutesConfigDump":
            for dynamic in config.get("dynamic_route_configs", []):
                rc = dynamic["route_config"]
                if rc["name"] != route_name:
                    continue
                for route in rc["virtual_hosts"][0]["routes"]:
                    action = route["route"]
                    if "weighted_clusters" in action:
                        weights = [
                            (c["name"], c["weight"] / 100)
                            for c in action["weighted_clusters"]["clusters"]
                        ]
                    else:
                        weights = [(action["cluster"], 100.0)]
                    routes.append((route["match"].get("prefix"), weights))
        elif kind == "ClustersConfigDump":
            for dynamic in config.get("dynamic_active_clusters", []):
                cluster = dynamic["cluster"]
                typed = (cluster.get("cluster_type") or {}).get("typed_config") or {}
                clusters[cluster["name"]] = list(typed.get("clusters") or [])
            clusters.pop("local_app", None)
    return routes, clusters


async def test_envoy_routes_and_clusters_match_the_compiled_chain(tmp_path: Path) -> None:
    upstream_port, web_port, web_public, grpc_port, http_port = free_ports(5)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    upstream = {"destination_name": "api", "local_bind_port": upstream_port}
    (config_dir / "web.json").write_text(
        json.dumps(service_file("web", "web", web_port, web_public, [upstream]))
    )
    agent = AgentProc(tmp_path, config_dir, grpc_port, http_port)
    sidecar = Sidecar(tmp_path, "web", agent)
    try:
        await agent.start()
        for entry in ENTRIES:
            assert await agent.request("PUT", "/v1/config", entry) is True
        chain = (await agent.request("GET", "/v1/discovery-chain/api"))["Chain"]
        assert routes_of(chain) == ROUTES
        names = {tid: target["Name"] for tid, target in chain["Targets"].items()}
        expected_routes = [
            (prefix, [(names[tid], weight) for tid, weight in weights])
            for prefix, weights in routes_of(chain)
        ]
        expected = expected_clusters(chain)
        # v1 fails over to v2 and then api-backup; its members are separate EDS clusters
        assert expected[names["v1.api.default.default.dc1"]] == [
            f"failover-target~0~{names['v1.api.default.default.dc1']}",
            f"failover-target~1~{names['v2.api.default.default.dc1']}",
            f"failover-target~2~{names['api-backup.default.default.dc1']}",
        ]
        await sidecar.start()
        seen: list[Any] = []

        async def rendered() -> bool:
            dump = json.loads(await sidecar.get("/config_dump"))
            seen[:] = [envoy_view(dump, "api")]
            routes, clusters = seen[0]
            return routes == expected_routes and clusters == expected

        try:
            await eventually(rendered, timeout=DEADLINE, what="the chain in Envoy's config")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nexpected {expected_routes} and clusters {expected}\n"
                f"envoy has {seen}\n{sidecar.logs()}\n{agent.output()[-4000:]}"
            ) from None
        # the admin route keeps the router's request timeout
        dump = json.loads(await sidecar.get("/config_dump?resource=dynamic_route_configs"))
        [api_routes] = [
            c["route_config"] for c in dump["configs"] if c["route_config"]["name"] == "api"
        ]
        admin = api_routes["virtual_hosts"][0]["routes"][0]
        assert admin["match"] == {"prefix": "/admin"}
        assert admin["route"]["timeout"] == "2s"
    finally:
        await sidecar.stop()
        await agent.stop()
