"""Proxy configuration of ingress and terminating gateways registered on this agent.

A gateway's Envoy is watched like a sidecar's (``consulpy.agent.proxycfg``): blocking queries
feed a state, and a snapshot is published once every input is known and only when it
changed. What differs is what is watched:

- ingress gateway: its ``ingress-gateway`` config entry (within all config entries, which
  the discovery chains need anyway), its gateway-services rows (the entry's services with a
  wildcard ``*`` expanded, as Consul's proxycfg reads them), its own leaf certificate, and
  the connect endpoints of every chain target of every exposed service;
- terminating gateway: its gateway-services rows (its ``terminating-gateway`` entry, a
  wildcard ``*`` expanded to every typical service), and per linked service the
  service's leaf certificate (the gateway answers in its name), the intentions whose
  destination it is, and its registered (non-connect) instances.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from consulpy.agent.proxycfg import ProxyWatch, compile_upstream
from consulpy.connect import config_entries as ce
from consulpy.util.tlsnames import CIPHER_SUITE_MIN_VERSIONS, ENVOY_CIPHER_SUITES

log = structlog.get_logger("consulpy.agent.proxycfg")

INGRESS = "ingress-gateway"
TERMINATING = "terminating-gateway"
GATEWAY_KINDS = (INGRESS, TERMINATING)


class GatewayWatch(ProxyWatch):
    """The watches and snapshots of one ingress or terminating gateway."""

    def __init__(self, manager: Any, proxy_id: str) -> None:
        super().__init__(manager, proxy_id)
        self.kind = str(self._service_row().get("Kind") or "")
        self.leaves: dict[str, dict[str, Any]] = {}
        self.linked_intentions: dict[str, list[dict[str, Any]]] | None = None
        self.external: dict[str, list[dict[str, Any]]] = {}
        self.linked_rows: list[dict[str, Any]] | None = None  # ingress: gateway-services
        self.tls_leaf: dict[str, Any] | None = None  # ingress: the TLS listeners' certificate

    def configured_destination(self) -> str:
        """A gateway proxies no one service: it is its own service."""
        return str(self._service_row().get("Service", ""))

    def start(self) -> None:
        self._spawn("roots", self._watch_roots())
        self._spawn("entries", self._watch_entries())
        if self.kind == INGRESS:
            self._spawn("leaf", self._watch_leaf(self.destination))
        self._spawn("gateway-services", self._watch_gateway_services())
        self._builder = asyncio.get_running_loop().create_task(self._build_loop())

    def _tls_names(self, entry: dict[str, Any], serving: bool) -> tuple[str, ...]:
        """The DNS SANs of the one certificate every TLS listener presents, as Consul asks
        for them: ``*.ingress.<domain>`` and ``*.ingress.<dc>.<domain>`` (also under the
        alternative domain) and every service's ``Hosts``; none without a TLS listener."""
        if not serving:
            return ()
        config = self.agent.config
        domains = [d.strip(".") for d in (config.domain, config.alt_domain) if d]
        dc = self.agent.datacenter
        names: set[str] = set()
        for domain in domains:
            names.add(f"*.ingress.{domain}")
            names.add(f"*.ingress.{dc}.{domain}")
        for listener in entry.get("Listeners") or []:
            for svc in listener.get("Services") or []:
                names.update(h for h in svc.get("Hosts") or () if h != "*")
        return tuple(sorted(names))

    def _ensure_tls_leaf(self, names: tuple[str, ...]) -> None:
        key = "tls-leaf:" + ",".join(names)
        if key in self.tasks:
            return
        for old in [k for k in self.tasks if k.startswith("tls-leaf:")]:
            self.tasks.pop(old).cancel()
        self.tls_leaf = None
        if names:
            self._spawn(key, self._watch_tls_leaf(names))

    async def _watch_tls_leaf(self, names: tuple[str, ...]) -> None:
        await self._watch_cert(self.destination, lambda c: setattr(self, "tls_leaf", c), names)

    async def _watch_gateway_services(self) -> None:
        def store(result: Any) -> None:
            self.linked_rows = list(result or [])

        await self._blocking("Catalog.GatewayServices", {"gateway": self.destination}, store)

    # -------------------------------------------------------- terminating watches
    async def _watch_leaf_of(self, service: str) -> None:
        await self._watch_cert(service, lambda c: self.leaves.__setitem__(service, c))

    async def _watch_external(self, service: str) -> None:
        def store(result: Any) -> None:
            self.external[service] = list(result or [])

        await self._blocking(
            "Health.ServiceNodes",
            {"service": service, "connect": False, "tags": [], "node_meta": [], "passing": False},
            store,
        )

    async def _watch_linked_intentions(self, names: list[str]) -> None:
        def store(result: Any) -> None:
            self.linked_intentions = {n: list((result or {}).get(n) or []) for n in names}

        await self._blocking("Intention.Match", {"by": "destination", "names": names}, store)

    def _retask(self, prefix: str, wanted: dict[str, Any]) -> None:
        """Keep exactly the tasks ``<prefix><key>`` of ``wanted`` (key -> coroutine factory)."""
        for key in [k for k in self.tasks if k.startswith(prefix)]:
            if key.removeprefix(prefix) not in wanted:
                self.tasks.pop(key).cancel()
        for key, factory in wanted.items():
            if prefix + key not in self.tasks:
                self._spawn(prefix + key, factory())

    def _ensure_linked(self, names: list[str]) -> None:
        self._retask("leaf:", {n: (lambda n=n: self._watch_leaf_of(n)) for n in names})
        self._retask("external:", {n: (lambda n=n: self._watch_external(n)) for n in names})
        for gone in set(self.leaves) - set(names):
            self.leaves.pop(gone, None)
        for gone in set(self.external) - set(names):
            self.external.pop(gone, None)
        key = ",".join(names)
        if f"intentions:{key}" not in self.tasks:
            for old in [k for k in self.tasks if k.startswith("intentions:")]:
                self.tasks.pop(old).cancel()
            self.linked_intentions = None
            if names:
                self._spawn(f"intentions:{key}", self._watch_linked_intentions(names))
            else:
                self.linked_intentions = {}

    # ------------------------------------------------------------------ build
    def _entry(self, kind: str) -> dict[str, Any] | None:
        name = self.destination
        for entry in self.state.entries or []:
            if entry.get("Kind") == kind and entry.get("Name") == name:
                return entry
        return None

    def _roots_pem(self) -> tuple[str, ...]:
        out: list[str] = []
        for root in (self.state.roots or {}).get("Roots") or []:
            out.append(root["RootCert"])
            out.extend(root.get("IntermediateCerts") or [])
        return tuple(out)

    def _build(self) -> Any:
        st = self.state
        if (
            not self._service_row()
            or st.roots is None
            or st.entries is None
            or not st.roots.get("TrustDomain")
        ):
            return None
        if self.kind == INGRESS:
            return self._build_ingress()
        return self._build_terminating()

    def _address(self) -> str:
        row = self._service_row()
        return str(row.get("Address") or "")

    def _build_ingress(self) -> Any:
        st = self.state
        if st.leaf is None or self.linked_rows is None:
            return None
        entry = self._entry(INGRESS) or {}
        dc = self.agent.datacenter
        td = st.roots["TrustDomain"]  # type: ignore[index]
        lookup = ce.lookup_in(st.entries or [])
        compiled: list[tuple[dict[str, Any], list[tuple[dict[str, Any], ce.CompiledChain]]]] = []
        wanted: set[str] = set()
        tls_by_port: dict[int, dict[str, Any]] = {}
        for listener in entry.get("Listeners") or []:
            try:
                tls = _listener_tls(entry, listener)
            except ValueError as exc:
                # Serving it in plaintext (or with other settings) would be worse than not
                # serving it.
                log.warning(
                    "ingress listener not served",
                    gateway=self.destination,
                    port=listener.get("Port"),
                    reason=str(exc),
                )
                continue
            if tls:
                tls_by_port[int(listener.get("Port") or 0)] = tls
        dns_names = self._tls_names(entry, bool(tls_by_port))
        self._ensure_tls_leaf(dns_names)
        if dns_names and self.tls_leaf is None:
            return None
        for listener in entry.get("Listeners") or []:
            if _served_tls(entry, listener) is None:
                continue  # not served (warned above)
            chains = []
            port = listener.get("Port") or 0
            # the gateway-services rows: the listener's services with "*" expanded
            rows = [r for r in self.linked_rows or [] if r.get("Port") == port]
            for row in rows:
                name = row["Service"]["Name"]
                svc = {"Name": name, "Hosts": row.get("Hosts") or []}
                svc["Settings"] = _service_settings(entry, listener, name)
                if listener.get("Protocol", "tcp") == "tcp" and (
                    svc["Settings"]["request_headers"] or svc["Settings"]["response_headers"]
                ):
                    log.warning(
                        "header modifiers do not apply to a tcp listener",
                        gateway=self.destination,
                        port=port,
                    )
                upstream = {
                    "DestinationName": name,
                    "Config": {"protocol": listener.get("Protocol") or "tcp"},
                }
                try:
                    chain = compile_upstream(upstream, lookup, dc, td)
                except (ce.GraphError, ValueError) as exc:
                    log.warning(
                        "ingress service chain does not compile; keeping the last snapshot",
                        gateway=self.destination,
                        service=name,
                        error=str(exc),
                    )
                    return None
                chains.append((svc, chain))
                wanted.update(
                    t.service for t in chain.targets.values() if not t.peer and t.datacenter == dc
                )
            compiled.append((listener, chains))
        self._ensure_endpoint_watches(wanted)
        if any(service not in st.endpoints for service in wanted):
            return None
        from consulpy.agent.gatewaysnapshot import (
            IngressListener,
            IngressService,
            IngressSnapshot,
            IngressTLS,
        )

        listeners = []
        for listener, chains in compiled:
            services = tuple(
                IngressService(
                    name=svc["Name"],
                    hosts=tuple(svc.get("Hosts") or ()),
                    upstream=self._render({"DestinationName": svc["Name"]}, chain, td),
                    **svc["Settings"],
                )
                for svc, chain in chains
            )
            if services:
                port = int(listener.get("Port") or 0)
                tls = tls_by_port.get(port)
                leaf = self.tls_leaf or {}
                listeners.append(
                    IngressListener(
                        port=port,
                        protocol=str(listener.get("Protocol") or "tcp"),
                        services=services,
                        tls=None
                        if tls is None
                        else IngressTLS(
                            cert_pem=leaf["CertPEM"],
                            key_pem=leaf["PrivateKeyPEM"],
                            min_version=tls["min"],
                            max_version=tls["max"],
                            cipher_suites=tls["ciphers"],
                        ),
                    )
                )
        return IngressSnapshot(
            proxy_id=self.proxy_id,
            service=self.destination,
            datacenter=dc,
            trust_domain=td,
            address=self._address(),
            roots_pem=self._roots_pem(),
            leaf_cert_pem=st.leaf["CertPEM"],
            leaf_key_pem=st.leaf["PrivateKeyPEM"],
            listeners=tuple(listeners),
        )

    def _build_terminating(self) -> Any:
        if self.linked_rows is None:
            return None
        # the gateway-services rows: the entry's services, a wildcard "*" expanded to every
        # typical service (with the wildcard's TLS settings unless a service has its own)
        linked = [
            {**r, "Name": r["Service"]["Name"]}
            for r in self.linked_rows
            if r.get("GatewayKind") == TERMINATING
        ]
        names = sorted({s["Name"] for s in linked})
        self._ensure_linked(names)
        if (
            self.linked_intentions is None
            or any(n not in self.leaves for n in names)
            or any(n not in self.external for n in names)
        ):
            return None
        from consulpy.agent.gatewaysnapshot import LinkedService, TerminatingSnapshot

        st = self.state
        lookup = ce.lookup_in(st.entries or [])
        intentions = self.linked_intentions
        services = []
        for svc in sorted(linked, key=lambda s: s["Name"]):
            name = svc["Name"]
            leaf = self.leaves[name]
            services.append(
                LinkedService(
                    name=name,
                    protocol=self._central_protocol(name, lookup).lower(),
                    leaf_cert_pem=leaf["CertPEM"],
                    leaf_key_pem=leaf["PrivateKeyPEM"],
                    intentions=tuple(intentions.get(name) or ()),
                    endpoints=self._external_endpoints(name),
                    ca_file=str(svc.get("CAFile") or ""),
                    cert_file=str(svc.get("CertFile") or ""),
                    key_file=str(svc.get("KeyFile") or ""),
                    sni=str(svc.get("SNI") or ""),
                )
            )
        row = self._service_row()
        return TerminatingSnapshot(
            proxy_id=self.proxy_id,
            service=self.destination,
            datacenter=self.agent.datacenter,
            trust_domain=st.roots["TrustDomain"],  # type: ignore[index]
            address=self._address(),
            port=int(row.get("Port") or 0),
            roots_pem=self._roots_pem(),
            default_allow=self.agent.config.acl.intention_default_allow,
            services=tuple(services),
        )

    def _external_endpoints(self, service: str) -> tuple[Any, ...]:
        """The linked service's registered instances (critical ones marked unhealthy)."""
        from consulpy.agent.proxysnapshot import Endpoint

        out = []
        for entry in self.external.get(service, ()):
            svc, node = entry["Service"], entry["Node"]
            statuses = [c["Status"] for c in entry["Checks"]]
            out.append(
                Endpoint(
                    address=svc.get("Address") or node["Address"],
                    port=int(svc.get("Port") or 0),
                    healthy="critical" not in statuses,
                )
            )
        out.sort(key=lambda e: (e.address, e.port))
        return tuple(out)


