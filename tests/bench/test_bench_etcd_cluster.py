"""The etcd reference: a real 3-member cluster on loopback that replicates what it is given."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from consulpy.bench.procs import http_json
from consulpy.bench.refservers import start_etcd


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_three_member_cluster_serves_put_and_get_then_stops_clean(tmp_path: Path) -> None:
    etcd = start_etcd(3, tmp_path)
    try:
        assert etcd.name == "etcd" and etcd.api == "etcd"
        assert len(etcd.addrs) == 3 and len(set(etcd.addrs)) == 3
        assert all(a.startswith("127.0.0.1:") for a in etcd.addrs)
        put = {"key": _b64("hello"), "value": _b64("world")}
        status, _ = http_json(f"http://{etcd.addrs[0]}/v3/kv/put", put)
        assert status == 200
        # Ranges are linearizable by default: every member sees the write once it answered.
        for addr in etcd.addrs:
            status, body = http_json(f"http://{addr}/v3/kv/range", {"key": _b64("hello")})
            assert status == 200 and isinstance(body, dict)
            assert base64.b64decode(body["kvs"][0]["value"]) == b"world"
        status, body = http_json(f"http://{etcd.addrs[1]}/v3/cluster/member/list", {})
        assert status == 200 and isinstance(body, dict) and len(body["members"]) == 3
    finally:
        etcd.stop()
    assert all(p.popen.returncode is not None for p in etcd.procs)
    for p in etcd.procs:
        assert not os.path.exists(f"/proc/{p.pid}")
    assert not [d for d in tmp_path.iterdir() if d.is_dir() and d.name.startswith("etcd-")]
