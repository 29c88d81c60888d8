"""statsd and DogStatsD sinks: every record becomes one line sent over UDP, lines batched
into datagrams of at most 1432 bytes (go-metrics' size) and flushed at least every 100 ms.

statsd has no labels: label values are folded into the key, as go-metrics does
(`consul.api.http.GET.v1_kv_`). DogStatsD sends them as tags (`|#method:GET,path:v1_kv_`)
with the agent's `dogstatsd_tags` appended, and a gauge's host part becomes a `host:` tag.
"""

from __future__ import annotations

import asyncio
import socket

import structlog

from consulpy.metrics.registry import Labels

log = structlog.get_logger("consulpy.metrics")

MAX_DATAGRAM = 1432
FLUSH_INTERVAL = 0.1


def _clean(text: str) -> str:
    return text.replace(":", "_").replace("|", "_").replace("\n", "_").replace(" ", "_")


class UDPLineSink:
    """Lines batched into UDP datagrams sent to one address."""

    def __init__(
        self,
        address: str,
        *,
        dogstatsd: bool = False,
        tags: list[str] | None = None,
        retry: bool = True,
    ) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"invalid address {address!r}: expected host:port")
        self.address = (host.strip("[]"), int(port))
        self.dogstatsd = dogstatsd
        self.tags = list(tags or [])
        self.retry = retry
        # DogStatsD: a host part in a key is spliced out into a host:<name> tag (go-metrics).
        self.hostname = ""
        self._resolved: tuple[str, int] | None = None
        self._sock = socket.socket(
            socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET, socket.SOCK_DGRAM
        )
        self._sock.setblocking(False)
        self._buf: list[str] = []
        self._size = 0
        self._task: asyncio.Task[None] | None = None
        self.resolve(strict=not retry)

    def resolve(self, strict: bool = False) -> bool:
        try:
            infos = socket.getaddrinfo(
                self.address[0], self.address[1], self._sock.family, socket.SOCK_DGRAM
            )
        except OSError as exc:
            if strict:
                raise ValueError(f"cannot resolve {self.address[0]}: {exc}") from exc
            return False
        self._resolved = infos[0][4][:2]
        return True

    # --- Sink ---------------------------------------------------------------------------

    def _line(self, key: str, value: float, kind: str, labels: Labels) -> None:
        if self.dogstatsd:
            tags = [f"{_clean(k)}:{_clean(v)}" for k, v in labels]
            if self.hostname and f".{self.hostname}." in key:
                key = key.replace(f".{self.hostname}.", ".", 1)
                tags.append(f"host:{self.hostname}")
            tags += self.tags
            suffix = f"|#{','.join(tags)}" if tags else ""
            line = f"{_clean(key)}:{_num(value)}|{kind}{suffix}"
        else:
            if labels:
                key = ".".join([key, *(v for _, v in labels)])
            line = f"{_clean(key)}:{_num(value)}|{kind}"
        if self._size + len(line) + 1 > MAX_DATAGRAM:
            self.flush()
        self._buf.append(line)
        self._size += len(line) + 1

    def gauge(self, key: str, value: float, labels: Labels) -> None:
        self._line(key, value, "g", labels)

    def counter(self, key: str, value: float, labels: Labels) -> None:
        self._line(key, value, "c", labels)

    def sample(self, key: str, value: float, labels: Labels) -> None:
        self._line(key, value, "ms", labels)

    # --- sending ------------------------------------------------------------------------

    def flush(self) -> None:
        if not self._buf:
            return
        data = ("\n".join(self._buf) + "\n").encode("utf-8")
        self._buf.clear()
        self._size = 0
        if self._resolved is None and not self.resolve():
            return
        try:
            self._sock.sendto(data, self._resolved)  # type: ignore[arg-type]
        except OSError:
            pass  # UDP: a full buffer or an unreachable port loses this batch, as statsd does

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.flush()
        self._sock.close()


def _num(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0")
