"""`consulpy bench restore`: what `PUT /v1/snapshot` costs a server beyond holding the data.

Why: issue 18 asks for a 250 MB archive to restore within 64 MiB of RSS growth. The state a
server holds after a restore is not extra (it is the data), so the figure that matters is the
restore's peak minus what the same server holds once it is restarted on the restored data dir
(its store; its latest Raft snapshot stays on disk, after the restore too).

It writes an archive of incompressible values (`--mb` of them) without a source server (a store
is filled through its KV table in this process and serialised as `GET /v1/snapshot` would), starts
one server with a data dir, streams the archive to it, and reads the server's VmHWM (peak)
after resetting it just before the upload; then restarts the server and reads its VmRSS once
the restored data is loaded. Output: one JSON object on stdout; a summary on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from consulpy.bench.mem import proc_memory
from consulpy.server import snapshot_archive
from consulpy.state import snapshot_stream
from consulpy.state.store import StateStore

MIB = 1 << 20
PREFIX = "restore/"


def key(i: int) -> str:
    return f"{PREFIX}{i:07d}"


def write_archive(path: Path, total_bytes: int, value_size: int = 4096, seed: int = 1) -> int:
    """Write a snapshot archive holding `total_bytes` of incompressible values (keys
    `restore/0000000`, ...; the value of key i is `value_of(i, ...)`); returns the key count."""
    keys = max(1, total_bytes // value_size)
    store = StateStore()  # filled through the KV table's own writes (no FSM commands here)
    for i in range(keys):
        txn = store.txn(i + 1)
        store.kv.set(txn, key(i), value_of(i, value_size, seed), 0)
        txn.commit()
    frozen = store.freeze()
    del store
    with tempfile.TemporaryFile() as state_file:
        out = snapshot_archive.Digesting(state_file)
        snapshot_stream.write(frozen, out)  # type: ignore[arg-type]
        del frozen
        state_file.flush()
        state_file.seek(0)
        with open(path, "wb") as archive:
            snapshot_archive.write_file(
                archive,
                state_file,
                size=out.size,
                sha256=out.sha.hexdigest(),
                index=keys,
                term=1,
                datacenter="dc1",
            )
    return keys


def value_of(i: int, size: int, seed: int = 1) -> bytes:
    """Incompressible (SHA-256 in counter mode), yet reproducible to check a restore."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{i}/{n}".encode()).digest()
        n += 1
    return bytes(out[:size])


def put_archive(http_addr: str, path: Path, timeout: float = 600) -> tuple[int, bytes]:
    """PUT the archive to /v1/snapshot, streamed from the file (never read whole)."""
    host, port = http_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        with open(path, "rb") as fh:
            headers = {"Content-Length": str(path.stat().st_size)}
            conn.request("PUT", "/v1/snapshot", body=fh, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
    finally:
        conn.close()


def reset_peak(pid: int) -> int:
    """Set process `pid`'s peak RSS (VmHWM) to its current RSS, and return that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return proc_memory(pid)["rss"]


def measure(
    archive: Path,
    start: Callable[[], tuple[int, str]],
    restart: Callable[[], tuple[int, str]],
    loaded: Callable[[str], bool],
) -> dict[str, int]:
    """Restore `archive` into the server `start()` gives (pid, HTTP address), then restart
    it with `restart()` and wait until `loaded(addr)`; the memory figures in bytes."""
    pid, addr = start()
    base = reset_peak(pid)
    status, body = put_archive(addr, archive)
    if status != 200:
        raise RuntimeError(f"restore answered {status}: {body[:300]!r}")
    peak = proc_memory(pid)["hwm"]
    after = proc_memory(pid)["rss"]
    pid, addr = restart()
    deadline = time.monotonic() + 600
    while not loaded(addr):
        if time.monotonic() > deadline:
            raise TimeoutError("the restarted server did not serve the restored data")
        time.sleep(0.2)
    holding = proc_memory(pid)["rss"]
    return {
        "rss_before": base,
        "restore_peak": peak,
        "rss_after_restore": after,
        "rss_restarted": holding,
        "peak_growth": peak - base,
        "peak_over_holding": peak - holding,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="consulpy bench restore",
        description="Peak RSS of PUT /v1/snapshot against a server holding the same data.",
    )
    p.add_argument("--mb", type=int, default=250, help="MB (10^6) of values (default 250)")
    p.add_argument("--value-size", type=int, default=4096, help="bytes per value")
    args = p.parse_args(argv)
    if args.mb < 1 or args.value_size < 1:
        print("consulpy bench restore: --mb and --value-size must be >= 1", file=sys.stderr)
        return 2
    from consulpy.bench.procs import spawn
    from consulpy.bench.refservers import wait_for_consul_leader
    from consulpy.util.ports import free_ports

    with tempfile.TemporaryDirectory(prefix="consulpy-bench-restore-") as tmp:
        work = Path(tmp)
        archive = work / "big.snap"
        t0 = time.monotonic()
        keys = write_archive(archive, args.mb * 10**6, args.value_size)
        print(
            f"archive: {keys} keys, {archive.stat().st_size / MIB:.1f} MiB "
            f"({time.monotonic() - t0:.0f} s to write)",
            file=sys.stderr,
        )
        http_port, server_port, lan_port = free_ports(3)
        argv_ = [
            sys.executable,
            "-m",
            "consulpy",
            "agent",
            "-server",
            "-bootstrap-expect=1",
            "-node=bench-restore",
            f"-data-dir={work / 'data'}",
            "-bind=127.0.0.1",
            "-client=127.0.0.1",
            f"-http-port={http_port}",
            f"-server-port={server_port}",
            f"-serf-lan-port={lan_port}",
            "-serf-wan-port=-1",
            "-dns-port=-1",
            "-grpc-port=-1",
            "-log-level=warn",
            f"-hcl=limits {{ snapshot_max_size = {4 * args.mb * 10**6} }}",
        ]
        addr = f"127.0.0.1:{http_port}"
        procs = []

        def start() -> tuple[int, str]:
            proc = spawn("restore", argv_, work / f"server{len(procs)}.log")
            procs.append(proc)
            wait_for_consul_leader(addr, [proc])
            return proc.pid, addr

        def restart() -> tuple[int, str]:
            procs[-1].stop()
            return start()

        def loaded(a: str) -> bool:
            conn = http.client.HTTPConnection(*a.split(":"), timeout=30)  # type: ignore[arg-type]
            try:
                conn.request("GET", f"/v1/kv/{key(keys - 1)}?raw")
                resp = conn.getresponse()
                return resp.status == 200 and resp.read() == value_of(keys - 1, args.value_size)
            except OSError:
                return False
            finally:
                conn.close()

        try:
            result = measure(archive, start, restart, loaded)
        finally:
            for proc in procs:
                proc.stop()
        out = {
            "bench": "restore",
            "keys": keys,
            "value_size": args.value_size,
            "archive_bytes": archive.stat().st_size,
            **result,
        }
    print(json.dumps(out), flush=True)
    print(
        f"restore of a {out['archive_bytes'] / MIB:.0f} MiB archive: peak growth "
        f"{out['peak_growth'] / MIB:.0f} MiB; peak over a server holding the same data "
        f"{out['peak_over_holding'] / MIB:.0f} MiB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
