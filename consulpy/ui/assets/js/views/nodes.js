// Nodes: the list (health, services, leader badge) and one node (checks, services, metadata,
// the sessions it holds, which may be destroyed here).

import { call, enc, get, watch } from "../api.js";
import { badge, h, healthBadges, metaList, replace, table } from "../dom.js";

export function list(ctx) {
  const { main, signal, href } = ctx;
  const search = h("input", { type: "search", placeholder: "Search nodes", "aria-label": "Search nodes" });
  const body = h("div", { id: "nodes" }, h("p", { class: "muted" }, "Loading…"));
  let rows = [];
  let leader = "";
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = rows.filter((n) => !q || n.Node.toLowerCase().includes(q) || n.Address.includes(q));
    replace(body, table(["Node", "Health", "Address", "Services"], shown.map((n) => {
      const count = (st) => n.Checks.filter((c) => c.Status === st).length;
      const isLeader = leader && leader.split(":")[0] === n.Address;
      return [
        [h("a", { href: href(`nodes/${enc(n.Node)}`) }, n.Node), isLeader ? [" ", badge("leader")] : null],
        healthBadges(count("passing"), count("warning"), count("critical")), n.Address,
        n.Services.map((s) => badge(s.Service)),
      ];
    }), { "aria-label": "Nodes" }));
  };
  search.addEventListener("input", draw);
  replace(main, h("h1", {}, "Nodes"), h("div", { class: "toolbar" }, search), body);
  get("/v1/status/leader").then((l) => { leader = l || ""; draw(); }).catch(() => {});
  watch("/v1/internal/ui/nodes", signal, (data) => {
    ctx.clearError();
    rows = data || [];
    draw();
  }, ctx.showError);
}

export function detail(ctx) {
  const { main, signal, href, args } = ctx;
  const name = args.name;
  const body = h("div", { id: "node" }, h("p", { class: "muted" }, "Loading…"));
  const sessions = h("div", { id: "sessions" });
  replace(main, h("p", { class: "crumbs" }, h("a", { href: href("nodes") }, "Nodes"), " / "),
    h("h1", {}, name), body, h("h2", {}, "Lock sessions"), sessions);
  watch(`/v1/internal/ui/node/${enc(name)}`, signal, (n) => {
    ctx.clearError();
    if (!n) {
      replace(body, h("p", {}, `No node named ${name} (or your token may not read it).`));
      return;
    }
    replace(body,
      h("dl", { class: "meta" }, h("dt", {}, "Address"), h("dd", {}, n.Address),
        h("dt", {}, "ID"), h("dd", {}, n.ID), h("dt", {}, "Datacenter"), h("dd", {}, n.Datacenter)),
      h("h2", {}, "Health checks"),
      n.Checks.length ? table(["Check", "Status", "Service", "Output"], n.Checks.map((c) => [
        c.Name, badge(c.Status, c.Status), c.ServiceName || "(node)",
        c.Output ? h("pre", { class: "output" }, c.Output) : "",
      ])) : h("p", { class: "muted" }, "no checks"),
      h("h2", {}, "Service instances"),
      n.Services.length ? table(["Service", "ID", "Address", "Tags"], n.Services.map((s) => [
        h("a", { href: href(`services/${enc(s.Service)}`) }, s.Service), s.ID,
        `${s.Address || n.Address}${s.Port ? `:${s.Port}` : ""}`, (s.Tags || []).map((t) => badge(t)),
      ])) : h("p", { class: "muted" }, "no services"),
      h("h2", {}, "Metadata"), metaList(n.Meta));
  }, ctx.showError);
  watch(`/v1/session/node/${enc(name)}`, signal, (data) => {
    const items = data || [];
    replace(sessions, items.length ? table(["Session", "Name", "Behavior", "TTL", ""], items.map((s) => [
      s.ID, s.Name || "", s.Behavior, s.TTL || "",
      h("button", { class: "danger", onclick: async () => {
        if (!confirm(`Destroy session ${s.ID}? Locks it holds are released.`)) return;
        try { await call("PUT", `/v1/session/destroy/${enc(s.ID)}`); } catch (err) { ctx.showError(err); }
      } }, "Destroy"),
    ])) : h("p", { class: "muted" }, "No sessions on this node."));
  }, ctx.showError);
}
