"""The user-facing snapshot archive (GET/PUT /v1/snapshot, `consulpy snapshot`).

A gzipped tar holding `meta.json` (index, term, datacenter, time, format), `state.bin` (the
state store's own msgpack snapshot) and `SHA256SUMS`. Consul's archive layout is internal to
Consul, so this one is consulpy's own; what is guaranteed is that an archive saved from
consulpy restores into consulpy with identical KV, sessions, catalog and indexes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO


class Digesting:
    """A write-only file that passes bytes on and keeps their count and SHA-256 (the
    archive's state member is written through it, so its SHA256SUMS line needs no re-read)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.size = 0
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.sha.update(data)
        return self.out.write(data)


FORMAT = "consulpy-state-v1"
MAX_ARCHIVE = 256 << 20  # the default of limits.snapshot_max_size
# The decompressed state may be this many times the archive limit (it compresses well).
STATE_SIZE_FACTOR = 8
_MAX_SMALL = 1 << 20  # meta.json and SHA256SUMS are a few hundred bytes
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """A corrupt or foreign archive (the restore is refused and nothing changes)."""


def build(state: bytes, *, index: int, term: int, datacenter: str) -> bytes:
    buf = io.BytesIO()
    write(buf, state, index=index, term=term, datacenter=datacenter)
    return buf.getvalue()


def write(out: BinaryIO, state: bytes, *, index: int, term: int, datacenter: str) -> None:
    """Write the archive of a state held in memory into `out`."""
    write_file(
        out,
        io.BytesIO(state),
        size=len(state),
        sha256=hashlib.sha256(state).hexdigest(),
        index=index,
        term=term,
        datacenter=datacenter,
    )


def write_file(
    out: IO[bytes],
    state: IO[bytes],
    *,
    size: int,
    sha256: str,
    index: int,
    term: int,
    datacenter: str,
) -> None:
    """Write the archive into `out`, copying the state from a file in chunks (GET
    /v1/snapshot: the state was streamed to a file, its size and digest taken on the way)."""
    meta = {
        "ID": f"{term}-{index}-{int(time.time() * 1000)}",
        "Index": index,
        "Term": term,
        "Datacenter": datacenter,
        "Size": size,
        "Version": 1,
        "Format": FORMAT,
        "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta_bytes = json.dumps(meta, indent=2, sort_keys=True).encode()
    sums = (f"{hashlib.sha256(meta_bytes).hexdigest()}  meta.json\n{sha256}  state.bin\n").encode()
    members: list[tuple[str, int, IO[bytes]]] = [
        ("meta.json", len(meta_bytes), io.BytesIO(meta_bytes)),
        ("state.bin", size, state),
        ("SHA256SUMS", len(sums), io.BytesIO(sums)),
    ]
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", copybufsize=_CHUNK) as tar,
    ):
        for name, length, data in members:
            info = tarfile.TarInfo(name)
            info.size = length
            info.mtime = int(time.time())
            info.mode = 0o600
            tar.addfile(info, data)


def read(archive: bytes, max_size: int = MAX_ARCHIVE) -> tuple[dict[str, Any], bytes]:
    """Check and open an archive held in memory (the CLI's files)."""
    if len(archive) > max_size:
        raise ArchiveError(f"snapshot archive larger than {max_size} bytes")
    return read_file(io.BytesIO(archive), max_size)


def read_file(src: BinaryIO, max_size: int = MAX_ARCHIVE) -> tuple[dict[str, Any], bytes]:
    """Check and open an archive file: (meta, state bytes); ArchiveError if anything is off."""
    buf = io.BytesIO()
    meta = verify_file(src, max_size, buf.write)
    return meta, buf.getvalue()


def verify_file(
    src: BinaryIO, max_size: int = MAX_ARCHIVE, sink: Callable[[bytes], object] | None = None
) -> dict[str, Any]:
    """Check an archive file completely, then (if `sink` is given) pass its state to `sink`
    in chunks; returns the metadata. ArchiveError if anything is off, before `sink` sees a
    byte.

    Two passes so memory stays bounded for whatever arrives: the first streams every member
    through SHA-256 in chunks (a corrupt or hostile upload is refused having used a buffer),
    the second hands the verified state on, checking it is still the bytes verified."""
    try:
        return _verify(src, max_size, sink)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:  # while reading a member
        raise ArchiveError(f"failed to read snapshot archive: {exc}") from exc


def _verify(src: BinaryIO, max_size: int, sink: Callable[[bytes], object] | None) -> dict[str, Any]:
    max_state = STATE_SIZE_FACTOR * max_size  # decompressed: a gzip bomb stops here
    digests: dict[str, str] = {}
    small: dict[str, bytes] = {}
    for member, handle in _members(src):
        if member.name in digests:
            raise ArchiveError(f"{member.name} appears twice in snapshot archive")
        if member.size > max_state:
            raise ArchiveError(
                f"{member.name} in snapshot archive is larger than {max_state} bytes"
            )
        if member.name == "state.bin":
            h = hashlib.sha256()
            while chunk := handle.read(_CHUNK):
                h.update(chunk)
            digests[member.name] = h.hexdigest()
        else:
            if member.size > _MAX_SMALL:
                raise ArchiveError(f"{member.name} in snapshot archive is too large")
            small[member.name] = handle.read()
            digests[member.name] = hashlib.sha256(small[member.name]).hexdigest()
    missing = {"meta.json", "state.bin", "SHA256SUMS"} - set(digests)
    if missing:
        raise ArchiveError(f"snapshot archive is missing {', '.join(sorted(missing))}")
    expected: dict[str, str] = {}
    for line in small["SHA256SUMS"].decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    for name in ("meta.json", "state.bin"):
        if digests[name] != expected.get(name):
            raise ArchiveError(f"checksum mismatch for {name} in snapshot archive")
    try:
        meta = json.loads(small["meta.json"])
    except ValueError as exc:
        raise ArchiveError(f"bad snapshot metadata: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("Format") != FORMAT:
        got = meta.get("Format") if isinstance(meta, dict) else None
        raise ArchiveError(f"unsupported snapshot format {got!r}")
    if sink is None:
        return meta
    src.seek(0)
    for member, handle in _members(src):
        if member.name == "state.bin":
            h = hashlib.sha256()
            while chunk := handle.read(_CHUNK):
                h.update(chunk)
                sink(chunk)
            if h.hexdigest() != digests["state.bin"]:
                raise ArchiveError("snapshot archive changed while it was read")
            return meta
    raise ArchiveError("snapshot archive is missing state.bin")


def _members(src: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    try:
        with (
            gzip.GzipFile(fileobj=src, mode="rb") as gz,
            tarfile.open(fileobj=gz, mode="r|") as tar,
        ):
            for member in tar:
                if not member.isfile() or member.name not in (
                    "meta.json",
                    "state.bin",
                    "SHA256SUMS",
                ):
                    raise ArchiveError(f"unexpected entry {member.name!r} in snapshot archive")
                handle = tar.extractfile(member)
                assert handle is not None
                yield member, handle
            # Read the gzip stream to its end: its CRC and length are checked only there, so
            # an archive cut inside the trailer (or tar padding) is refused too.
            while gz.read(_CHUNK):
                pass
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise ArchiveError(f"failed to read snapshot archive: {exc}") from exc
