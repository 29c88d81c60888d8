// Config entries: list them by kind and write one as JSON (the body goes to PUT /v1/config
// as typed, so the agent's own error for bad JSON or a bad entry is what the person sees).

import { call, enc, get } from "../api.js";
import { h, replace, table } from "../dom.js";

const KINDS = ["service-defaults", "proxy-defaults", "service-router", "service-splitter",
  "service-resolver", "service-intentions", "mesh", "ingress-gateway", "terminating-gateway"];

export function screen(ctx) {
  const { main } = ctx;
  const kind = h("select", { id: "config-kind", "aria-label": "Kind" }, KINDS.map((k) => h("option", {}, k)));
  const body = h("div", { id: "config-list" });
  const text = h("textarea", { id: "config-json", class: "code", spellcheck: "false",
    "aria-label": "Config entry (JSON)" });
  text.value = '{\n  "Kind": "service-defaults",\n  "Name": "web",\n  "Protocol": "http"\n}\n';
  const saved = h("span", { class: "ok-note", role: "status" });
  const load = async () => {
    try {
      const items = (await get(`/v1/config/${enc(kind.value)}`)) || [];
      replace(body, items.length ? table(["Name", "Modified", ""], items.map((e) => [e.Name, String(e.ModifyIndex),
        h("button", { onclick: () => { text.value = JSON.stringify(e, null, 2); text.focus(); } }, "Edit"),
      ])) : h("p", { class: "muted" }, `No ${kind.value} entries.`));
    } catch (err) {
      ctx.showError(err);
    }
  };
  const form = h("form", { class: "card", id: "config-form" }, h("label", { for: "config-json" }, "Entry (JSON)"), text,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Write"), " ", saved));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    saved.textContent = "";
    try {
      await call("PUT", "/v1/config", { body: text.value, raw: true, contentType: "application/json" });
      saved.textContent = "Written.";
      load();
    } catch (err) {
      ctx.showError(err);
    }
  });
  kind.addEventListener("change", load);
  replace(main, h("h1", {}, "Config entries"), h("div", { class: "toolbar" }, kind), body, form);
  load();
}
