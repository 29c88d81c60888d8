"""A server's RPC port serves the registered endpoints and nothing else: a raw msgpack client
sending an FSM command, an unknown method, or a restore outside Snapshot.Restore gets an error
answer, the connection stays usable, and the state does not change."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from consulpy.rpc.codec import PROTO_RPC, encode
from consulpy.state.store import StateStore
from tests.cluster.harness import Cluster, Node

pytestmark = pytest.mark.slow


class RawRPC:
    """A msgpack RPC client written from the wire format alone (no consulpy client code)."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.sendall(bytes([PROTO_RPC]))
        self.seq = 0

    def call(self, method: str, args: Any) -> dict[str, Any]:
        self.seq += 1
        self.sock.sendall(encode({"s": self.seq, "m": method, "a": args}))
        (length,) = struct.unpack(">I", self._read(4))
        reply = msgpack.unpackb(self._read(length), raw=False)
        assert reply["s"] == self.seq
        return reply

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return buf

    def close(self) -> None:
        self.sock.close()


def request(payload: Any) -> dict[str, Any]:
    return {"req": {"dc": "", "token": "", "opts": {}, "payload": payload}, "hops": 0}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    cluster = Cluster(Path(tmp_path_factory.mktemp("wire")), servers=1)
    try:
        cluster.start_all()
        yield cluster.servers[0]
    finally:
        cluster.stop_all()


def kv_keys(node: Node) -> dict[str, str]:
    import base64

    status, _, raw = node.request("GET", "/v1/kv/?recurse")
    assert status == 200, raw
    return {e["Key"]: base64.b64decode(e["Value"] or "").decode() for e in json.loads(raw)}


def test_only_endpoints_are_served_and_bad_calls_change_nothing(server: Node) -> None:
    assert server.request("PUT", "/v1/kv/keep", b"v")[0] == 200
    before = kv_keys(server)
    fsm_set = {
        "t": "kv",
        "verb": "set",
        "key": "evil",
        "value": b"x",
        "flags": 0,
        "index": 0,
        "session": "",
        "ts": 0.0,
    }
    restore = {"t": "restore", "data": StateStore().snapshot(), "ts": 0.0}
    ca_set = {"t": "ca_set", "config": {}, "roots": [], "cas": None, "ts": 0.0}
    rpc = RawRPC(server.rpc_addr)
    try:
        # The old generic write entry point, with a raw FSM command: gone.
        reply = rpc.call("Server.Write", {"cmd": fsm_set, "hops": 0})
        assert reply["e"] == "unknown_method", reply
        reply = rpc.call("Server.Write", {"cmd": restore, "hops": 0})
        assert reply["e"] == "unknown_method", reply
        # A method nobody registered.
        reply = rpc.call("Nope.Nothing", None)
        assert reply["e"] == "unknown_method", reply
        # FSM commands smuggled as the payload of real endpoints: refused by the typed decode.
        for method, cmd in (
            ("KVS.Apply", fsm_set),
            ("KVS.Apply", restore),
            ("Txn.Apply", restore),
            ("Catalog.Register", restore),
            ("ConfigEntry.Apply", ca_set),
            ("ConnectCA.ConfigurationSet", ca_set),
        ):
            reply = rpc.call(method, request(cmd))
            assert reply["e"] == "bad_request", (method, reply)
        # The old call shape on a real endpoint, and garbage arguments.
        reply = rpc.call("Snapshot.Restore", {"cmd": restore, "hops": 0})
        assert reply["e"] == "bad_request", reply
        reply = rpc.call("KVS.Apply", [1, 2, 3])
        assert reply["e"] == "bad_request", reply
        # A wrongly typed field of a valid payload.
        reply = rpc.call("KVS.Apply", request({"verb": "set", "key": "evil", "value": "not bytes"}))
        assert reply["e"] == "bad_request", reply
        # The restore endpoint itself refuses a state the servers could not load.
        reply = rpc.call("Snapshot.Restore", request({"state": b"not a snapshot"}))
        assert reply["e"] == "bad_request" and "Snapshot restore failed" in reply["t"], reply
        # The same connection still serves a valid call.
        reply = rpc.call("KVS.Apply", request({"verb": "set", "key": "fine", "value": b"ok"}))
        assert reply == {"s": rpc.seq, "r": True}
        reply = rpc.call("KVS.Get", request({"key": "fine"}))
        assert reply["r"]["result"][0]["Value"] == b"ok"
    finally:
        rpc.close()
    assert kv_keys(server) == {**before, "fine": "ok"}


