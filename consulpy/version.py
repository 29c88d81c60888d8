"""Version strings reported to users and to Consul clients."""

__version__ = "0.1.0"

# The Consul release whose HTTP API behaviour we follow. Clients such as the Go `api` package
# and Prometheus read `Config.Version` from /v1/agent/self; they expect a Consul-style version.
CONSUL_COMPAT_VERSION = "1.19.2"
