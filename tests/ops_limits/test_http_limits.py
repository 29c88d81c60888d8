"""HTTP limits seen from a client: per-client connection cap (429), writes only from
allow_write_http_from (403), response_headers on every answer, 413 for oversized bodies, and
the header size limit."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.agentproc import AgentProcess
from tests.watch.test_watch import DEV_FLAGS

CONFIG = {
    "limits": {"http_max_conns_per_client": 5},
    "http_config": {
        "response_headers": {"X-Frame-Options": "DENY", "Access-Control-Allow-Origin": "*"},
        "allow_write_http_from": ["127.0.0.1/32"],
        "block_endpoints": ["/v1/agent/self", "/v1/operator"],
    },
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    conf = Path(tmp_path_factory.mktemp("limits")) / "limits.json"
    conf.write_text(json.dumps(CONFIG))
    proc = AgentProcess(*DEV_FLAGS, f"-config-file={conf}").start()
    try:
        yield proc
    finally:
        proc.kill()


def connect(agent: AgentProcess, source: str = "127.0.0.1") -> socket.socket:
    host, port = agent.http_addr.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    return sock


def exchange(sock: socket.socket, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request and read the answer (its headers and Content-Length bytes, or up to
    EOF): the server may still be waiting for a body it will never read."""
    sock.sendall(raw)
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(body) >= int(headers.get("content-length", "-1")) >= 0:
                return int(lines[0].split()[1]), headers, body
        chunk = sock.recv(65536)
        if not chunk:
            assert sep, f"connection closed before an answer: {data!r}"
            return int(lines[0].split()[1]), headers, body
        data += chunk


def request(
    agent: AgentProcess,
    method: str,
    path: str,
    body: bytes = b"",
    source: str = "127.0.0.1",
    extra: str = "",
) -> tuple[int, dict[str, str], bytes]:
    raw = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with connect(agent, source) as sock:
        return exchange(sock, raw)


def test_response_headers_on_every_answer(agent: AgentProcess) -> None:
    for path in ("/v1/status/leader", "/v1/kv/missing", "/v1/nope"):
        status, headers, _ = request(agent, "GET", path)
        assert status in (200, 404)
        assert headers["x-frame-options"] == "DENY"
        assert headers["access-control-allow-origin"] == "*"


def test_writes_only_from_allowed_networks(agent: AgentProcess) -> None:
    status, _, body = request(agent, "PUT", "/v1/kv/guarded", b"x", source="127.0.0.2")
    assert status == 403 and b"Access is restricted" in body
    status, _, body = request(agent, "GET", "/v1/kv/guarded", source="127.0.0.2")
    assert status == 404  # reads are allowed, and the write changed nothing
    status, _, body = request(agent, "PUT", "/v1/kv/guarded", b"x")
    assert status == 200 and body.strip() == b"true"


def test_connections_beyond_the_per_client_limit_get_429(agent: AgentProcess) -> None:
    held = [connect(agent) for _ in range(5)]
    try:
        # the 6th concurrent connection from this IP is refused; another IP is not affected
        status, _, _ = request(agent, "GET", "/v1/status/leader")
        assert status == 429
        status, _, _ = request(agent, "GET", "/v1/status/leader", source="127.0.0.3")
        assert status == 200
        # a held connection still works
        status, _, _ = exchange(
            held[0], b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert status == 200
    finally:
        for sock in held:
            sock.close()


def test_oversized_bodies_get_413_on_every_endpoint(agent: AgentProcess) -> None:
    huge = 10 * 1024 * 1024
    for method, path in (
        ("PUT", "/v1/agent/service/register"),
        ("PUT", "/v1/session/create"),
        ("PUT", "/v1/catalog/register"),
        ("PUT", "/v1/kv/big"),
        ("PUT", "/v1/txn"),
        ("PUT", "/v1/config"),
        ("PUT", "/v1/connect/intentions/exact?source=a&destination=b"),
    ):
        raw = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {huge}\r\n\r\n"
        ).encode()
        with connect(agent) as sock:
            status, _, body = exchange(sock, raw)
        assert status == 413, (path, status, body)
    # an endpoint's own smaller limit applies to a body under the general one
    status, _, _ = request(agent, "PUT", "/v1/event/fire/big", b"x" * (200 * 1024))
    assert status == 413
    status, _, _ = request(agent, "GET", "/v1/kv/big")
    assert status == 404


def test_header_size_limit(agent: AgentProcess) -> None:
    status, _, _ = request(agent, "GET", "/v1/status/leader", extra=f"X-Big: {'a' * 20000}\r\n")
    assert status in (400, 431)
    status, _, _ = request(agent, "GET", "/v1/status/leader", extra=f"X-Ok: {'a' * 8000}\r\n")
    assert status == 200


def test_blocked_endpoints_get_403(agent: AgentProcess) -> None:
    for path in ("/v1/agent/self", "/v1/operator/raft/configuration"):
        status, headers, body = request(agent, "GET", path)
        assert status == 403 and b"Endpoint is blocked by agent configuration" in body
        assert headers["x-frame-options"] == "DENY"
    status, _, _ = request(agent, "GET", "/v1/agent/members")
    assert status == 200
