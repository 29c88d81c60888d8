"""`consulpy lock`: run a command while holding a lock (or one of N semaphore slots) in the KV
store, with Consul's key layout so `consul lock` and `consulpy lock` exclude each other.

Lock (-n 1): `<prefix>/.lock` acquired with a session. Semaphore (-n > 1): a contender key
`<prefix>/<session>` plus `<prefix>/.lock` holding `{"Limit": n, "Holders": {...}}`, updated
with check-and-set. The session is renewed while the child runs; the lock is released when the
child exits, when the lock is lost, or on SIGINT/SIGTERM (forwarded to the child first).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from consulpy.cli.client import APIError, Client, add_http_flags, fail
from consulpy.cli.watch import split_bool_flags
from consulpy.config.durations import parse_duration

LOCK_FLAG = 0x2DDCCBC058A50C18
SEMAPHORE_FLAG = 0xE0F69A2BAA414DE0
LOCK_WAIT = "15s"
RETRY_PAUSE = 5.0
KILL_GRACE = 5.0


class LockError(Exception):
    pass


class Interrupted(LockError):
    pass


@dataclass
class Options:
    prefix: str
    child: list[str]
    limit: int
    name: str
    timeout: float
    monitor_retry: int
    session_ttl: float
    lock_delay: float
    shell: bool
    pass_stdin: bool
    verbose: bool
    child_exit_code: bool


def _kv_get(client: Client, key: str, index: int = 0, recurse: bool = False) -> tuple[int, Any]:
    params: dict[str, Any] = {"recurse": recurse}
    if index:
        params.update(index=index, wait=LOCK_WAIT)
    resp = client.request("GET", f"/v1/kv/{key}", params, ok=(200, 404))
    return int(resp.headers.get("X-Consul-Index", "0") or 0), (
        resp.json() if resp.status == 200 else None
    )


def _put(client: Client, key: str, body: bytes, **params: Any) -> bool:
    return bool(client.request("PUT", f"/v1/kv/{key}", params, body).json())


class Holder:
    """One contender: its session, and the lock or semaphore slot it takes and gives back."""

    def __init__(self, client: Client, opts: Options, stop: threading.Event) -> None:
        self.client = client
        self.opts = opts
        self.stop = stop
        self.session = ""
        self.lock_key = f"{opts.prefix}/.lock"
        self.lost = threading.Event()

    # ------------------------------------------------------------- session
    def create_session(self) -> None:
        body = {
            "Name": self.opts.name,
            "TTL": f"{self.opts.session_ttl:g}s",
            "LockDelay": f"{self.opts.lock_delay:g}s",
        }
        resp = self.client.request("PUT", "/v1/session/create", body=json.dumps(body).encode())
        self.session = resp.json()["ID"]

    def renew_forever(self) -> None:
        """Renew at half the TTL until stopped; a session the servers no longer know means the
        lock is gone."""
        failures = 0
        while not self.stop.wait(self.opts.session_ttl / 2):
            try:
                resp = self.client.request(
                    "PUT", f"/v1/session/renew/{self.session}", ok=(200, 404)
                )
                failures = 0
                if resp.status == 404:
                    self.lost.set()
                    return
            except APIError:
                failures += 1
                if failures > self.opts.monitor_retry:
                    self.lost.set()
                    return

    def destroy_session(self) -> None:
        if self.session:
            try:
                self.client.request("PUT", f"/v1/session/destroy/{self.session}")
            except APIError:
                pass

    # ------------------------------------------------------------- acquire
    def acquire(self) -> None:
        deadline = time.monotonic() + self.opts.timeout if self.opts.timeout else None
        if self.opts.limit == 1:
            self._acquire_lock(deadline)
        else:
            self._acquire_semaphore(deadline)

    def _check_deadline(self, deadline: float | None) -> None:
        if self.stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            raise Interrupted("Shutdown triggered or timeout during lock acquisition")

    def _pause(self, deadline: float | None) -> None:
        pause = min(RETRY_PAUSE, max(self.opts.lock_delay, 0.2))
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        self.stop.wait(pause)

    def _acquire_lock(self, deadline: float | None) -> None:
        index = 0
        while True:
            self._check_deadline(deadline)
            index, entries = _kv_get(self.client, self.lock_key, index)
            entry = entries[0] if entries else None
            if entry is not None and entry.get("Flags") != LOCK_FLAG:
                raise LockError("Existing key does not match lock use")
            if entry is not None and entry.get("Session"):
                if entry["Session"] == self.session:
                    return
                continue  # held by someone else: wait for it to change
            if _put(self.client, self.lock_key, b"", acquire=self.session, flags=LOCK_FLAG):
                return
            self._pause(deadline)  # lock-delay after the last holder's session died
            index = 0

    def _semaphore_state(self) -> tuple[int, dict[str, Any] | None, dict[str, Any]]:
        index, entries = _kv_get(self.client, self.opts.prefix + "/", recurse=True)
        lock = None
        contenders: dict[str, Any] = {}
        for e in entries or []:
            if e["Key"] == self.lock_key:
                lock = e
            elif e["Key"].rsplit("/", 1)[-1] and e["Key"].count("/") == self.lock_key.count("/"):
                contenders[e["Key"].rsplit("/", 1)[-1]] = e
        return index, lock, contenders

    def _decode(self, lock: dict[str, Any] | None) -> dict[str, Any]:
        if lock is None:
            return {"Limit": self.opts.limit, "Holders": {}}
        if lock.get("Flags") != SEMAPHORE_FLAG:
            raise LockError("Existing key does not match lock use")
        try:
            state = json.loads(base64.b64decode(lock.get("Value") or ""))
        except ValueError as exc:
            raise LockError(f"Failed to decode semaphore lock: {exc}") from exc
        if state.get("Limit") != self.opts.limit:
            raise LockError(
                f"Semaphore limit conflict (lock: {state.get('Limit')}, local: {self.opts.limit})"
            )
        state.setdefault("Holders", {})
        return state

    def _acquire_semaphore(self, deadline: float | None) -> None:
        contender = f"{self.opts.prefix}/{self.session}"
        if not _put(self.client, contender, b"", acquire=self.session, flags=SEMAPHORE_FLAG):
            raise LockError("Failed to make contender entry")
        while True:
            self._check_deadline(deadline)
            index, lock, contenders = self._semaphore_state()
            state = self._decode(lock)
            live = {s for s, e in contenders.items() if e.get("Session") == s}
            holders = {s: True for s in state["Holders"] if s in live}
            if self.session in holders:
                return
            if len(holders) < self.opts.limit:
                holders[self.session] = True
                body = json.dumps({"Limit": self.opts.limit, "Holders": holders}).encode()
                cas = lock["ModifyIndex"] if lock else 0
                if _put(self.client, self.lock_key, body, cas=cas, flags=SEMAPHORE_FLAG):
                    return
                continue  # someone else changed it first: look again
            _kv_get(self.client, self.opts.prefix + "/", index, recurse=True)  # wait for a change

    # ------------------------------------------------------------- monitor
    def still_held(self) -> bool:
        if self.opts.limit == 1:
            _, entries = _kv_get(self.client, self.lock_key)
            return bool(entries) and entries[0].get("Session") == self.session
        _, lock, contenders = self._semaphore_state()
        mine = contenders.get(self.session)
        holders = self._decode(lock)["Holders"] if lock else {}
        return bool(mine) and mine.get("Session") == self.session and self.session in holders

    def monitor_forever(self) -> None:
        """Blocking-query the lock; note when it is no longer ours. HTTP errors are retried
        `monitor_retry` times, one second apart."""
        key = self.lock_key if self.opts.limit == 1 else self.opts.prefix + "/"
        index, failures = 0, 0
        while not self.stop.is_set() and not self.lost.is_set():
            try:
                index, _ = _kv_get(self.client, key, index, recurse=self.opts.limit > 1)
                if not self.still_held():
                    self.lost.set()
                    return
                failures = 0
            except APIError:
                failures += 1
                if failures > self.opts.monitor_retry:
                    self.lost.set()
                    return
                self.stop.wait(1.0)

    # ------------------------------------------------------------- release
    def release(self) -> None:
        try:
            if self.opts.limit == 1:
                _put(self.client, self.lock_key, b"", release=self.session, flags=LOCK_FLAG)
                _, entries = _kv_get(self.client, self.lock_key)
                if entries and not entries[0].get("Session"):
                    self.client.request(
                        "DELETE", f"/v1/kv/{self.lock_key}", {"cas": entries[0]["ModifyIndex"]}
                    )
            else:
                self._release_semaphore()
        except APIError as exc:
            print(f"Lock release failed: {exc}", file=sys.stderr)
        finally:
            self.destroy_session()

    def _release_semaphore(self) -> None:
        for _ in range(10):
            _, lock, _contenders = self._semaphore_state()
            if lock is None:
                break
            state = self._decode(lock)
            holders = {s: v for s, v in state["Holders"].items() if s != self.session}
            if holders == state["Holders"]:
                break
            body = json.dumps({"Limit": self.opts.limit, "Holders": holders}).encode()
            if _put(
                self.client, self.lock_key, body, cas=lock["ModifyIndex"], flags=SEMAPHORE_FLAG
            ):
                break
        self.client.request("DELETE", f"/v1/kv/{self.opts.prefix}/{self.session}")
        _, lock, contenders = self._semaphore_state()
        if lock is not None and not self._decode(lock)["Holders"] and not contenders:
            self.client.request("DELETE", f"/v1/kv/{self.lock_key}", {"cas": lock["ModifyIndex"]})


def _parse(argv: list[str]) -> tuple[Options, Client] | str:
    try:
        bools, rest = split_bool_flags(
            argv,
            {"shell": True, "pass-stdin": False, "verbose": False, "child-exit-code": False},
        )
    except ValueError as exc:
        return str(exc)
    parser = argparse.ArgumentParser(prog="consulpy lock", allow_abbrev=False)
    add_http_flags(parser)
    parser.add_argument("-n", "--n", dest="n", type=int, default=1)
    parser.add_argument("-name", "--name", dest="name", default="")
    parser.add_argument("-timeout", "--timeout", dest="timeout", default="0s")
    parser.add_argument("-try", "--try", dest="try_", default="")
    parser.add_argument("-monitor-retry", "--monitor-retry", dest="monitor_retry", type=int)
    # consulpy extensions: Consul fixes these at 15s
    parser.add_argument("-session-ttl", "--session-ttl", dest="session_ttl", default="15s")
    parser.add_argument("-lock-delay", "--lock-delay", dest="lock_delay", default="15s")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(rest)
    if args.n < 1:
        return "Lock holder limit must be positive"
    positional = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if len(positional) < 2:
        return "Key prefix and child command must be specified"
    try:
        timeout = parse_duration(args.try_ or args.timeout)
        ttl = parse_duration(args.session_ttl)
        delay = parse_duration(args.lock_delay)
    except ValueError as exc:
        return str(exc)
    if timeout < 0:
        return "Timeout must be positive"
    monitor_retry = 3 if args.monitor_retry is None else args.monitor_retry
    if monitor_retry < 0:
        return "Number for 'monitor-retry' must be >= 0"
    prefix = positional[0].strip("/")
    child = positional[1:]
    name = args.name or f"Consul lock for '{' '.join(child)}' at '{prefix}'"
    opts = Options(
        prefix=prefix,
        child=child,
        limit=args.n,
        name=name,
        timeout=timeout,
        monitor_retry=monitor_retry,
        session_ttl=ttl,
        lock_delay=delay,
        shell=bools["shell"],
        pass_stdin=bools["pass-stdin"],
        verbose=bools["verbose"],
        child_exit_code=bools["child-exit-code"],
    )
    return opts, Client.from_args(args)


def _start_child(opts: Options) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CONSUL_LOCK_HELD="true")
    stdin = None if opts.pass_stdin else subprocess.DEVNULL
    if opts.shell:
        shell = os.environ.get("SHELL") or "/bin/sh"
        return subprocess.Popen([shell, "-c", " ".join(opts.child)], env=env, stdin=stdin)
    return subprocess.Popen(opts.child, env=env, stdin=stdin)


def _terminate(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after the grace period, as Consul does."""
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: list[str]) -> int:
    parsed = _parse(argv)
    if isinstance(parsed, str):
        return fail(parsed)
    opts, client = parsed
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    holder = Holder(client, opts, stop)
    try:
        holder.create_session()
    except APIError as exc:
        return fail(f"Error creating session: {exc}")
    renewer = threading.Thread(target=holder.renew_forever, daemon=True)
    renewer.start()
    try:
        try:
            if opts.verbose:
                print(f"Attempting lock acquisition on {opts.prefix}", file=sys.stderr)
            holder.acquire()
        except (LockError, APIError) as exc:
            return fail(f"Lock acquisition failed: {exc}")
        if opts.verbose:
            print("Lock acquired", file=sys.stderr)
        monitor = threading.Thread(target=holder.monitor_forever, daemon=True)
        monitor.start()
        child = _start_child(opts)
        while child.poll() is None:
            if holder.lost.wait(0.1) or stop.is_set():
                if holder.lost.is_set():
                    print("Lock lost, killing child", file=sys.stderr)
                _terminate(child)
                break
        code = child.wait()
    finally:
        stop.set()
        holder.release()
    if code != 0 and opts.child_exit_code:
        return 2
    return 0
