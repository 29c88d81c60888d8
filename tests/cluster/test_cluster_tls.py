"""Mutual TLS on the server port: agents talk, strangers are turned away, service goes on."""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster
from tests.tlsutil import CA

pytestmark = pytest.mark.slow


def closed_by_peer(sock: socket.socket) -> bool:
    """The peer hung up (EOF or reset) rather than answering."""
    sock.settimeout(10)
    try:
        return sock.recv(100) == b""
    except (ConnectionError, ssl.SSLError):
        return True


def tls_hcl(ca: Path, cert: Path, key: Path) -> str:
    return (
        f'-hcl=tls {{ defaults {{ ca_file = "{ca}" cert_file = "{cert}" '
        f'key_file = "{key}" verify_incoming = true verify_outgoing = true }} '
        f"internal_rpc {{ verify_server_hostname = true }} }}"
    )


def test_mutual_tls_on_the_server_port(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    server_cert, server_key = ca.issue("server", ["server.dc1.consul"])
    client_cert, client_key = ca.issue("client", ["client.dc1.consul"])
    cluster = Cluster(tmp_path / "c", servers=1, clients=1)
    cluster.servers[0].extra = [tls_hcl(ca.path, server_cert, server_key)]
    cluster.clients[0].extra = [tls_hcl(ca.path, client_cert, client_key)]
    try:
        cluster.start_all()
        server, client = cluster.servers[0], cluster.clients[0]
        # the client agent forwards over TLS
        assert client.json("PUT", "/v1/kv/secure", b"yes") is True
        assert server.json("GET", "/v1/kv/secure")[0]["Value"] == "eWVz"

        # plain TCP on the port: the TLS listener drops it
        with socket.create_connection(("127.0.0.1", server.rpc), timeout=5) as plain:
            plain.sendall(b"\x00" + struct.pack(">I", 5) + b"hello")
            assert closed_by_peer(plain)
        # TLS with a certificate from another CA: the handshake is refused
        (tmp_path / "other").mkdir()
        stranger = CA(tmp_path / "other", "stranger-ca")
        bad_cert, bad_key = stranger.issue("intruder", ["server.dc1.consul"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(bad_cert, bad_key)
        with socket.create_connection(("127.0.0.1", server.rpc), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="server.dc1.consul") as tls:
                    tls.sendall(b"\x00" + struct.pack(">I", 5) + b"hello")
                    assert closed_by_peer(tls)
            except (ssl.SSLError, ConnectionError):
                pass  # refused during the handshake (TLS 1.2) or right after it (TLS 1.3)
        # and the server keeps serving its agents
        assert client.json("PUT", "/v1/kv/secure", b"still") is True
        assert server.request("GET", "/v1/kv/secure?raw")[2] == b"still"
    finally:
        cluster.stop_all()
