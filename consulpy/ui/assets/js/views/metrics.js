// A service's traffic from Prometheus (ui_config.metrics_provider = "prometheus"), read
// through the agent's metrics proxy (/v1/internal/ui/metrics-proxy/). The series are the
// Envoy sidecars' own: the consul_source_* labels come from the stats tags the bootstrap sets,
// "public_listener" is the inbound listener's stat prefix. Refreshed every 10 s while shown.

import { currentDatacenter, get, poll, settings } from "../api.js";
import { h, replace, table } from "../dom.js";

const PROXY = "/v1/internal/ui/metrics-proxy/api/v1/query?query=";
const REFRESH_MS = 10000;

export function enabled() {
  const ui = settings.UIConfig || {};
  return ui.metrics_provider === "prometheus" && Boolean(ui.metrics_proxy_enabled);
}

function quote(s) {
  return `"${String(s).replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function queries(name, dc) {
  const src = `consul_source_service=${quote(name)},consul_source_datacenter=${quote(dc)}`;
  const http = `${src},envoy_http_conn_manager_prefix="public_listener"`;
  const tcp = `${src},envoy_tcp_prefix="public_listener"`;
  const total = `sum(rate(envoy_http_downstream_rq_total{${http}}[1m]))`;
  return [
    ["Requests per second", total, (v) => v.toFixed(2)],
    ["Errors (5xx)", `100 * sum(rate(envoy_http_downstream_rq_xx{${http},envoy_response_code_class="5"}[1m])) / ${total}`,
      (v) => `${v.toFixed(1)} %`],
    ["Latency p99", `histogram_quantile(0.99, sum by (le) (rate(envoy_http_downstream_rq_time_bucket{${http}}[1m])))`,
      (v) => `${v.toFixed(0)} ms`],
    ["Inbound bytes per second", `sum(rate(envoy_tcp_downstream_cx_rx_bytes_total{${tcp}}[1m]))`,
      (v) => v.toFixed(0)],
  ];
}

async function value(query, signal) {
  const data = await get(PROXY + encodeURIComponent(query), { signal });
  const result = (data && data.data && data.data.result) || [];
  if (!result.length) return null;
  const v = Number(result[0].value[1]);
  return Number.isFinite(v) ? v : null;
}

// The panel for one service, or null when no Prometheus provider is configured.
export function panel(name, signal) {
  if (!enabled()) return null;
  const body = h("div", { id: "service-metrics" }, h("p", { class: "muted" }, "Loading metrics…"));
  const rows = queries(name, currentDatacenter());
  poll(async () => {
    const values = await Promise.all(rows.map(([, q]) => value(q, signal)));
    replace(body, table(["Metric", "Last minute"], rows.map(([label, , fmt], i) =>
      [label, values[i] === null ? "no data" : fmt(values[i])])));
  }, REFRESH_MS, signal, (err) => {
    replace(body, h("p", { class: "muted" }, `Metrics unavailable: ${err.message || err}`));
  });
  return h("section", {}, h("h2", {}, "Metrics"), body);
}
