"""TLS contexts of the sidecar: the mutual-TLS identity on both sides of every mesh hop.

Certificates travel inline (no SDS), as Consul does: a new leaf or a new root is a new
snapshot, which changes the listener (downstream context) and every upstream cluster
(upstream context), and Envoy swaps them in without dropping established connections.
"""

from __future__ import annotations

from typing import Any

from consulpy.agent.proxysnapshot import ProxySnapshot, Target
from consulpy.xds.protoutil import DOWNSTREAM_TLS, UPSTREAM_TLS, extension

TRANSPORT_SOCKET = "tls"
HTTP1_ALPN = ("http/1.1",)
HTTP2_ALPN = ("h2", "http/1.1")


def _pem(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def roots_bundle(snapshot: ProxySnapshot) -> str:
    """Every trusted root (with its intermediates) as one PEM bundle."""
    return "".join(_pem(pem) for pem in snapshot.roots_pem)


def alpn_for(protocol: str) -> tuple[str, ...]:
    """ALPN offered on a mesh hop: http/1.1 for http, h2 first for http2 and grpc."""
    if protocol == "http":
        return HTTP1_ALPN
    if protocol in ("http2", "grpc"):
        return HTTP2_ALPN
    return ()


def _common(
    snapshot: ProxySnapshot, validation: dict[str, Any], alpn: tuple[str, ...]
) -> dict[str, Any]:
    common: dict[str, Any] = {
        "tls_params": {},
        "tls_certificates": [
            {
                "certificate_chain": {"inline_string": snapshot.leaf_cert_pem},
                "private_key": {"inline_string": snapshot.leaf_key_pem},
            }
        ],
        "validation_context": validation,
    }
    if alpn:
        common["alpn_protocols"] = list(alpn)
    return common


def downstream_socket(snapshot: ProxySnapshot) -> dict[str, Any]:
    """The public listener's transport socket: our leaf, every root, a client cert required.

    Who may connect is decided by RBAC afterwards; TLS only proves the peer holds a leaf
    signed by a trusted root.
    """
    validation = {"trusted_ca": {"inline_string": roots_bundle(snapshot)}}
    context = {
        "common_tls_context": _common(snapshot, validation, alpn_for(snapshot.protocol)),
        "require_client_certificate": True,
    }
    return extension(TRANSPORT_SOCKET, DOWNSTREAM_TLS, context)


def upstream_socket(snapshot: ProxySnapshot, target: Target, protocol: str) -> dict[str, Any]:
    """An upstream cluster's transport socket: our leaf as client certificate, every root,
    and the target's exact SPIFFE ID required in the server certificate's URI SAN."""
    validation = {
        "trusted_ca": {"inline_string": roots_bundle(snapshot)},
        "match_typed_subject_alt_names": [
            {"san_type": "URI", "matcher": {"exact": target.spiffe_id}}
        ],
    }
    context = {
        "common_tls_context": _common(snapshot, validation, alpn_for(protocol)),
        "sni": target.sni,
    }
    return extension(TRANSPORT_SOCKET, UPSTREAM_TLS, context)
