"""The agent's xDS listeners: plaintext gRPC on ``ports.grpc`` and TLS on ``ports.grpc_tls``.

Both serve the same lookup (the agent's ``ProxyConfig.lookup``), so a sidecar sees the same
snapshots whichever port its bootstrap names. Only proxies registered on this agent may open a
stream (the node ID Envoy sends is the proxy's service ID). The composition root
(``consulpy.runtime``) builds and starts these; the agent only reads their ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import grpc

    from consulpy.config import AgentConfig
    from consulpy.xds.lookup import ProxyLookup
    from consulpy.xds.server import XDSServer

log = structlog.get_logger("consulpy.xds.mesh")

# The Envoy releases the mesh tests run against (reported in /v1/agent/self).
SUPPORTED_ENVOY = ["1.40.0"]


class MeshError(Exception):
    """The gRPC listeners cannot start as configured."""


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _tls_credentials(config: AgentConfig) -> grpc.ServerCredentials:
    import grpc

    tls = config.tls.grpc
    if not (tls.cert_file and tls.key_file):
        raise MeshError("ports.grpc_tls needs tls.grpc (or tls.defaults) cert_file and key_file")
    try:
        root = _read(tls.ca_file) if tls.ca_file else None
        pair = (_read(tls.key_file), _read(tls.cert_file))
    except OSError as exc:
        raise MeshError(f"gRPC TLS: {exc}") from exc
    if tls.verify_incoming and root is None:
        raise MeshError("tls.grpc.verify_incoming needs ca_file")
    return grpc.ssl_server_credentials(
        [pair], root_certificates=root, require_client_auth=bool(tls.verify_incoming)
    )


class Mesh:
    """Owns the xDS servers of one agent."""

    def __init__(self, config: AgentConfig, lookup: ProxyLookup) -> None:
        self.config = config
        self.lookup = lookup
        self.plaintext: XDSServer | None = None
        self.tls: XDSServer | None = None

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
            self.plaintext = XDSServer(lookup)
            host, port = plain[0]
            await self.plaintext.start(host, port)
        secure = config.grpc_tls_addresses()
        if secure:
            credentials = _tls_credentials(config)
            self.tls = XDSServer(lookup)
            host, port = secure[0]
            await self.tls.start(host, port, credentials)

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
