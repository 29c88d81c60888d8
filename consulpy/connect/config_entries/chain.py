"""The one discovery-chain compiler: routers, splitters and resolvers of a service turned into
Consul's compiled chain (nodes and targets).

Three users share it so that they can never disagree: config-entry validation (a write that
would leave a chain uncompilable is refused, with Consul's texts), the
`/v1/discovery-chain/<service>` read, and the agent's proxy configuration (which hands the
compiled chain to `consulpy.xds` to render routes and clusters).

    chain = compile_chain("web", lookup, datacenter="dc1", trust_domain=td)
    chain.to_api()            # the `Chain` object of the HTTP API

Node names and target IDs follow Consul's (`router:web.default.default`,
`resolver:v1.web.default.default.dc1`) so the messages and the API output match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consulpy.connect.config_entries.kinds import (
    DEFAULT_NAMESPACE,
    DEFAULT_PROTOCOL,
    PROXY_DEFAULTS,
    SERVICE_DEFAULTS,
    SERVICE_RESOLVER,
    SERVICE_ROUTER,
    SERVICE_SPLITTER,
    WILDCARD,
    GraphError,
    ListEntries,
    Lookup,
    is_http_like,
)
from consulpy.connect.config_entries.validate import scale_weight
from consulpy.util.durations import DurationError, duration_from_json, format_duration_ns
from consulpy.util.goquote import go_quote

DEFAULT_PARTITION = "default"
DEFAULT_CONNECT_TIMEOUT_NS = 5_000_000_000
ROUTER, SPLITTER, RESOLVER = "router", "splitter", "resolver"
MESH_GATEWAY_MODES = ("", "none", "local", "remote")
# Consul validates proposed writes against a placeholder context; so do we.
VALIDATE_DATACENTER = "dc1"
VALIDATE_TRUST_DOMAIN = "11111111-2222-3333-4444-555555555555.consul"
_HASH_POLICIES = frozenset({"ring_hash", "maglev"})
# Resolver fields whose presence makes a resolver "not default" (Consul's IsDefault).
_RESOLVER_SHAPING = (
    "DefaultSubset",
    "Subsets",
    "Redirect",
    "Failover",
    "ConnectTimeout",
    "RequestTimeout",
    "LoadBalancer",
)


@dataclass(frozen=True, slots=True)
class Overrides:
    """The compile-time overrides of `POST /v1/discovery-chain` and of a proxy upstream's own
    config (`protocol`, `connect_timeout_ms`, `MeshGateway`). Empty values mean "none"."""

    protocol: str = ""
    connect_timeout_ns: int = 0
    mesh_gateway_mode: str = ""


@dataclass(slots=True)
class ChainTarget:
    """Where traffic finally goes: a (service, subset, namespace, partition, datacenter)."""

    id: str
    service: str
    subset: str
    namespace: str
    partition: str
    datacenter: str
    peer: str = ""
    sni: str = ""
    name: str = ""
    mesh_gateway_mode: str = ""
    subset_def: dict[str, Any] = field(default_factory=dict)  # {"Filter", "OnlyPassing"}
    dialed_directly: bool = False
    connect_timeout_ns: int = 0
    external: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ID": self.id, "Service": self.service}
        if self.subset:
            out["ServiceSubset"] = self.subset
        out.update(Namespace=self.namespace, Partition=self.partition, Datacenter=self.datacenter)
        if self.peer:
            out["Peer"] = self.peer
        out["MeshGateway"] = {"Mode": self.mesh_gateway_mode} if self.mesh_gateway_mode else {}
        out["Subset"] = dict(self.subset_def)
        out["TransparentProxy"] = {"DialedDirectly": True} if self.dialed_directly else {}
        if self.connect_timeout_ns:
            out["ConnectTimeout"] = format_duration_ns(self.connect_timeout_ns)
        if self.external:
            out["External"] = True
        out["SNI"] = self.sni
        out["Name"] = self.name
        return out


@dataclass(slots=True)
class ChainRoute:
    definition: dict[str, Any]  # the service-router route, as stored
    next_node: str = ""


@dataclass(slots=True)
class ChainSplit:
    definition: dict[str, Any]  # the service-splitter split, as stored
    weight: float
    next_node: str = ""


@dataclass(slots=True)
class ChainResolver:
    default: bool
    target: str
    connect_timeout_ns: int
    request_timeout_ns: int = 0
    failover: list[str] | None = None
    failover_policy: dict[str, Any] | None = None


@dataclass(slots=True)
class ChainNode:
    type: str
    name: str
    routes: list[ChainRoute] = field(default_factory=list)
    splits: list[ChainSplit] = field(default_factory=list)
    resolver: ChainResolver | None = None
    load_balancer: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.type}:{self.name}"

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type, "Name": self.name}
        if self.type == ROUTER:
            out["Routes"] = [
                {"Definition": r.definition, "NextNode": r.next_node} for r in self.routes
            ]
        elif self.type == SPLITTER:
            out["Splits"] = [
                {
                    "Definition": s.definition,
                    "Weight": _api_weight(s.weight),
                    "NextNode": s.next_node,
                }
                for s in self.splits
            ]
        if self.resolver is not None:
            res = self.resolver
            body: dict[str, Any] = {}
            if res.default:
                body["Default"] = True
            body["ConnectTimeout"] = format_duration_ns(res.connect_timeout_ns)
            if res.request_timeout_ns:
                body["RequestTimeout"] = res.request_timeout_ns
            body["Target"] = res.target
            if res.failover is not None:
                failover: dict[str, Any] = {"Targets": list(res.failover)}
                if res.failover_policy:
                    failover["Policy"] = res.failover_policy
                body["Failover"] = failover
            out["Resolver"] = body
        if self.load_balancer:
            out["LoadBalancer"] = self.load_balancer
        return out


def _api_weight(weight: float) -> float | int:
    """Go prints a float32 split weight with the fewest digits (90, 33.33)."""
    rounded = round(weight, 2)
    return int(rounded) if rounded.is_integer() else rounded


@dataclass(slots=True)
class CompiledChain:
    service_name: str
    namespace: str
    partition: str
    datacenter: str
    protocol: str
    start_node: str
    nodes: dict[str, ChainNode]
    targets: dict[str, ChainTarget]
    default: bool = False
    customization_hash: str = ""
    service_meta: dict[str, str] = field(default_factory=dict)
    envoy_extensions: list[Any] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The `Chain` object of `GET /v1/discovery-chain/<service>`."""
        out: dict[str, Any] = {
            "ServiceName": self.service_name,
            "Namespace": self.namespace,
            "Partition": self.partition,
            "Datacenter": self.datacenter,
        }
        if self.customization_hash:
            out["CustomizationHash"] = self.customization_hash
        if self.default:
            out["Default"] = True
        out["Protocol"] = self.protocol
        if self.service_meta:
            out["ServiceMeta"] = dict(self.service_meta)
        if self.envoy_extensions:
            out["EnvoyExtensions"] = list(self.envoy_extensions)
        out["StartNode"] = self.start_node
        out["Nodes"] = {key: node.to_api() for key, node in self.nodes.items()}
        out["Targets"] = {tid: t.to_api() for tid, t in self.targets.items()}
        return out

    def resolver_targets(self, node_key: str) -> list[tuple[str, float]]:
        """(target ID, weight in percent) a router's next node sends to: one target at 100
        for a resolver, the flattened splits for a splitter."""
        node = self.nodes[node_key]
        if node.type == RESOLVER:
            assert node.resolver is not None
            return [(node.resolver.target, 100.0)]
        out: list[tuple[str, float]] = []
        for split in node.splits:
            out.extend((tid, split.weight) for tid, _ in self.resolver_targets(split.next_node))
        return out


