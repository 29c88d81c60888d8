"""One discovery chain used by the validation, endpoint and real-Envoy tests, so the three
can be compared: a router, nested splitters, and a resolver with subsets and failover.

`api` (http) routes `/admin` to `api-admin`; everything else goes to `api`'s splitter, which
sends 80% to the v1 subset and 20% to `api-next`, whose own splitter sends half of that to
api's v2 subset and half to `api-canary`. v1 fails over to v2 and to `api-backup`.
"""

from __future__ import annotations

from typing import Any

ENTRIES: list[dict[str, Any]] = [
    {"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}},
    {
        "Kind": "service-resolver",
        "Name": "api",
        "DefaultSubset": "v1",
        "ConnectTimeout": "3s",
        "Subsets": {
            "v1": {"Filter": "Service.Meta.version == 1"},
            "v2": {"Filter": "Service.Meta.version == 2", "OnlyPassing": True},
        },
        "Failover": {"v1": {"Targets": [{"ServiceSubset": "v2"}, {"Service": "api-backup"}]}},
    },
    {
        "Kind": "service-splitter",
        "Name": "api-next",
        "Splits": [
            {"Weight": 50, "Service": "api", "ServiceSubset": "v2"},
            {"Weight": 50, "Service": "api-canary"},
        ],
    },
    {
        "Kind": "service-splitter",
        "Name": "api",
        "Splits": [
            {"Weight": 80, "ServiceSubset": "v1"},
            {"Weight": 20, "Service": "api-next"},
        ],
    },
    {
        "Kind": "service-router",
        "Name": "api",
        "Routes": [
            {
                "Match": {"HTTP": {"PathPrefix": "/admin"}},
                "Destination": {"Service": "api-admin", "RequestTimeout": "2s"},
            }
        ],
    },
]


def target(service: str, subset: str = "", dc: str = "dc1") -> str:
    return f"{subset + '.' if subset else ''}{service}.default.default.{dc}"


V1, V2 = target("api", "v1"), target("api", "v2")
CANARY, ADMIN, BACKUP = target("api-canary"), target("api-admin"), target("api-backup")

# What every user of the compiler must agree on: route -> [(target, weight)].
ROUTES: list[tuple[str, list[tuple[str, float]]]] = [
    ("/admin", [(ADMIN, 100.0)]),
    ("/", [(V1, 80.0), (V2, 10.0), (CANARY, 10.0)]),
]
TARGETS = {V1, V2, CANARY, ADMIN, BACKUP}
NODES = {
    "router:api.default.default",
    "splitter:api.default.default",
    f"resolver:{V1}",
    f"resolver:{V2}",
    f"resolver:{CANARY}",
    f"resolver:{ADMIN}",
}


def sni(target_id: str, trust_domain: str) -> str:
    """A CE target's SNI/cluster name from its ID (drop the partition)."""
    parts = target_id.split(".")
    parts.pop(-2)  # partition
    return ".".join(parts) + f".internal.{trust_domain}"


def routes_of(chain: dict[str, Any]) -> list[tuple[str, list[tuple[str, float]]]]:
    """route prefix -> flattened (target, weight), read from an API-shaped chain."""
    nodes = chain["Nodes"]

    def weights(key: str) -> list[tuple[str, float]]:
        node = nodes[key]
        if node["Type"] == "resolver":
            return [(node["Resolver"]["Target"], 100.0)]
        out: list[tuple[str, float]] = []
        for split in node["Splits"]:
            out.extend((t, float(split["Weight"])) for t, _ in weights(split["NextNode"]))
        return out

    start = nodes[chain["StartNode"]]
    return [
        (r["Definition"]["Match"]["HTTP"]["PathPrefix"], weights(r["NextNode"]))
        for r in start["Routes"]
    ]