def catalog_nodes(node: Node) -> list[str]:
    status, _, raw = node.request("GET", "/v1/catalog/nodes")
    assert status == 200, raw
    return sorted(n["Node"] for n in json.loads(raw))


def session_ids(node: Node) -> list[str]:
    status, _, raw = node.request("GET", "/v1/session/list")
    assert status == 200, raw
    return sorted(s["ID"] for s in json.loads(raw))


def test_server_validates_what_a_hand_made_payload_carries(server: Node) -> None:
    """Checks the HTTP side makes early are repeated on the server: a raw RPC caller that
    skips the agent gets the same refusal, and nothing reaches the log."""
    kv_before, nodes_before, sessions_before = (
        kv_keys(server),
        catalog_nodes(server),
        session_ids(server),
    )
    big = b"x" * (524288 + 1)  # limits.kv_max_value_size (the default) + 1
    rpc = RawRPC(server.rpc_addr)
    refusals = [
        # KV value size limit (limits.kv_max_value_size).
        ("KVS.Apply", {"verb": "set", "key": "big", "value": big}, "bad_request", "too large"),
        # Session TTL bounds: below session_ttl_min, above 86400s, not a duration.
        (
            "Session.Apply",
            {"op": "create", "session": {"Node": server.name, "TTL": "1s"}},
            "command",
            "Invalid Session TTL",
        ),
        (
            "Session.Apply",
            {"op": "create", "session": {"Node": server.name, "TTL": "86401s"}},
            "command",
            "Invalid Session TTL",
        ),
        (
            "Session.Apply",
            {"op": "create", "session": {"Node": server.name, "TTL": "soon"}},
            "command",
            "Session TTL 'soon' invalid",
        ),
        # Txn: too many ops, a value too large, ops the FSM could not evaluate.
        (
            "Txn.Apply",
            {"ops": [{"KV": {"Verb": "set", "Key": f"t{i}", "Value": b"v"}} for i in range(129)]},
            "bad_request",
            "too many operations",
        ),
        (
            "Txn.Apply",
            {"ops": [{"KV": {"Verb": "set", "Key": "t", "Value": big}}]},
            "bad_request",
            "too large",
        ),
        (
            "Txn.Apply",
            {"ops": [{"KV": {"Verb": "set", "Key": None, "Value": b"v"}}]},
            "bad_request",
            "Key",
        ),
        (
            "Txn.Apply",
            {
                "ops": [
                    {"KV": {"Verb": "set", "Key": "t", "Value": b"v"}},
                    {
                        "Service": {
                            "Verb": "set",
                            "Node": server.name,
                            "Service": {"ID": "web", "Service": "web", "Connect": 1},
                        }
                    },
                ]
            },
            "bad_request",
            "Connect",
        ),
        ("Txn.Apply", {"ops": [{"KV": "set t"}]}, "bad_request", "operation 0"),
        # Catalog.Register: Consul's rules and the row types, whatever the agent did.
        ("Catalog.Register", {"request": {"Address": "10.0.0.1"}}, "command", "Must provide node"),
        (
            "Catalog.Register",
            {"request": {"Node": "n1", "Address": "10.0.0.1", "ID": "not-a-uuid"}},
            "command",
            "Bad node ID",
        ),
        (
            "Catalog.Register",
            {"request": {"Node": "n1", "Address": "10.0.0.1", "Datacenter": "elsewhere"}},
            "command",
            "No path to datacenter",
        ),
        (
            "Catalog.Register",
            {"request": {"Node": "n1", "Address": "10.0.0.1", "Service": {"ID": "w"}}},
            "command",
            "Must provide service name",
        ),
        (
            "Catalog.Register",
            {
                "request": {
                    "Node": "n1",
                    "Address": "10.0.0.1",
                    "Service": {"Service": "w", "Connect": 1},
                }
            },
            "bad_request",
            "Connect",
        ),
        (
            "Catalog.Register",
            {
                "request": {
                    "Node": "n1",
                    "Address": "10.0.0.1",
                    "Checks": [{"CheckID": "c", "Status": "bogus"}],
                }
            },
            "command",
            "Invalid check status",
        ),
        (
            "Catalog.Register",
            {"request": {"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"k": 5}}},
            "bad_request",
            "NodeMeta",
        ),
        # Typed read payloads: unknown fields and wrong types are refused too.
        ("KVS.Get", {"key": "keep", "recurse": True}, "bad_request", "unknown field"),
        ("KVS.Get", {"key": 5}, "bad_request", "field key"),
        ("Catalog.ServiceNodes", {"service": "web", "tags": [1]}, "bad_request", "field tags"),
        ("Txn.Read", {"ops": [{"KV": {"Verb": "set", "Key": "r"}}]}, "bad_request", "read-only"),
    ]
    try:
        for method, payload, kind, text in refusals:
            reply = rpc.call(method, request(payload))
            assert reply.get("e") == kind and text in reply.get("t", ""), (method, reply)
        # The connection still serves a valid call afterwards.
        reply = rpc.call("KVS.Get", request({"key": "keep"}))
        assert reply["r"]["result"][0]["Value"] == b"v"
    finally:
        rpc.close()
    assert kv_keys(server) == kv_before
    assert catalog_nodes(server) == nodes_before
    assert session_ids(server) == sessions_before


def test_lone_surrogate_in_a_name_is_refused(server: Node) -> None:
    """JSON's \\ud800 escape decodes to a lone surrogate, which is not text: the HTTP layer's
    JSON decoding refuses it (400) before any endpoint runs (a raw RPC caller meets the
    endpoint's own check, below); nothing changes."""
    nodes_before = catalog_nodes(server)
    body = b'{"Node": "bad\\ud800node", "Address": "10.0.0.9"}'
    status, _, raw = server.request("PUT", "/v1/catalog/register", body)
    assert status == 400, raw
    assert b"lone UTF-16 surrogate" in raw
    body = b'{"Node": "n2", "Address": "10.0.0.9", "Service": {"Service": "w\\udc80"}}'
    status, _, raw = server.request("PUT", "/v1/catalog/register", body)
    assert status == 400, raw
    assert catalog_nodes(server) == nodes_before
    # On the RPC wire a msgpack str must be UTF-8: a frame carrying a surrogate's bytes
    # (ED A0 80) in the node name is undecodable and dropped with its connection.
    marker = "SURROGATE"
    frame = msgpack.packb(
        {
            "s": 1,
            "m": "Catalog.Register",
            "a": request({"request": {"Node": marker, "Address": "10.0.0.9"}}),
        },
        use_bin_type=True,
    )
    frame = frame.replace(marker.encode(), b"bad\xed\xa0\x80nod")  # same length: 9 bytes
    rpc = RawRPC(server.rpc_addr)
    try:
        rpc.sock.sendall(struct.pack(">I", len(frame)) + frame)
        try:
            data = rpc.sock.recv(4)
        except OSError:
            data = b""
        if data:  # an error answer instead of a closed connection is fine too
            (length,) = struct.unpack(">I", data + rpc._read(4 - len(data)))
            assert "e" in msgpack.unpackb(rpc._read(length), raw=False)
    finally:
        rpc.close()
    assert catalog_nodes(server) == nodes_before


def test_server_completes_minimal_rows_instead_of_logging_them(server: Node) -> None:
    """A hand-made register with a bare service and check (no ID, no status) is normalized
    on the server as an agent would have done, so every server's FSM can apply it."""
    rpc = RawRPC(server.rpc_addr)
    try:
        reply = rpc.call(
            "Catalog.Register",
            request(
                {
                    "request": {
                        "Node": "bare",
                        "Address": "10.0.0.7",
                        "Service": {"Service": "bare-svc", "Weights": {"Passing": 0}},
                        "Checks": [{"Name": "bare-check", "ServiceID": "bare-svc"}],
                    }
                }
            ),
        )
        assert "e" not in reply, reply
        reply = rpc.call(
            "Txn.Apply",
            request(
                {"ops": [{"Service": {"Verb": "set", "Node": "bare", "Service": {"Service": "t"}}}]}
            ),
        )
        assert "e" not in reply and reply["r"]["Errors"] is None, reply
    finally:
        rpc.close()
    status, _, raw = server.request("GET", "/v1/health/service/bare-svc")
    assert status == 200, raw
    (entry,) = json.loads(raw)
    assert entry["Service"]["ID"] == "bare-svc"
    assert entry["Service"]["Weights"] == {"Passing": 1, "Warning": 1}
    assert [(c["CheckID"], c["Status"]) for c in entry["Checks"]] == [("bare-check", "critical")]
    status, _, raw = server.request("GET", "/v1/catalog/service/t")
    assert status == 200 and json.loads(raw)[0]["ServiceID"] == "t", raw
