// Services: the list (health summary, kind, instances, tags; search and filters) and one
// service (instances with their checks, tags, meta; upstreams/downstreams; intentions).

import { currentDatacenter, enc, settings, watch } from "../api.js";
import { badge, h, healthBadges, metaList, replace, table, worst } from "../dom.js";
import { panel as metricsPanel } from "./metrics.js";

function health(s) {
  if (s.ChecksCritical) return "critical";
  if (s.ChecksWarning) return "warning";
  return "passing";
}

export function list(ctx) {
  const { main, signal, href } = ctx;
  const search = h("input", { type: "search", id: "service-search", placeholder: "Search name or tag",
    "aria-label": "Search services" });
  const state = h("select", { "aria-label": "Health", id: "service-health" },
    ["all", "passing", "warning", "critical"].map((s) => h("option", { value: s }, s === "all" ? "Any health" : s)));
  const kind = h("select", { "aria-label": "Kind", id: "service-kind" },
    h("option", { value: "*" }, "Any kind"), h("option", { value: "" }, "Services only"),
    h("option", { value: "connect-proxy" }, "connect-proxy"));
  const count = h("span", { class: "muted", id: "service-count" });
  const body = h("div", { id: "services" }, h("p", { class: "muted" }, "Loading…"));
  let rows = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = rows.filter((s) =>
      (!q || s.Name.toLowerCase().includes(q) || (s.Tags || []).some((t) => t.toLowerCase().includes(q))) &&
      (state.value === "all" || health(s) === state.value) &&
      (kind.value === "*" || (s.Kind || "") === kind.value));
    count.textContent = `${shown.length} of ${rows.length} services`;
    replace(body, shown.length
      ? table(["Service", "Health", "Kind", "Instances", "Tags"], shown.map((s) => [
        h("a", { href: href(`services/${enc(s.Name)}`) }, s.Name),
        healthBadges(s.ChecksPassing, s.ChecksWarning, s.ChecksCritical),
        s.Kind || "", String(s.InstanceCount),
        (s.Tags || []).map((t) => badge(t)),
      ]), { "aria-label": "Services" })
      : h("p", { class: "muted" }, rows.length ? "No service matches." : "No services registered."));
  };
  for (const el of [search, state, kind]) el.addEventListener("input", draw);
  replace(main, h("h1", {}, "Services"), h("div", { class: "toolbar" }, search, state, kind, count), body);
  watch("/v1/internal/ui/services", signal, (data) => {
    ctx.clearError();
    rows = data || [];
    draw();
    // When the list first stood on screen (read by the first-paint measurement in the tests).
    if (!performance.getEntriesByName("consulpy:services-drawn").length) {
      requestAnimationFrame(() => performance.mark("consulpy:services-drawn"));
    }
  }, ctx.showError);
}

function checkList(checks) {
  if (!checks.length) return h("p", { class: "muted" }, "no checks");
  return h("ul", { class: "checks" }, checks.map((c) => h("li", { "data-check": c.CheckID },
    badge(c.Status, c.Status), " ", h("strong", {}, c.Name), " ",
    h("span", { class: "muted" }, c.ServiceID ? `(${c.CheckID})` : `(node check ${c.CheckID})`),
    c.Output ? h("pre", { class: "output" }, c.Output) : null)));
}

function instance(entry, href) {
  const svc = entry.Service;
  const node = entry.Node;
  const addr = `${svc.Address || node.Address}${svc.Port ? `:${svc.Port}` : ""}`;
  const status = worst(entry.Checks.map((c) => c.Status));
  const upstreams = (svc.Proxy && svc.Proxy.Upstreams) || [];
  return h("section", { class: "instance", "data-instance": svc.ID, "aria-label": `Instance ${svc.ID}` },
    h("h3", {}, svc.ID, " ", badge(status, status)),
    h("dl", { class: "meta" },
      h("dt", {}, "Node"), h("dd", {}, h("a", { href: href(`nodes/${enc(node.Node)}`) }, node.Node)),
      h("dt", {}, "Address"), h("dd", {}, addr),
      h("dt", {}, "Tags"), h("dd", {}, (svc.Tags || []).length ? svc.Tags.map((t) => badge(t)) : "none"),
      svc.Kind ? [h("dt", {}, "Kind"), h("dd", {}, svc.Kind)] : null,
      upstreams.length ? [h("dt", {}, "Upstreams"), h("dd", {}, upstreams.map((u) =>
        badge(`${u.DestinationName} → ${u.LocalBindAddress || "127.0.0.1"}:${u.LocalBindPort}`)))] : null),
    h("h4", {}, "Metadata"), metaList(svc.Meta),
    h("h4", {}, "Checks"), checkList(entry.Checks));
}

