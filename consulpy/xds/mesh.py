"""The agent's xDS listeners: plaintext gRPC on ``ports.grpc`` and TLS on ``ports.grpc_tls``.

Both serve the same lookup (the agent's ``ProxyConfig.lookup``), so a sidecar sees the same
snapshots whichever port its bootstrap names. Only proxies registered on this agent may open a
stream (the node ID Envoy sends is the proxy's service ID). The composition root
(``consulpy.runtime``) builds and starts these; the agent only reads their ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from consulpy.util.tlsnames import ca_bundle
from consulpy.xds.ratelimit import UpdateLimiter

if TYPE_CHECKING:
    from consulpy.agent.proxylookup import ProxyLookup
    from consulpy.config import AgentConfig
    from consulpy.xds.server import XDSServer

log = structlog.get_logger("consulpy.xds.mesh")

# The Envoy releases the mesh tests run against (reported in /v1/agent/self).
SUPPORTED_ENVOY = ["1.40.0"]


class MeshError(Exception):
    """The gRPC listeners cannot start as configured."""


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _tls_material(tls: Any) -> tuple[bytes, bytes, bytes | None]:
    """(key, cert chain, CA bundle or None) of `tls.grpc`, read from disk."""
    if not (tls.cert_file and tls.key_file):
        raise MeshError("ports.grpc_tls needs tls.grpc (or tls.defaults) cert_file and key_file")
    if tls.verify_incoming and not (tls.ca_file or tls.ca_path):
        raise MeshError("tls.grpc.verify_incoming needs ca_file or ca_path")
    try:
        bundle = ca_bundle(tls.ca_file, tls.ca_path)
        root = bundle.encode() if bundle else None
        return _read(tls.key_file), _read(tls.cert_file), root
    except OSError as exc:
        raise MeshError(f"gRPC TLS: {exc}") from exc


def _check_supported(tls: Any) -> None:
    """gRPC's TLS (its own BoringSSL) serves TLS 1.2 and 1.3 with its own suites; what it
    cannot honour is refused rather than ignored."""
    if (tls.tls_min_version or "").lower() in ("tlsv1_3", "tls13"):
        raise MeshError("tls.grpc: tls_min_version TLSv1_3 is not supported on the gRPC port")
    if tls.tls_cipher_suites:
        raise MeshError("tls.grpc: tls_cipher_suites is not supported on the gRPC port")


class _ReloadableCredentials:
    """gRPC server credentials whose certificate configuration can be replaced: gRPC asks
    the fetcher at each new handshake, so new connections get the new material while open
    streams keep theirs."""

    def __init__(self, tls: Any) -> None:
        import grpc

        _check_supported(tls)
        key, chain, root = _tls_material(tls)
        self._pending: Any = None
        initial = grpc.ssl_server_certificate_configuration([(key, chain)], root)
        self.credentials = grpc.dynamic_ssl_server_credentials(
            initial, self._fetch, require_client_authentication=bool(tls.verify_incoming)
        )

    def _fetch(self) -> Any:
        pending, self._pending = self._pending, None
        return pending

    def reload(self, tls: Any) -> None:
        import grpc

        key, chain, root = _tls_material(tls)
        self._pending = grpc.ssl_server_certificate_configuration([(key, chain)], root)


class Mesh:
    """Owns the xDS servers of one agent."""

    def __init__(self, config: AgentConfig, lookup: ProxyLookup) -> None:
        self.config = config
        self.lookup = lookup
        self.plaintext: XDSServer | None = None
        self.tls: XDSServer | None = None
        self._credentials: _ReloadableCredentials | None = None
        self.update_limiter = UpdateLimiter(config.xds_update_max_per_second)

    @property
    def plaintext_port(self) -> int:
        return self.plaintext.port if self.plaintext is not None else -1

    @property
    def tls_port(self) -> int:
        return self.tls.port if self.tls is not None else -1

    async def start(self) -> None:
        config = self.config
        if not config.grpc_addresses() and not config.grpc_tls_addresses():
            return
        from consulpy.xds.server import XDSServer  # gRPC and the Envoy protos: only when used

        lookup = self.lookup
        plain = config.grpc_addresses()
        if plain:
            self.plaintext = XDSServer(lookup, update_limiter=self.update_limiter)
            host, port = plain[0]
            await self.plaintext.start(host, port)
        secure = config.grpc_tls_addresses()
        if secure:
            self._credentials = _ReloadableCredentials(config.tls.grpc)
            self.tls = XDSServer(lookup, update_limiter=self.update_limiter)
            host, port = secure[0]
            await self.tls.start(host, port, self._credentials.credentials)

    def check_tls(self, config: AgentConfig) -> None:
        """Raise MeshError if `config`'s gRPC TLS files cannot be read (nothing changes)."""
        if self._credentials is not None:
            _tls_material(config.tls.grpc)

    def reload_tls(self, config: AgentConfig) -> None:
        """New certificates and CA for new gRPC TLS connections (see _ReloadableCredentials)."""
        if self._credentials is not None:
            self._credentials.reload(config.tls.grpc)

    async def stop(self) -> None:
        for server in (self.plaintext, self.tls):
            if server is not None:
                await server.stop()
        self.plaintext = self.tls = None

    def self_view(self) -> dict[str, Any] | None:
        """The ``xDS`` block of /v1/agent/self (None when no gRPC port is open)."""
        if self.plaintext is None and self.tls is None:
            return None
        main = self.tls_port if self.tls is not None else self.plaintext_port
        return {
            "SupportedProxies": {"envoy": list(SUPPORTED_ENVOY)},
            "Port": main,
            "Ports": {"Plaintext": self.plaintext_port, "TLS": self.tls_port},
        }
