"""The leader's Connect CA duties: create the cluster's trust domain and root on first
leadership, rotate the root when the configuration asks for a new key (cross-signing so old
leaves keep verifying), and sign leaf CSRs. The CA's state (configuration, roots with their
signing keys, the serial counter) is written through Raft like everything else; key generation
and signing run in a worker thread because RSA work can take a while."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog

from consulpy.state import commands as C

if TYPE_CHECKING:
    from consulpy.server.server import Server

log = structlog.get_logger("consulpy.connect.ca")


def _unstamped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("CreateIndex", "ModifyIndex")} for r in rows]


class ConnectNotEnabled(Exception):
    def __str__(self) -> str:
        return "Connect must be enabled in order to use this endpoint"


class CAManager:
    def __init__(
        self,
        server: Server,
        *,
        enabled: bool,
        provider: str = "consul",
        config: dict[str, Any] | None = None,
    ) -> None:
        self.server = server
        self.enabled = enabled
        self.provider = provider or "consul"
        self.initial_config = dict(config or {})
        self._lock = asyncio.Lock()

    def _require(self) -> None:
        if not self.enabled:
            raise ConnectNotEnabled()

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: fn(*args, **kwargs))

    async def _serial(self) -> int:
        return int(await self.server.propose(C.ca_serial(ts=self.server.now())))

    # ------------------------------------------------------------- bootstrap
    async def bootstrap(self) -> None:
        """On leadership: make sure the cluster has a CA (once, ever)."""
        if not self.enabled:
            return
        from consulpy.connect import ca

        if not self.server.is_primary():
            return  # a secondary's CA comes from the primary (consulpy/server/replication.py)
        async with self._lock:
            if self.server.store.connect.ca_config is not None:
                return
            cluster_id = str(uuid.uuid4())
            normalized = ca.normalize_config(
                self.provider, self.initial_config, cluster_id=cluster_id
            )
            root = await self._run(
                ca.generate_root,
                cluster_id,
                normalized["Config"],
                serial=await self._serial(),
                now=time.time(),
            )
            config = dict(normalized, ClusterID=cluster_id, ForceWithoutCrossSigning=False)
            await self.server.propose(C.ca_set(config, [root], ts=self.server.now()))
            log.info("connect CA initialized", trust_domain=f"{cluster_id}.consul", root=root["ID"])

    # ------------------------------------------------------------ config/rotate
    async def set_config(self, body: dict[str, Any]) -> None:
        """Apply a new CA configuration; a new key means a new root, cross-signed by the old
        one (unless ForceWithoutCrossSigning) so existing leaves keep verifying."""
        self._require()
        from consulpy.connect import ca

        async with self._lock:
            connect = self.server.store.connect
            current = connect.ca_config
            if current is None:
                raise ca.CAError("the CA is not initialized yet")
            provider = body.get("Provider") or ""
            if not provider:
                raise ca.CAError("Provider is required")
            normalized = ca.normalize_config(
                provider,
                body.get("Config") or {},
                existing=current,
                cluster_id=current["ClusterID"],
            )
            force = bool(body.get("ForceWithoutCrossSigning"))
            config = dict(
                normalized, ClusterID=current["ClusterID"], ForceWithoutCrossSigning=force
            )
            roots = [dict(r) for r in connect.ca_roots]
            now = time.time()
            if ca.needs_new_root(current, config):
                new_root = await self._run(
                    ca.generate_root,
                    current["ClusterID"],
                    config["Config"],
                    serial=await self._serial(),
                    now=now,
                )
                roots = await self._run(
                    ca.rotate,
                    roots,
                    new_root,
                    serial=await self._serial(),
                    now=now,
                    cross_signed=not force,
                )
                log.info("connect CA root rotated", new_root=new_root["ID"])
            roots = ca.prune_roots(roots, leaf_ttl_s=ca.leaf_cert_ttl(config["Config"]), now=now)
            await self.server.propose(
                C.ca_set(config, roots, cas=current["ModifyIndex"], ts=self.server.now())
            )

    # ----------------------------------------------------------------- signing
    async def sign(self, csr_pem: str) -> dict[str, Any]:
        self._require()
        from consulpy.connect import ca, spiffe

        connect = self.server.store.connect
        config = connect.ca_config
        root = connect.active_root()
        if config is None or root is None:
            raise ca.CAError("the CA is not initialized yet")
        serial = await self._serial()
        leaf = await self._run(
            ca.sign_leaf,
            root,
            csr_pem,
            trust_domain=spiffe.trust_domain(config["ClusterID"]),
            datacenter=self.server.datacenter,
            leaf_ttl_s=ca.leaf_cert_ttl(config["Config"]),
            serial=serial,
            now=time.time(),
        )
        index = self.server.store.table_index("connect_ca_serial")
        leaf["CreateIndex"] = leaf["ModifyIndex"] = index
        leaf["SigningKeyID"] = root["SigningKeyID"]
        return leaf

    # --------------------------------------------------------------- secondaries
    async def sign_intermediate(self, csr_pem: str) -> str:
        """Primary: sign a secondary datacenter's intermediate with the active root."""
        self._require()
        from consulpy.connect import ca, spiffe

        connect = self.server.store.connect
        config = connect.ca_config
        root = connect.active_root()
        if config is None or root is None:
            raise ca.CAError("the CA is not initialized yet")
        if not self.server.is_primary():
            raise ca.CAError("only the primary datacenter signs intermediates")
        _, inner = ca._unwrap(config["Config"])
        ttl_s = ca.duration_from_json(inner.get("IntermediateCertTTL", "8760h")) / 1e9
        return str(
            await self._run(
                ca.sign_intermediate,
                root,
                csr_pem,
                trust_domain=spiffe.trust_domain(config["ClusterID"]),
                ttl_s=ttl_s,
                serial=await self._serial(),
                now=time.time(),
            )
        )

    async def adopt_primary_roots(self, roots: dict[str, Any], signer: Any) -> bool:
        """Secondary: make the primary's roots ours. A new active root (or none signed for
        us yet) means a new intermediate: our own key, its CSR signed by the primary through
        `signer(csr) -> PEM`. Returns whether anything was written."""
        if not self.enabled:
            return False
        from consulpy.connect import ca

        trust_domain = str(roots.get("TrustDomain") or "")
        primary_roots = [dict(r) for r in roots.get("Roots") or []]
        active = next((r for r in primary_roots if r.get("Active")), None)
        if not trust_domain or active is None:
            return False  # the primary has no CA yet
        async with self._lock:
            connect = self.server.store.connect
            mine = connect.active_root()
            cluster_id = trust_domain.split(".", 1)[0]
            current = connect.ca_config
            held = ca.intermediate_of(mine) if mine is not None else ""
            if (
                mine is not None
                and mine["ID"] == active["ID"]
                and held
                and not ca.intermediate_due(held, time.time())
            ):
                signed = mine
            else:
                key_pem, csr_pem = await self._run(
                    ca.make_intermediate_csr, trust_domain, self.server.datacenter
                )
                signed = ca.secondary_root(active, key_pem, await signer(csr_pem))
                log.info("connect CA intermediate signed by the primary", root=active["ID"])
            new_roots = [signed if r["ID"] == active["ID"] else r for r in primary_roots]
            if (
                current is not None
                and current.get("ClusterID") == cluster_id
                and _unstamped(connect.ca_roots) == _unstamped(new_roots)
            ):
                return False
            normalized = ca.normalize_config(
                self.provider, self.initial_config, cluster_id=cluster_id
            )
            config = dict(normalized, ClusterID=cluster_id, ForceWithoutCrossSigning=False)
            await self.server.propose(C.ca_set(config, new_roots, ts=self.server.now()))
            return True
