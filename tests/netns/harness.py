"""Linux network namespaces as hosts: one namespace per agent, all on one bridge.

Each host namespace gets `lo` and an `eth0` whose peer sits on a bridge in a separate bridge
namespace, with an address in a private /24 that exists only inside the namespaces created
here (nothing is added to the test runner's own namespace). Every agent can then bind
0.0.0.0 and use the default ports, as on real machines or containers: the only way to tell
servers apart is the address they advertise. Processes run with `ip netns exec NS ...`; the
test itself talks to them from a fresh thread that has joined the namespace (setns), so no
route from the host is needed.

Reusable for chaos tests: `Network.run(ns, argv)` runs anything in a host namespace, and
`Network.link(host, up=False)` cuts a host off the bridge.

Needs root and iproute2; `available()` says whether this machine has them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def available() -> str | None:
    """None when netns tests can run here, else why not (a skip reason)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"cpy-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Run fn() on a new thread that has joined namespace `ns` (the thread dies after, so no
    other code ever runs in the namespace by accident)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, name=f"netns-{ns}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class Host:
    """One namespace on the bridge: its name and its only non-loopback address."""

    name: str
    ns: str
    ip: str
    veth: str  # the bridge-side end of its link

    def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        port: int = 8500,
        timeout: float = 10,
    ) -> tuple[int, bytes]:
        """An HTTP request to 127.0.0.1:port inside this host (its agent's API)."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)

        def call() -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        return in_netns(self.ns, call)

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, raw = self.http(method, path, body)
        assert status == 200, (self.name, method, path, status, raw)
        return json.loads(raw) if raw else None


@dataclass
class Network:
    """A bridge namespace plus host namespaces; `close()` removes every one of them."""

    prefix: str = field(default_factory=lambda: f"cpy{secrets.token_hex(3)}")
    # 10.X.Y.0/24 with X.Y random per run: private (agents may pick it themselves when no
    # advertise address is given) and only ever configured inside our namespaces.
    subnet: str = field(
        default_factory=lambda: f"10.{secrets.randbelow(200) + 50}.{secrets.randbelow(250)}"
    )
    hosts: dict[str, Host] = field(default_factory=dict)
    _namespaces: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bridge_ns = f"{self.prefix}-br"
        self._add_ns(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def add_host(self, name: str) -> Host:
        """A new namespace with eth0 at the next address of the subnet, linked to the bridge."""
        index = len(self.hosts) + 1
        ns = f"{self.prefix}-{name}"
        self._add_ns(ns)
        veth, peer = f"v{index}", f"p{index}"
        # Both ends are created in the bridge namespace, then one moves: nothing touches the
        # runner's namespace, and names never clash with another run's.
        _ip("-n", self.bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("-n", self.bridge_ns, "link", "set", peer, "netns", ns)
        _ip("-n", ns, "link", "set", peer, "name", "eth0")
        ip = f"{self.subnet}.{index}"
        _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", self.bridge_ns, "link", "set", veth, "master", "br0")
        _ip("-n", self.bridge_ns, "link", "set", veth, "up")
        host = self.hosts[name] = Host(name, ns, ip, veth)
        return host

    def set_addresses(self, host: Host, addresses: list[str]) -> None:
        """Replace eth0's addresses (each a /24); host.ip becomes the first, if any."""
        _ip("-n", host.ns, "addr", "flush", "dev", "eth0")
        for address in addresses:
            _ip("-n", host.ns, "addr", "add", f"{address}/24", "dev", "eth0")
        host.ip = addresses[0] if addresses else ""

    def link(self, host: Host, up: bool) -> None:
        """Connect (up) or cut (down) a host's link to the bridge: a network partition."""
        _ip("-n", self.bridge_ns, "link", "set", host.veth, "up" if up else "down")

    @staticmethod
    def command(host: Host, argv: list[str]) -> list[str]:
        """argv run inside the host's namespace."""
        return ["ip", "netns", "exec", host.ns, *argv]

    def spawn(self, host: Host, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        """Start argv in the host's namespace (own session, output to `log`); killed by
        close() if still running."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                self.command(host, argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[Any]) -> None:
        """SIGKILL a spawned process and everything in its session."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def run(self, host: Host, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(host, argv), capture_output=True, text=True, check=False, **kw
        )

    def close(self) -> None:
        """Delete every namespace (their links go with them). Processes still running in
        one keep it alive until they exit: spawned ones are killed first."""
        for proc in self._procs:
            self.kill(proc)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()
