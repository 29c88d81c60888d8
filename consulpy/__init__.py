"""consulpy: a Consul-compatible service-discovery and service-mesh control plane."""

from consulpy.version import __version__

__all__ = ["__version__"]