def target_id(
    service: str,
    subset: str = "",
    namespace: str = DEFAULT_NAMESPACE,
    partition: str = DEFAULT_PARTITION,
    datacenter: str = "",
    peer: str = "",
) -> str:
    """Consul's chain target ID: the subset comes first; peers replace the datacenter."""
    if peer:
        base = f"{service}.{namespace}.{DEFAULT_PARTITION}.external.{peer}"
    else:
        base = f"{service}.{namespace}.{partition}.{datacenter}"
    return f"{subset}.{base}" if subset else base


def target_sni(
    service: str, subset: str, namespace: str, datacenter: str, trust_domain: str
) -> str:
    """`[<subset>.]<service>.<ns>.<dc>.internal.<trust-domain>` (default partition)."""
    prefix = f"{subset}." if subset else ""
    return f"{prefix}{service}.{namespace}.{datacenter}.internal.{trust_domain}"


def proxy_defaults_protocol(lookup: Lookup) -> str:
    """`Config.protocol` of proxy-defaults, decoded weakly as Consul's mapstructure does."""
    proxy = lookup(PROXY_DEFAULTS, "global")
    config = (proxy or {}).get("Config") or {}
    value = config.get("protocol", "")
    if isinstance(value, bool):
        value = "1" if value else "0"
    elif isinstance(value, int | float):
        value = str(value)
    return value.lower() if isinstance(value, str) else ""


