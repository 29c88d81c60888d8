# The `api` demo service (`consulpy demo api`) and its Envoy sidecar, registered by the client
# agent it runs next to (docker-compose.yml: consul-client-2). services/api.json is the same
# definition in JSON; load one or the other, not both.
service {
  # The service name: what intentions, upstreams and DNS refer to.
  name = "api"
  # The instance ID, unique on this agent; `consulpy connect envoy -sidecar-for api` uses it.
  id   = "api"
  # Registers (and its sidecar with it) under this service-identity token, which the
  # config job creates (configs/acl.hcl: a fixed, dev-only secret).
  token = "dddddddd-0000-4000-8000-00000000c001"
  # The port the app listens on (`consulpy demo api --port 9090`). Its sidecar forwards
  # mesh traffic to 127.0.0.1:<port>.
  port = 9090
  tags = ["demo"]
  meta {
    version = "1"
  }

  # The agent calls this every `interval`; a non-2xx answer or a timeout makes the instance
  # critical, and sidecars stop sending it traffic.
  check {
    id       = "api-http"
    name     = "api HTTP /health"
    http     = "http://127.0.0.1:9090/health"
    method   = "GET"
    interval = "5s"
    timeout  = "2s"
  }

  # Register a sidecar proxy (`api-sidecar-proxy`) for this service. Its public port (mTLS,
  # intentions enforced there) is the first free one of ports.sidecar_min_port..max_port.
  # api calls nothing, so it has no upstreams.
  connect {
    sidecar_service {
      proxy {
        config {
          # Envoy serves its Prometheus stats on http://<host>:20200/metrics (and nothing
          # else of its admin API); configs/observability/prometheus.yml scrapes it.
          envoy_prometheus_bind_addr = "0.0.0.0:20200"
        }
      }
    }
  }
}
