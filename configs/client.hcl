# Client agent of the dev cluster: docker-compose.yml runs two of these, one per host
# (container) that runs a demo service and its Envoy sidecar, and so does
# `consulpy dev-cluster up`. Each is started as
#
#   consulpy agent -config-file=client.hcl -config-file=encrypt.hcl \
#     -config-file=services/<service>.hcl -node=<name> -retry-join=<server> ...
#
# The twin (`consulpy dev-cluster`) adds flags for the data directory, 127.0.0.1 and free
# ports; flags win over this file.

# Must match the servers' datacenter.
datacenter = "dc1"

# Local services, checks and the agent's certificate cache live here.
data_dir = "/consul/data"

# Where the HTTP API (8500) and gRPC (8502, for Envoy) listen. 0.0.0.0 so that the demo
# containers and the published port reach it; restrict it on a real host.
client_addr = "0.0.0.0"

ports {
  # Envoy sidecars fetch their configuration (xDS) from the local agent's gRPC port;
  # `consulpy connect envoy -grpc-addr` points at it. -1 would disable it.
  grpc = 8502

  # Sidecar proxies get the first free port of this range unless their definition sets one.
  sidecar_min_port = 21000
  sidecar_max_port = 21255
}

# Try to join every second (Consul's default is 30s): a dev cluster wants to form quickly.
retry_interval = "1s"

connect {
  enabled = true
}

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
