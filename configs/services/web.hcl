# The `web` demo service (`consulpy demo web`) and its Envoy sidecar, registered by the client
# agent it runs next to (docker-compose.yml: consul-client-1). services/web.json is the same
# definition in JSON; load one or the other, not both.
service {
  name = "web"
  id   = "web"
  # Registers (and its sidecar with it) under this service-identity token, which the
  # config job creates (configs/acl.hcl: a fixed, dev-only secret).
  token = "dddddddd-0000-4000-8000-00000000c002"
  # The port the app listens on (`consulpy demo web --port 8080`).
  port = 8080
  tags = ["demo"]
  meta {
    version = "1"
  }

  check {
    id       = "web-http"
    name     = "web HTTP /health"
    http     = "http://127.0.0.1:8080/health"
    method   = "GET"
    interval = "5s"
    timeout  = "2s"
  }

  connect {
    sidecar_service {
      proxy {
        config {
          # Envoy serves its Prometheus stats on http://<host>:20200/metrics (and nothing
          # else of its admin API); configs/observability/prometheus.yml scrapes it.
          envoy_prometheus_bind_addr = "0.0.0.0:20200"
        }
        # Services web calls through its sidecar. The sidecar listens on
        # 127.0.0.1:<local_bind_port> and forwards, over mTLS, to a healthy instance of
        # <destination_name>; the app calls http://127.0.0.1:9191/ (`consulpy demo web
        # --upstream http://127.0.0.1:9191`). Add one block per service web needs.
        upstreams = [
          {
            destination_name = "api"
            local_bind_port  = 9191
          }
        ]
      }
    }
  }
}
