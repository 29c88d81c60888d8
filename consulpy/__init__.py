"""consulpy: a Consul-compatible service-discovery and service-mesh control plane."""

import os

from consulpy.version import __version__

# gRPC's fork handlers (pthread_atfork, on by default in grpc core) run in every child that
# fork() makes, also one that only execs a script check or Envoy. uvloop spawns with fork()
# (asyncio's subprocesses use vfork, which runs no handlers), and a child once died of a
# segfault inside them. No consulpy child uses gRPC before exec, so the handlers are off
# unless the operator set the variable. It must be set before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

__all__ = ["__version__"]
