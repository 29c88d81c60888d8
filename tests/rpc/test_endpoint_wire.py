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
        assert reply["e"] == "command" and "Snapshot restore failed" in reply["t"], reply
        # The same connection still serves a valid call.
        reply = rpc.call("KVS.Apply", request({"verb": "set", "key": "fine", "value": b"ok"}))
        assert reply == {"s": rpc.seq, "r": True}
        reply = rpc.call("KVS.Get", request({"key": "fine"}))
        assert reply["r"]["result"][0]["Value"] == b"ok"
    finally:
        rpc.close()
    assert kv_keys(server) == {**before, "fine": "ok"}
