"""Reference servers the kv benchmark compares consulpy against.

- `aiohttp`: a bare aiohttp app answering Consul's KV routes from a dict, in its own process.
  Same HTTP stack and event loop as consulpy, no Raft, no state store: the ceiling of our stack.
- `etcd` / `etcd1`: Debian's etcd as a 3-member or 1-member cluster on loopback, driven through
  its v3 JSON gateway. A mature replicated KV store on the same machine: the bar to compare with.

`python -m consulpy.bench.refservers aiohttp --fd N` serves the aiohttp reference on an
inherited listening socket (how `start_aiohttp` runs it, so no port can be taken in between).
"""

from __future__ import annotations

import argparse
import base64
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from consulpy.bench.procs import Proc, Target, free_ports, http_json, spawn, wait_until

ETCD_BIN = "/usr/bin/etcd"
STARTUP_TIMEOUT = 60.0


def aiohttp_app() -> web.Application:
    """The reference app: Consul's KV PUT/GET/DELETE answered from a dict (and a leader)."""
    store: dict[str, tuple[bytes, int]] = {}
    index = [0]

    async def put(request: web.Request) -> web.Response:
        index[0] += 1
        store[request.match_info["key"]] = (await request.read(), index[0])
        return web.json_response(True)

    async def get(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in store:
            return web.Response(status=404, headers={"X-Consul-Index": str(index[0])})
        value, modify = store[key]
        headers = {"X-Consul-Index": str(modify)}
        if "raw" in request.query:
            return web.Response(body=value, headers=headers)
        entry = {
            "LockIndex": 0,
            "Key": key,
            "Flags": 0,
            "Value": base64.b64encode(value).decode() if value else None,
            "CreateIndex": modify,
            "ModifyIndex": modify,
        }
        return web.json_response([entry], headers=headers)

    async def delete(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        doomed = [k for k in store if k.startswith(key)] if "recurse" in request.query else [key]
        for k in doomed:
            store.pop(k, None)
        index[0] += 1
        return web.json_response(True)

    async def leader(request: web.Request) -> web.Response:
        return web.json_response("127.0.0.1:8300")

    app = web.Application()
    app.router.add_get("/v1/status/leader", leader)
    app.router.add_put("/v1/kv/{key:.+}", put)
    app.router.add_get("/v1/kv/{key:.+}", get)
    app.router.add_delete("/v1/kv/{key:.+}", delete)
    return app


def start_aiohttp(workdir: Path) -> Target:
    """Start the aiohttp reference in a child process; returns once it answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    addr = f"127.0.0.1:{sock.getsockname()[1]}"
    fd = str(sock.fileno())
    try:
        argv = [sys.executable, "-m", "consulpy.bench.refservers", "aiohttp", "--fd", fd]
        proc = spawn("aiohttp-ref", argv, workdir / "aiohttp-ref.log", pass_fds=[sock.fileno()])
    finally:
        sock.close()  # the child holds its own copy
    target = Target(name="aiohttp", api="consul", addrs=[addr], procs=[proc])
    try:
        wait_for_consul_leader(addr, [proc])
    except BaseException:
        target.stop()
        raise
    return target


def wait_for_consul_leader(addr: str, procs: list[Proc], timeout: float = STARTUP_TIMEOUT) -> None:
    """Until `GET /v1/status/leader` answers a non-empty string (the agent can serve writes)."""

    def has_leader() -> bool:
        status, body = http_json(f"http://{addr}/v1/status/leader")
        return status == 200 and isinstance(body, str) and body != ""

    wait_until(has_leader, timeout, f"a leader at http://{addr}", procs)


def start_etcd(members: int, workdir: Path) -> Target:
    """Start an etcd cluster of `members` on loopback with fresh data dirs; returns once healthy.

    Every member serves the v3 JSON gateway on its client URL; the benchmark drives the first.
    """
    ports = free_ports(2 * members)
    names = [f"m{i}" for i in range(members)]
    client = [f"http://127.0.0.1:{ports[2 * i]}" for i in range(members)]
    peer = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(members)]
    initial = ",".join(f"{n}={p}" for n, p in zip(names, peer, strict=True))
    datadir = Path(tempfile.mkdtemp(prefix="etcd-", dir=workdir))
    label = "etcd" if members == 3 else f"etcd{members}"
    target = Target(name=label, api="etcd", addrs=[c.removeprefix("http://") for c in client])
    target.cleanups.append(lambda: shutil.rmtree(datadir, ignore_errors=True))
    try:
        for i, name in enumerate(names):
            argv = [
                ETCD_BIN,
                f"--name={name}",
                f"--data-dir={datadir / name}",
                f"--listen-client-urls={client[i]}",
                f"--advertise-client-urls={client[i]}",
                f"--listen-peer-urls={peer[i]}",
                f"--initial-advertise-peer-urls={peer[i]}",
                f"--initial-cluster={initial}",
                "--initial-cluster-state=new",
                f"--initial-cluster-token=consulpy-bench-{datadir.name}",
                "--logger=zap",
                "--log-outputs=stderr",
            ]
            target.procs.append(spawn(f"etcd-{name}", argv, workdir / f"etcd-{name}.log"))
        for c in client:
            wait_until(lambda c=c: _etcd_ready(c), STARTUP_TIMEOUT, f"etcd at {c}", target.procs)
    except BaseException:
        target.stop()
        raise
    return target


def _etcd_ready(client_url: str) -> bool:
    """Healthy and able to commit: /health reports true only once the member sees a leader."""
    status, body = http_json(f"{client_url}/health")
    return status == 200 and isinstance(body, dict) and body.get("health") == "true"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m consulpy.bench.refservers")
    parser.add_argument("server", choices=["aiohttp"])
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    web.run_app(aiohttp_app(), sock=sock, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
