"""release_free_memory hands free pages between live allocations back to the OS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# In a fresh interpreter: 80 MiB of 4 KiB buffers, every eighth kept alive (long-lived rows
# between freed log entries), the rest freed; RSS (KiB) after the frees and after the trim.
SCRIPT = textwrap.dedent(
    """
    from consulpy.raft.heap import release_free_memory

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1])

    bufs = [bytes(4096) + bytes([i % 251]) for i in range(20_000)]
    kept = bufs[::8]
    del bufs
    freed = rss()
    ok = release_free_memory()
    print(ok, freed, rss(), len(kept))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_free_pages_between_live_buffers_are_returned() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    ok, freed_kib, trimmed_kib = out[0] == "True", int(out[1]), int(out[2])
    assert ok
    # About 70 MiB were freed but stayed resident; the trim gives most of it back.
    assert freed_kib - trimmed_kib > 40 * 1024, (freed_kib, trimmed_kib)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
@pytest.mark.parametrize(("env", "expected"), [({}, "True"), ({"MALLOC_ARENA_MAX": "8"}, "False")])
def test_the_arena_limit_is_set_unless_the_operator_chose_one(
    env: dict[str, str], expected: str
) -> None:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from consulpy.raft.heap import limit_arenas; print(limit_arenas(2))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**base, **env},
    )
    assert out.stdout.strip() == expected
