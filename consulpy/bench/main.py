"""`consulpy bench <name> [args]`: dispatches to consulpy.bench.<name>.main(argv)."""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "kv": "consulpy.bench.kv",
    "raft": "consulpy.bench.raft",
    "gossip": "consulpy.bench.gossip",
    "xds": "consulpy.bench.xds",
    "dns": "consulpy.bench.dns",
    "shutdown": "consulpy.bench.shutdown",
    "watch": "consulpy.bench.watch",
    "mem": "consulpy.bench.mem",
    "restore": "consulpy.bench.restore",
    "gossip-sim": "consulpy.bench.gossip_sim",
    "all": "consulpy.bench.all",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"Usage: consulpy bench <{'|'.join(BENCHES)}> [options]", file=sys.stderr)
        return 1
    module = importlib.import_module(BENCHES[argv[0]])
    return int(module.main(argv[1:]) or 0)
