"""Bounded check output: what Consul keeps of a long body, script output or TTL note."""

from __future__ import annotations

DEFAULT_OUTPUT_MAX_SIZE = 4096


def decode_output(data: bytes) -> str:
    """Go keeps raw bytes and its JSON encoder turns invalid UTF-8 into U+FFFD; so do we."""
    return data.decode("utf-8", errors="replace")


class TailBuffer:
    """Keeps the last `size` bytes written, and counts everything written (Go's circbuf)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.total_written = 0
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self.total_written += len(data)
        self._buf += data
        if len(self._buf) > self.size:
            del self._buf[: len(self._buf) - self.size]

    @property
    def truncated(self) -> bool:
        return self.total_written > self.size

    def bytes(self) -> bytes:
        return bytes(self._buf)

    def text(self) -> str:
        return decode_output(self.bytes())

    def captured_text(self) -> str:
        """Script/Docker output: the tail, with Consul's "Captured n of total" note if cut."""
        text = self.text()
        if self.truncated:
            return f"Captured {self.size} of {self.total_written} bytes\n...\n{text}"
        return text


def truncate_ttl_output(output: str, max_size: int) -> str:
    """A TTL note longer than max_size bytes keeps its head and says how much it had."""
    raw = output.encode("utf-8")
    if len(raw) <= max_size:
        return output
    head = raw[:max_size].decode("utf-8", errors="ignore")
    return f"{head} ... (captured {max_size} of {len(raw)} bytes)"
