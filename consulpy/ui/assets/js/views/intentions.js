// Intentions: the list in precedence order, create/edit/delete (L4 allow/deny or L7
// permissions), and "would A be allowed to call B".

import { call, enc, get, watch } from "../api.js";
import { h, replace, table } from "../dom.js";

const exactPath = (src, dst) => `/v1/connect/intentions/exact?source=${enc(src)}&destination=${enc(dst)}`;

export function list(ctx) {
  const { main, signal, href } = ctx;
  const body = h("div", { id: "intentions" }, h("p", { class: "muted" }, "Loading…"));
  const src = h("input", { id: "check-source", placeholder: "source", "aria-label": "Source service" });
  const dst = h("input", { id: "check-destination", placeholder: "destination", "aria-label": "Destination service" });
  const verdict = h("span", { id: "check-result", role: "status" });
  const check = h("form", { class: "card toolbar", id: "intention-check" },
    h("strong", {}, "Would"), src, h("span", {}, "be allowed to call"), dst,
    h("button", { type: "submit" }, "Check"), verdict);
  check.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    verdict.textContent = "";
    try {
      const r = await get(`/v1/connect/intentions/check?source=${enc(src.value)}&destination=${enc(dst.value)}`);
      verdict.className = r.Allowed ? "allow" : "deny";
      verdict.textContent = r.Allowed ? "Allowed" : "Denied";
    } catch (err) {
      ctx.showError(err);
    }
  });
  replace(main, h("h1", {}, "Intentions"),
    h("div", { class: "toolbar" }, h("a", { class: "button", href: href("intentions/create"), id: "intention-create" }, "Create")),
    check, body);
  watch("/v1/connect/intentions", signal, (data) => {
    ctx.clearError();
    const items = data || [];
    replace(body, items.length ? table(["Source", "Destination", "Action", "Precedence", "Description", ""],
      items.map((i) => [
        i.SourceName, i.DestinationName,
        h("span", { class: i.Permissions ? "" : i.Action },
          i.Permissions ? `L7: ${i.Permissions.length} permission(s)` : i.Action),
        String(i.Precedence), i.Description || "",
        [h("a", { href: href(`intentions/edit?source=${enc(i.SourceName)}&destination=${enc(i.DestinationName)}`) }, "Edit"), " ",
          h("button", { class: "danger", "aria-label": `Delete ${i.SourceName} to ${i.DestinationName}`, onclick: async () => {
            if (!confirm(`Delete the intention ${i.SourceName} → ${i.DestinationName}?`)) return;
            try { await call("DELETE", exactPath(i.SourceName, i.DestinationName)); } catch (err) { ctx.showError(err); }
          } }, "Delete")],
      ]), { "aria-label": "Intentions" }) : h("p", { class: "muted" }, "No intentions."));
  }, ctx.showError);
}

export async function editor(ctx) {
  const { main, href, navigate } = ctx;
  const params = new URLSearchParams(location.search);
  const editing = location.pathname.endsWith("/edit");
  const src = h("input", { id: "ixn-source", required: true, value: params.get("source") || "", readonly: editing });
  const dst = h("input", { id: "ixn-destination", required: true, value: params.get("destination") || "", readonly: editing });
  const l4 = h("input", { type: "radio", name: "ixn-type", id: "ixn-l4", value: "l4", checked: true });
  const l7 = h("input", { type: "radio", name: "ixn-type", id: "ixn-l7", value: "l7" });
  const action = h("select", { id: "ixn-action" }, h("option", { value: "allow" }, "allow"), h("option", { value: "deny" }, "deny"));
  const perms = h("textarea", { id: "ixn-permissions", class: "code", spellcheck: "false",
    placeholder: '[{"Action": "allow", "HTTP": {"PathPrefix": "/api"}}]' });
  const desc = h("input", { id: "ixn-description" });
  const sync = () => { action.disabled = l7.checked; perms.disabled = !l7.checked; };
  l4.addEventListener("change", sync);
  l7.addEventListener("change", sync);
  if (editing) {
    try {
      const ixn = await get(exactPath(src.value, dst.value));
      desc.value = ixn.Description || "";
      if (ixn.Permissions) {
        l7.checked = true;
        perms.value = JSON.stringify(ixn.Permissions, null, 2);
      } else {
        action.value = ixn.Action;
      }
    } catch (err) {
      ctx.showError(err);
    }
  }
  sync();
  const form = h("form", { class: "card", id: "intention-form" },
    h("label", { for: "ixn-source" }, "Source service"), src,
    h("label", { for: "ixn-destination" }, "Destination service"), dst,
    h("fieldset", {}, h("legend", {}, "Type"),
      h("div", {}, l4, h("label", { for: "ixn-l4", style: "display:inline" }, " L4: allow or deny every connection")),
      h("div", {}, l7, h("label", { for: "ixn-l7", style: "display:inline" }, " L7: HTTP permissions (JSON)"))),
    h("label", { for: "ixn-action" }, "Action"), action,
    h("label", { for: "ixn-permissions" }, "Permissions"), perms,
    h("label", { for: "ixn-description" }, "Description"), desc,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Save"), " ",
      h("a", { href: href("intentions") }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    let body;
    if (l7.checked) {
      let parsed;
      try {
        parsed = JSON.parse(perms.value);
      } catch (err) {
        ctx.showError(`The permissions are not valid JSON: ${err.message}`);
        return;
      }
      body = { Permissions: parsed, Description: desc.value };
    } else {
      body = { Action: action.value, Description: desc.value };
    }
    try {
      await call("PUT", exactPath(src.value.trim(), dst.value.trim()), { body });
      navigate(href("intentions"));
    } catch (err) {
      ctx.showError(err);
    }
  });
  replace(main, h("p", { class: "crumbs" }, h("a", { href: href("intentions") }, "Intentions"), " / "),
    h("h1", {}, editing ? `${src.value} → ${dst.value}` : "Create an intention"), form);
}
