"""The agent's leaf certificate cache (/v1/agent/connect/ca/leaf/<service>).

For each service asked about, the agent holds an EC P-256 key and a certificate signed by the
cluster's CA (the key never leaves the agent: only a CSR goes to the servers). A certificate is
renewed at a random point between 60 % and 90 % of its lifetime, and after the active root
changes (with a random delay of up to 30 s, so a fleet does not stampede the leader). Blocking
readers waiting on a certificate's index wake when it is replaced.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from consulpy.server.endpoints.connect_ca import CASign
from consulpy.server.query import STALE, QueryMeta, QueryOptions
from consulpy.util.aio import wait_event

log = structlog.get_logger("consulpy.agent.leafcert")

RENEW_MIN, RENEW_MAX = 0.6, 0.9
ROOT_CHANGE_JITTER = 30.0


@dataclass
class _Leaf:
    service: str
    cert: dict[str, Any] | None = None
    signing_key_id: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The token signing goes out with: the last caller's (None: the agent's own token).
    token: str | None = None
    # DNS SANs besides the SPIFFE ID (an ingress gateway's TLS listeners): a distinct leaf.
    dns_names: tuple[str, ...] = ()


class CAClient(Protocol):
    """The agent's delegate as the leaf cache uses it: CA roots, and signing on the leader."""

    async def read(
        self, name: str, args: dict[str, Any], opts: QueryOptions
    ) -> tuple[QueryMeta, Any]: ...

    async def apply(self, name: str, payload: Any, token: str | None = None) -> Any: ...


class LeafHost(Protocol):
    """What the leaf cache needs of the agent (the datacenter goes into the SPIFFE ID)."""

    datacenter: str
    delegate: CAClient


class LeafCerts:
    def __init__(self, agent: LeafHost, *, rng: random.Random | None = None) -> None:
        self.agent = agent
        self.rng = rng or random.Random()
        self.root_change_jitter = ROOT_CHANGE_JITTER
        self._leaves: dict[str, _Leaf] = {}
        self._roots_task: asyncio.Task[None] | None = None
        self._active_signing_key = ""

    async def stop(self) -> None:
        if self._roots_task is not None:
            self._roots_task.cancel()
            self._roots_task = None
        for leaf in self._leaves.values():
            if leaf.timer is not None:
                leaf.timer.cancel()

    # ------------------------------------------------------------------ read
    async def get(
        self,
        service: str,
        min_index: int = 0,
        wait: float = 0.0,
        token: str | None = None,
        dns_names: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The current certificate; with `min_index` equal to its index, wait (up to `wait`)
        for a newer one, as a blocking query does. `token` is the caller's (already allowed
        service:write here): signing and renewals go out with it, as in Consul; None signs
        with the agent's token. `dns_names` asks for a leaf that also carries them as DNS
        SANs (cached apart from the service's plain leaf)."""
        key = service if not dns_names else f"{service}\x00{','.join(dns_names)}"
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = _Leaf(service, dns_names=tuple(dns_names))
        if token is not None:
            leaf.token = token
        self._ensure_roots_watch()
        await self._ensure_fresh(leaf)
        assert leaf.cert is not None
        if min_index and leaf.cert["ModifyIndex"] <= min_index and wait > 0:
            leaf.changed.clear()
            await wait_event(leaf.changed, wait)
            await self._ensure_fresh(leaf)
        return leaf.cert

    async def _ensure_fresh(self, leaf: _Leaf) -> None:
        async with leaf.lock:
            cert = leaf.cert
            expired = cert is not None and cert["_not_after"] <= time.time()
            root_changed = bool(self._active_signing_key) and (
                leaf.signing_key_id != self._active_signing_key
            )
            if cert is None or expired or (root_changed and leaf.timer is None):
                await self._sign(leaf)

    # --------------------------------------------------------------- signing
    async def _sign(self, leaf: _Leaf) -> None:
        from consulpy.connect import ca, spiffe

        agent = self.agent
        _, roots = await agent.delegate.read("ConnectCA.Roots", {}, QueryOptions())
        trust_domain = roots.get("TrustDomain") if roots else ""
        if not trust_domain:
            from consulpy.server.errors import CommandError

            raise CommandError("Connect CA not initialized yet")
        uri = spiffe.service_uri(trust_domain, agent.datacenter, leaf.service)
        loop = asyncio.get_running_loop()
        make = functools.partial(ca.make_csr, uri, dns_names=leaf.dns_names)
        key_pem, csr_pem = await loop.run_in_executor(None, make)
        signed = await agent.delegate.apply("ConnectCA.Sign", CASign(csr_pem), token=leaf.token)
        cert = {
            "SerialNumber": signed["SerialNumber"],
            "CertPEM": signed["CertPEM"],
            "PrivateKeyPEM": key_pem,
            "Service": leaf.service,
            "ServiceURI": uri,
            "ValidAfter": signed["ValidAfter"],
            "ValidBefore": signed["ValidBefore"],
            "CreateIndex": signed["CreateIndex"],
            "ModifyIndex": signed["ModifyIndex"],
            "_not_before": _epoch(signed["ValidAfter"]),
            "_not_after": _epoch(signed["ValidBefore"]),
        }
        leaf.cert = cert
        leaf.signing_key_id = signed.get("SigningKeyID", "")
        self._schedule_renewal(leaf)
        leaf.changed.set()
        log.info("leaf certificate issued", service=leaf.service, serial=cert["SerialNumber"])

    def _schedule_renewal(self, leaf: _Leaf, delay: float | None = None) -> None:
        if leaf.timer is not None:
            leaf.timer.cancel()
        cert = leaf.cert
        assert cert is not None
        if delay is None:
            lifetime = cert["_not_after"] - cert["_not_before"]
            at = cert["_not_before"] + lifetime * self.rng.uniform(RENEW_MIN, RENEW_MAX)
            delay = max(0.0, at - time.time())
        loop = asyncio.get_running_loop()
        leaf.timer = loop.call_later(delay, self._renew_soon, leaf)

    def _renew_soon(self, leaf: _Leaf) -> None:
        leaf.timer = None

        async def renew() -> None:
            try:
                async with leaf.lock:
                    await self._sign(leaf)
            except Exception as exc:  # keep the old certificate; try again shortly
                log.warning("leaf renewal failed; retrying", service=leaf.service, error=str(exc))
                self._schedule_renewal(leaf, delay=5.0)

        asyncio.get_running_loop().create_task(renew())

    # ------------------------------------------------------------ root changes
    def _ensure_roots_watch(self) -> None:
        if self._roots_task is None or self._roots_task.done():
            self._roots_task = asyncio.get_running_loop().create_task(self._watch_roots())

    async def _watch_roots(self) -> None:
        index = 0
        while True:
            try:
                meta, roots = await self.agent.delegate.read(
                    "ConnectCA.Roots", {}, QueryOptions(index=index, wait=300.0, consistency=STALE)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("roots watch failed; retrying", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            index = meta.index
            active = next((r for r in (roots or {}).get("Roots") or [] if r.get("Active")), None)
            signing_key = active["SigningKeyID"] if active else ""
            if signing_key and signing_key != self._active_signing_key:
                first = not self._active_signing_key
                self._active_signing_key = signing_key
                if not first:
                    for leaf in self._leaves.values():
                        if leaf.cert is not None and leaf.signing_key_id != signing_key:
                            jitter = self.rng.uniform(0, self.root_change_jitter)
                            self._schedule_renewal(leaf, delay=jitter)


def _epoch(rfc3339: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def public_view(cert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cert.items() if not k.startswith("_")}
