# Server agent of the dev cluster: docker-compose.yml runs three of these, and so does
# `consulpy dev-cluster up` (as local processes). Each is started as
#
#   consulpy agent -config-file=server.hcl -config-file=encrypt.hcl -node=<name> \
#     -retry-join=<other server> -retry-join=<other server>
#
# The twin (`consulpy dev-cluster`) adds flags for the data directory, 127.0.0.1 and free
# ports; flags win over this file.

# The datacenter every agent of the cluster belongs to. Change it on all agents at once.
# (dc2's agents load dc2/agent.hcl after this file: compose profile dc2, docs/multi-dc.md.)
datacenter = "dc1"

# The datacenter that holds the Connect CA, the config entries and the ACL objects of a
# federation; the others replicate them. Same value on every server of every datacenter.
primary_datacenter = "dc1"

# Where Raft's log and snapshots, the node ID and the gossip keyring live. In compose this
# is a named volume per server; the twin uses <data-dir>/<node name>.
data_dir = "/consul/data"

server = true

# How many servers to wait for before electing the first leader. Use 3 or 5 (never an even
# number); change it together with the number of servers in docker-compose.yml.
bootstrap_expect = 3

# Where the HTTP API (and DNS) listen. 0.0.0.0 so that other containers can reach it;
# restrict it on a real host.
client_addr = "0.0.0.0"

# Dev cluster timings: try to join every second (Consul's default is 30s), and the fastest
# Raft timings (raft_multiplier = 1, production grade on decent hardware; the default, 5,
# is gentler on slow machines but makes failover five times slower).
retry_interval = "1s"
# The same for the WAN pool, which servers join with -retry-join-wan: the other servers of
# this datacenter, and (compose profile dc2) dc2's server joins dc1's.
retry_interval_wan = "1s"
performance {
  raft_multiplier = 1
}

# Connect: the built-in CA signs the sidecars' certificates; servers run it.
connect {
  enabled = true
}

# Log level: trace, debug, info, warn or error.
log_level = "info"

# The web UI at http://<agent>:8500/ui/ (`/` redirects there). docs/ui.md.
ui_config {
  enabled = true
}

# Metrics: /v1/agent/metrics?format=prometheus is served while prometheus_retention_time is
# positive (Consul's rule; consulpy's default is 60s already, Consul's is 0 = off), and gauges
# carry no host name (the scrape target says which agent it is). Prometheus in
# docker-compose.yml (profile observability) scrapes every agent: configs/observability/.
telemetry {
  prometheus_retention_time = "60s"
  disable_hostname          = true
}
