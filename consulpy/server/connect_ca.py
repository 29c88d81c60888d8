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