function topologyList(items, href) {
  if (!items.length) return h("p", { class: "muted" }, "none");
  return table(["Service", "Health", "Linked by", "Intention"], items.map((s) => [
    h("a", { href: href(`services/${enc(s.Name)}`) }, s.Name),
    healthBadges(s.ChecksPassing, s.ChecksWarning, s.ChecksCritical),
    s.Source,
    h("span", { class: s.Intention.Allowed ? "allow" : "deny" },
      s.Intention.Allowed ? "allowed" : "denied",
      s.Intention.HasPermissions ? " (L7 permissions)" : "",
      s.Intention.DefaultAllow ? " (default)" : ""),
  ]));
}

function dashboard(name) {
  const tmpl = ((settings.UIConfig || {}).dashboard_url_templates || {}).service;
  if (!tmpl) return null;
  const url = tmpl.replaceAll("{{Service.Name}}", enc(name))
    .replaceAll("{{Datacenter}}", enc(currentDatacenter()));
  if (!/^https?:\/\//.test(url)) return null;
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "button" }, "Open dashboard");
}

export function detail(ctx) {
  const { main, signal, href, args } = ctx;
  const name = args.name;
  const instances = h("div", { id: "instances" }, h("p", { class: "muted" }, "Loading…"));
  const up = h("div", { id: "upstreams" });
  const down = h("div", { id: "downstreams" });
  const ixns = h("div", { id: "service-intentions" });
  replace(main,
    h("p", { class: "crumbs" }, h("a", { href: href("services") }, "Services"), " / "),
    h("h1", {}, name, " ", dashboard(name)),
    metricsPanel(name, signal),
    h("h2", {}, "Instances"), instances,
    h("div", { class: "row" },
      h("section", { style: "flex:1;min-width:320px" }, h("h2", {}, "Upstreams"), up),
      h("section", { style: "flex:1;min-width:320px" }, h("h2", {}, "Downstreams"), down)),
    h("h2", {}, "Intentions"), ixns,
    h("p", {}, h("a", { href: href(`intentions/create?destination=${enc(name)}`) }, "Create an intention to " + name)));
  watch(`/v1/health/service/${enc(name)}`, signal, (data) => {
    ctx.clearError();
    replace(instances, (data || []).length ? data.map((e) => instance(e, href))
      : h("p", { class: "muted" }, "No instances registered."));
  }, ctx.showError);
  watch(`/v1/internal/ui/service-topology/${enc(name)}?kind=`, signal, (topo) => {
    if (!topo) return;
    replace(up, topologyList(topo.Upstreams, href));
    replace(down, topologyList(topo.Downstreams, href));
  }, ctx.showError);
  const filter = enc(`SourceName == "${name}" or DestinationName == "${name}"`);
  watch(`/v1/connect/intentions?filter=${filter}`, signal, (data) => {
    const items = data || [];
    replace(ixns, items.length ? table(["Source", "Destination", "Action", "Precedence"], items.map((i) => [
      i.SourceName, i.DestinationName,
      h("span", { class: i.Permissions ? "" : i.Action }, i.Permissions ? `L7 (${i.Permissions.length} permissions)` : i.Action),
      String(i.Precedence),
    ])) : h("p", { class: "muted" }, "No intentions name this service."));
  }, ctx.showError);
}