def effective_protocol(service: str, lookup: Lookup) -> str:
    """The protocol a service's proxies use: service-defaults `Protocol` when set, else
    proxy-defaults `Config.protocol`, else "tcp" (Consul's resolved service config)."""
    defaults = lookup(SERVICE_DEFAULTS, service)
    if defaults and defaults.get("Protocol"):
        return str(defaults["Protocol"]).lower()
    return proxy_defaults_protocol(lookup) or DEFAULT_PROTOCOL


def _duration_ns(value: Any) -> int:
    if not value:
        return 0
    try:
        return duration_from_json(value)
    except (DurationError, ValueError):
        return 0


def _customization_hash(overrides: Mapping[str, Any]) -> str:
    text = json.dumps(dict(overrides), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _merge_headers(child: Mapping[str, Any] | None, parent: Mapping[str, Any] | None) -> Any:
    """A nested split keeps its own header changes and inherits the parent's others."""
    if not parent:
        return child
    if not child:
        return parent
    out: dict[str, Any] = {}
    for key in ("Add", "Set"):
        merged = {**(parent.get(key) or {}), **(child.get(key) or {})}
        if merged:
            out[key] = merged
    removed = list(dict.fromkeys([*(parent.get("Remove") or []), *(child.get("Remove") or [])]))
    if removed:
        out["Remove"] = removed
    return out


def _merge_split(inner: Mapping[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(inner)
    for key in ("RequestHeaders", "ResponseHeaders"):
        merged = _merge_headers(inner.get(key), parent.get(key))
        if merged:
            out[key] = merged
    return out


class _Compiler:
    """Single use: `compile()` once. Mirrors Consul's algorithm step by step (assemble the
    graph, refuse cycles, flatten nested splitters, drop unreachable nodes, check protocols)."""

    def __init__(
        self,
        service: str,
        lookup: Lookup,
        *,
        datacenter: str,
        trust_domain: str,
        overrides: Overrides,
    ) -> None:
        self.service = service
        self.lookup = lookup
        self.datacenter = datacenter
        self.trust_domain = trust_domain
        self.overrides = overrides
        self.disable_advanced = bool(overrides.protocol) and not is_http_like(overrides.protocol)
        self.protocol = ""
        self.advanced = False
        self.customized: dict[str, Any] = {}
        self.nodes: dict[str, ChainNode] = {}
        self.splitter_nodes: dict[str, ChainNode] = {}
        self.resolver_nodes: dict[str, ChainNode] = {}
        self.targets: dict[str, ChainTarget] = {}
        self.retained: set[str] = set()
        self.start = ""

    # ------------------------------------------------------------------ the steps
    def compile(self) -> CompiledChain:
        self._assemble()
        self._detect_cycles()
        self._flatten_splitters()
        self._remove_unused()
        targets = {tid: t for tid, t in self.targets.items() if tid in self.retained}
        if self.advanced and not is_http_like(self.protocol):
            raise GraphError(
                f"discovery chain {go_quote(self.service)} uses a protocol "
                f"{go_quote(self.protocol)} that does not permit advanced routing or splitting "
                "behavior"
            )
        if self.overrides.protocol and self.overrides.protocol != self.protocol:
            self.protocol = self.overrides.protocol
            self.customized["OverrideProtocol"] = self.overrides.protocol
        defaults = self.lookup(SERVICE_DEFAULTS, self.service) or {}
        proxy = self.lookup(PROXY_DEFAULTS, "global") or {}
        return CompiledChain(
            service_name=self.service,
            namespace=DEFAULT_NAMESPACE,
            partition=DEFAULT_PARTITION,
            datacenter=self.datacenter,
            protocol=self.protocol,
            start_node=self.start,
            nodes=self.nodes,
            targets=targets,
            default=self._is_default(targets),
            customization_hash=_customization_hash(self.customized) if self.customized else "",
            service_meta=dict(defaults.get("Meta") or {}),
            envoy_extensions=[
                *(proxy.get("EnvoyExtensions") or []),
                *(defaults.get("EnvoyExtensions") or []),
            ],
        )

    def _is_default(self, targets: Mapping[str, ChainTarget]) -> bool:
        node = self.nodes[self.start]
        if node.type != RESOLVER or node.resolver is None or not node.resolver.default:
            return False
        target = targets[node.resolver.target]
        return target.service == self.service

    def _assemble(self) -> None:
        router = self.lookup(SERVICE_ROUTER, self.service)
        if router is not None and self.disable_advanced:
            router = None
            self.customized["OverrideProtocol"] = self.overrides.protocol
        if router is None:
            self.start = self._splitter_or_resolver(self._target(self.service)).key
            return
        node = ChainNode(ROUTER, f"{self.service}.{DEFAULT_NAMESPACE}.{DEFAULT_PARTITION}")
        self.advanced = True
        self._record_service_protocol(self.service)
        for route in router.get("Routes") or []:
            compiled = ChainRoute(route)
            node.routes.append(compiled)
            dest = route.get("Destination") or {}
            service = dest.get("Service") or self.service
            subset = dest.get("ServiceSubset") or ""
            if subset:
                nxt = self._resolver(self._target(service, subset))
            else:
                nxt = self._splitter_or_resolver(self._target(service))
            compiled.next_node = nxt.key
        catch_all = {
            "Match": {"HTTP": {"PathPrefix": "/"}},
            "Destination": {
                "Service": self.service,
                "Namespace": DEFAULT_NAMESPACE,
                "Partition": DEFAULT_PARTITION,
            },
        }
        nxt = self._splitter_or_resolver(self._target(self.service))
        node.routes.append(ChainRoute(catch_all, nxt.key))
        self.start = node.key
        self._record(node)

    def _detect_cycles(self) -> None:
        todo = [self.start]
        visited: set[str] = set()
        chain: list[str] = []
        while todo:
            current = todo.pop()
            if current == "_popvisit":
                if chain:
                    visited.discard(chain.pop())
                continue
            chain.append(current)
            if current in visited:
                raise GraphError(f"detected circular reference: [{' -> '.join(chain)}]")
            visited.add(current)
            todo.append("_popvisit")
            node = self.nodes[current]
            todo.extend(r.next_node for r in node.routes)
            todo.extend(s.next_node for s in node.splits)

    def _flatten_splitters(self) -> None:
        """A split that lands on another splitter is replaced by that splitter's splits, with
        the weights multiplied (so Envoy needs one weighted_clusters per route)."""
        changed = True
        while changed:
            changed = False
            for node in self.nodes.values():
                if node.type != SPLITTER:
                    continue
                fixed: list[ChainSplit] = []
                for split in node.splits:
                    inner = self.nodes[split.next_node]
                    if inner.type != SPLITTER:
                        fixed.append(split)
                        continue
                    changed = True
                    for inner_split in inner.splits:
                        weight = scale_weight(split.weight * inner_split.weight / 100) / 100
                        fixed.append(
                            ChainSplit(
                                _merge_split(inner_split.definition, split.definition),
                                weight,
                                inner_split.next_node,
                            )
                        )
                node.splits = fixed

    def _remove_unused(self) -> None:
        todo, seen = [self.start], set()
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            node = self.nodes[key]
            todo.extend(r.next_node for r in node.routes)
            todo.extend(s.next_node for s in node.splits)
        self.nodes = {k: v for k, v in self.nodes.items() if k in seen}

    # ---------------------------------------------------------------- helpers
    def _record(self, node: ChainNode) -> None:
        if node.type == SPLITTER:
            self.splitter_nodes[node.name] = node
        elif node.type == RESOLVER:
            assert node.resolver is not None
            self.resolver_nodes[node.resolver.target] = node
        self.nodes[node.key] = node

    def _record_service_protocol(self, service: str) -> None:
        defaults = self.lookup(SERVICE_DEFAULTS, service)
        if defaults is not None:
            protocol = str(defaults.get("Protocol") or "")
        else:
            protocol = proxy_defaults_protocol(self.lookup)
        protocol = protocol.lower() or DEFAULT_PROTOCOL
        if not self.protocol:
            self.protocol = protocol
        elif self.protocol != protocol:
            raise GraphError(
                f"discovery chain {go_quote(self.service)} uses inconsistent protocols; service "
                f"{go_quote(service)} has {go_quote(protocol)} which is not "
                f"{go_quote(self.protocol)}"
            )

    def _target(
        self,
        service: str,
        subset: str = "",
        datacenter: str = "",
        peer: str = "",
        namespace: str = DEFAULT_NAMESPACE,
    ) -> ChainTarget:
        dc = "" if peer else (datacenter or self.datacenter)
        tid = target_id(service, subset, namespace, DEFAULT_PARTITION, dc, peer)
        known = self.targets.get(tid)
        if known is not None:
            return known
        target = ChainTarget(
            id=tid,
            service=service,
            subset=subset,
            namespace=namespace,
            partition=DEFAULT_PARTITION,
            datacenter=dc,
            peer=peer,
        )
        if not peer:
            target.sni = target.name = target_sni(service, subset, namespace, dc, self.trust_domain)
        self.targets[tid] = target
        return target

    def _rewrite(self, target: ChainTarget, opts: Mapping[str, Any]) -> ChainTarget:
        """Consul's rewriteTarget: naming another service resets the subset."""
        service, subset = target.service, target.subset
        if opts.get("Service") and opts["Service"] != service:
            service, subset = opts["Service"], ""
        if opts.get("ServiceSubset"):
            subset = opts["ServiceSubset"]
        namespace = target.namespace
        if opts.get("Namespace") or opts.get("Peer"):
            namespace = opts.get("Namespace") or DEFAULT_NAMESPACE
        datacenter = opts.get("Datacenter") or target.datacenter
        return self._target(service, subset, datacenter, opts.get("Peer") or "", namespace)

    def _splitter_or_resolver(self, target: ChainTarget) -> ChainNode:
        node = self._splitter(target.service)
        return node if node is not None else self._resolver(target)

    def _splitter(self, service: str) -> ChainNode | None:
        name = f"{service}.{DEFAULT_NAMESPACE}.{DEFAULT_PARTITION}"
        if name in self.splitter_nodes:
            return self.splitter_nodes[name]
        splitter = self.lookup(SERVICE_SPLITTER, service)
        if splitter is not None and self.disable_advanced:
            splitter = None
            self.customized["OverrideProtocol"] = self.overrides.protocol
        if splitter is None:
            return None
        node = ChainNode(SPLITTER, name)
        self._record(node)  # before recursing: a loop below finds this node and stops
        has_lb = False
        for split in splitter.get("Splits") or []:
            compiled = ChainSplit(split, float(split.get("Weight") or 0))
            node.splits.append(compiled)
            svc = split.get("Service") or service
            subset = split.get("ServiceSubset") or ""
            if svc != service and not subset:
                nested = self._splitter(svc)
                if nested is not None:
                    compiled.next_node = nested.key
                    continue
            resolver = self._resolver(self._target(svc, subset))
            compiled.next_node = resolver.key
            lb = resolver.load_balancer
            if not has_lb and lb and lb.get("Policy") in _HASH_POLICIES:
                node.load_balancer, has_lb = lb, True
        self.advanced = True
        return node

    def _resolver(self, target: ChainTarget, *, for_failover: bool = False) -> ChainNode:
        history: list[str] = []
        while True:
            if target.id in self.resolver_nodes:
                return self.resolver_nodes[target.id]
            if not target.peer:
                self._record_service_protocol(target.service)
            resolver = self.lookup(SERVICE_RESOLVER, target.service) or {}
            if target.id in history:
                history.append(target.id)
                raise GraphError(f"detected circular resolver redirect: [{' -> '.join(history)}]")
            history.append(target.id)
            redirect = resolver.get("Redirect")
            if redirect is not None:
                moved = self._rewrite(target, redirect)
                if moved.id != target.id:
                    target = moved
                    continue
            if not target.subset and resolver.get("DefaultSubset"):
                target = self._rewrite(target, {"ServiceSubset": resolver["DefaultSubset"]})
                continue
            break
        subsets = resolver.get("Subsets") or {}
        if target.subset and target.subset not in subsets:
            raise GraphError(
                f"service {go_quote(target.service)} does not have a subset named "
                f"{go_quote(target.subset)}"
            )
        timeout = _duration_ns(resolver.get("ConnectTimeout")) or DEFAULT_CONNECT_TIMEOUT_NS
        if self.overrides.connect_timeout_ns > 0 and timeout != self.overrides.connect_timeout_ns:
            timeout = self.overrides.connect_timeout_ns
            self.customized["OverrideConnectTimeout"] = timeout
        target.connect_timeout_ns = timeout
        node = ChainNode(
            RESOLVER,
            target.id,
            resolver=ChainResolver(
                default=not any(resolver.get(k) for k in _RESOLVER_SHAPING),
                target=target.id,
                connect_timeout_ns=timeout,
                request_timeout_ns=_duration_ns(resolver.get("RequestTimeout")),
            ),
            load_balancer=resolver.get("LoadBalancer") or None,
        )
        target.subset_def = dict(subsets.get(target.subset) or {})
        defaults = self.lookup(SERVICE_DEFAULTS, target.service) or {}
        if defaults.get("ExternalSNI"):
            target.sni, target.external = str(defaults["ExternalSNI"]), True
            for key, what in (
                ("Redirect", "redirects"),
                ("Subsets", "subsets"),
                ("Failover", "failover"),
            ):
                if resolver.get(key):
                    raise GraphError(
                        f"service {go_quote(target.service)} has an external SNI set; cannot "
                        f"define {what} for external services"
                    )
            target.mesh_gateway_mode = ""
        else:
            self._mesh_settings(target, defaults)
        self.retained.add(target.id)
        if for_failover:
            return node
        self._record(node)
        failover = resolver.get("Failover") or {}
        fo = failover.get(target.subset, failover.get(WILDCARD))
        if fo is None:
            return node
        if fo.get("Datacenters"):
            candidates = [
                self._rewrite(target, {**fo, "Datacenter": dc}) for dc in fo["Datacenters"]
            ]
        elif fo.get("Targets"):
            candidates = [self._rewrite(target, t) for t in fo["Targets"]]
        else:
            candidates = [self._rewrite(target, fo)]
        candidates = [c for c in candidates if c.id != target.id]  # no failover to yourself
        if candidates:
            assert node.resolver is not None
            node.resolver.failover = [
                self._resolver(c, for_failover=True).resolver.target  # type: ignore[union-attr]
                for c in candidates
            ]
            if fo.get("Policy"):
                node.resolver.failover_policy = fo["Policy"]
        return node

    def _mesh_settings(self, target: ChainTarget, defaults: Mapping[str, Any]) -> None:
        mode = str((defaults.get("MeshGateway") or {}).get("Mode") or "")
        dialed = bool((defaults.get("TransparentProxy") or {}).get("DialedDirectly"))
        proxy = self.lookup(PROXY_DEFAULTS, "global")
        if proxy is not None:
            mode = mode or str((proxy.get("MeshGateway") or {}).get("Mode") or "")
            dialed = dialed or bool((proxy.get("TransparentProxy") or {}).get("DialedDirectly"))
        wanted = self.overrides.mesh_gateway_mode
        if wanted and mode != wanted:
            mode = wanted
            self.customized["OverrideMeshGateway"] = wanted
        target.mesh_gateway_mode = mode
        target.dialed_directly = dialed


def compile_chain(
    service: str,
    lookup: Lookup,
    *,
    datacenter: str,
    trust_domain: str,
    overrides: Overrides | None = None,
) -> CompiledChain:
    """Compile `service`'s discovery chain from the entries `lookup(kind, name)` returns.

    Raises GraphError (Consul's texts) when the entries do not form a valid chain."""
    if not service:
        raise ValueError("a service name is required")
    return _Compiler(
        service,
        lookup,
        datacenter=datacenter,
        trust_domain=trust_domain,
        overrides=overrides or Overrides(),
    ).compile()


def lookup_in(entries: list[dict[str, Any]]) -> Lookup:
    """A `Lookup` over a list of stored entries (what a `ConfigEntry.List` read returns)."""
    index = {(e.get("Kind"), e.get("Name")): e for e in entries}

    def lookup(kind: str, name: str) -> dict[str, Any] | None:
        return index.get((kind, name))

    return lookup


# ------------------------------------------------------------------ write-time graph check
_CHAIN_KINDS = (SERVICE_ROUTER, SERVICE_SPLITTER, SERVICE_RESOLVER)


def related_services(entry: Mapping[str, Any]) -> list[str]:
    """The other services a router, splitter or resolver sends traffic to (sorted)."""
    kind, name = entry.get("Kind"), entry.get("Name", "")
    found: set[str] = set()
    if kind == SERVICE_ROUTER:
        for route in entry.get("Routes") or []:
            dest = route.get("Destination")
            if dest is not None:
                found.add(dest.get("Service") or name)
    elif kind == SERVICE_SPLITTER:
        for split in entry.get("Splits") or []:
            found.add(split.get("Service") or name)
    elif kind == SERVICE_RESOLVER:
        redirect = entry.get("Redirect")
        if redirect is not None:
            found.add(redirect.get("Service") or name)
        for fo in (entry.get("Failover") or {}).values():
            targets = fo.get("Targets") or []
            if not targets:
                found.add(fo.get("Service") or name)
            for target in targets:
                if not target.get("Peer"):
                    found.add(target.get("Service") or name)
    found.discard(name)
    return sorted(found)


def check_graph(
    entry: Mapping[str, Any],
    lookup: Lookup,
    *,
    deleting: bool = False,
    list_entries: ListEntries | None = None,
) -> None:
    """Consul's cross-entry rules for writing (or, with deleting=True, deleting) `entry`:
    every discovery chain the change touches must still compile. Raises GraphError.

    `lookup(kind, name)` returns the stored entry or None. `list_entries(kind)` returns every
    stored entry of a kind; it lets the check find the routers, splitters and resolvers that
    point at the changed service (and, for proxy-defaults, every chain). Without it only the
    chain named by the entry itself is checked."""
    kind, name = entry.get("Kind", ""), entry.get("Name", "")
    if kind == PROXY_DEFAULTS:
        name = "global"
    if kind not in (PROXY_DEFAULTS, SERVICE_DEFAULTS, *_CHAIN_KINDS):
        return

    def overridden(k: str, n: str) -> dict[str, Any] | None:
        if k == kind and n == name:
            return None if deleting else dict(entry)
        return lookup(k, n)

    chains: set[str] = set()
    if kind == PROXY_DEFAULTS:
        if list_entries is not None:
            for chain_kind in _CHAIN_KINDS:
                chains.update(e.get("Name", "") for e in list_entries(chain_kind))
    else:
        chains.add(name)
        if list_entries is not None:
            for chain_kind in _CHAIN_KINDS:
                for other in list_entries(chain_kind):
                    current = overridden(chain_kind, other.get("Name", ""))
                    if current is not None and name in related_services(current):
                        chains.add(current["Name"])
    for chain in sorted(chains):
        compile_chain(
            chain,
            overridden,
            datacenter=VALIDATE_DATACENTER,
            trust_domain=VALIDATE_TRUST_DOMAIN,
        )