def _service_settings(entry: dict[str, Any], listener: dict[str, Any], name: str) -> dict[str, Any]:
    """IngressService fields from the entry: the service's own header modifiers, limits and
    passive health check, each limit falling back to the entry's ``Defaults`` (a wildcard's
    services take the ``*`` item's)."""
    own: dict[str, Any] = {}
    for svc in listener.get("Services") or []:
        if svc.get("Name") == name:
            own = svc
            break
    else:
        for svc in listener.get("Services") or []:
            if svc.get("Name") == "*":
                own = svc
    defaults = entry.get("Defaults") or {}

    def limit(key: str) -> int:
        return int(own.get(key) or defaults.get(key) or 0)

    phc = own.get("PassiveHealthCheck") or defaults.get("PassiveHealthCheck") or {}
    return {
        "request_headers": tuple(sorted((own.get("RequestHeaders") or {}).items())),
        "response_headers": tuple(sorted((own.get("ResponseHeaders") or {}).items())),
        "limits": (
            limit("MaxConnections"),
            limit("MaxPendingRequests"),
            limit("MaxConcurrentRequests"),
        ),
        "passive_health_check": tuple(sorted(phc.items())),
    }


def _listener_tls(entry: dict[str, Any], listener: dict[str, Any]) -> dict[str, Any]:
    """A listener's TLS: ``{}`` for plaintext, else ``{"min", "max", "ciphers"}`` when the
    entry or the listener enables it: TLS versions ("" for Envoy's default) and Envoy's
    cipher suite names, each the listener's when it sets one, else the entry's (Consul's
    merge). Raises ValueError for what cannot be served: certificates over SDS, cipher
    suites under a TLS 1.3 minimum."""
    outer, inner = entry.get("TLS") or {}, listener.get("TLS") or {}
    sds = [(t.get("SDS") or {}).get("ClusterName") for t in (outer, inner)]
    sds += [
        ((svc.get("TLS") or {}).get("SDS") or {}).get("ClusterName")
        for svc in listener.get("Services") or []
    ]
    if any(sds):
        raise ValueError("certificates over SDS are not supported")
    if not (outer.get("Enabled") or inner.get("Enabled")):
        return {}
    low = str(inner.get("TLSMinVersion") or outer.get("TLSMinVersion") or "")
    suites = list(inner.get("CipherSuites") or outer.get("CipherSuites") or ())
    if suites and low not in CIPHER_SUITE_MIN_VERSIONS:
        raise ValueError(
            "configuring CipherSuites is only applicable to connections negotiated with TLS "
            f"1.2 or earlier, TLSMinVersion is set to {low} in config"
        )
    unknown = [s for s in suites if s not in ENVOY_CIPHER_SUITES]
    if unknown:
        raise ValueError(f"no matching Envoy TLS cipher suite found for {','.join(unknown)}")
    return {
        "min": low,
        "max": str(inner.get("TLSMaxVersion") or outer.get("TLSMaxVersion") or ""),
        "ciphers": tuple(ENVOY_CIPHER_SUITES[s] for s in suites),
    }


def _served_tls(entry: dict[str, Any], listener: dict[str, Any]) -> dict[str, Any] | None:
    """``_listener_tls``, None for a listener that is not served."""
    try:
        return _listener_tls(entry, listener)
    except ValueError:
        return None
