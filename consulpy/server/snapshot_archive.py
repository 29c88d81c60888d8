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
from typing import Any

FORMAT = "consulpy-state-v1"
MAX_ARCHIVE = 256 << 20


class ArchiveError(ValueError):
    """A corrupt or foreign archive (the restore is refused and nothing changes)."""


def build(state: bytes, *, index: int, term: int, datacenter: str) -> bytes:
    meta = {
        "ID": f"{term}-{index}-{int(time.time() * 1000)}",
        "Index": index,
        "Term": term,
        "Datacenter": datacenter,
        "Size": len(state),
        "Version": 1,
        "Format": FORMAT,
        "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta_bytes = json.dumps(meta, indent=2, sort_keys=True).encode()
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in (("meta.json", meta_bytes), ("state.bin", state))
    ).encode()
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, data in (("meta.json", meta_bytes), ("state.bin", state), ("SHA256SUMS", sums)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read(archive: bytes) -> tuple[dict[str, Any], bytes]:
    """Check and open an archive: (meta, state bytes); ArchiveError if anything is off."""
    if len(archive) > MAX_ARCHIVE:
        raise ArchiveError(f"snapshot archive larger than {MAX_ARCHIVE} bytes")
    files: dict[str, bytes] = {}
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(archive)) as gz,
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
                files[member.name] = handle.read()
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise ArchiveError(f"failed to read snapshot archive: {exc}") from exc
    missing = {"meta.json", "state.bin", "SHA256SUMS"} - set(files)
    if missing:
        raise ArchiveError(f"snapshot archive is missing {', '.join(sorted(missing))}")
    expected: dict[str, str] = {}
    for line in files["SHA256SUMS"].decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    for name in ("meta.json", "state.bin"):
        if hashlib.sha256(files[name]).hexdigest() != expected.get(name):
            raise ArchiveError(f"checksum mismatch for {name} in snapshot archive")
    try:
        meta = json.loads(files["meta.json"])
    except ValueError as exc:
        raise ArchiveError(f"bad snapshot metadata: {exc}") from exc
    if meta.get("Format") != FORMAT:
        raise ArchiveError(f"unsupported snapshot format {meta.get('Format')!r}")
    return meta, files["state.bin"]
