// ACLs: log in with a token (kept in this browser's localStorage), and list, create and edit
// tokens, policies and roles.

import { call, enc, get, setToken, settings, token, watch } from "../api.js";
import { badge, h, replace, table } from "../dom.js";

export function login(ctx) {
  const { main, navigate, href } = ctx;
  const secret = h("input", { type: "password", id: "login-token", autocomplete: "off", required: true });
  const form = h("form", { class: "card", id: "login-form" },
    h("label", { for: "login-token" }, "Token (SecretID)"), secret,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Log in")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    const previous = token();
    setToken(secret.value.trim());
    try {
      await get("/v1/acl/token/self");
      navigate(href("services"));
    } catch (err) {
      setToken(previous);
      ctx.showError(err.status === 403 ? "This token is not valid here (ACL not found)." : err);
    }
  });
  replace(main, h("h1", {}, "Log in"),
    settings.ACLsEnabled ? h("p", {}, "ACLs are enabled on this agent: what you see depends on the token.")
      : h("p", { class: "muted" }, "ACLs are disabled on this agent: no token is needed."),
    token() ? h("p", {}, "A token is stored in this browser. ",
      h("button", { onclick: () => { setToken(""); navigate(`${ctx.base}login`); } }, "Forget it")) : null,
    form);
  secret.focus();
}

const KINDS = {
  tokens: { title: "Tokens", one: "token", list: "/v1/acl/tokens", item: "/v1/acl/token", id: "AccessorID" },
  policies: { title: "Policies", one: "policy", list: "/v1/acl/policies", item: "/v1/acl/policy", id: "ID" },
  roles: { title: "Roles", one: "role", list: "/v1/acl/roles", item: "/v1/acl/role", id: "ID" },
};

const names = (links) => (links || []).map((l) => l.Name || l.ID);

export function list(ctx) {
  const { main, signal, href, args } = ctx;
  const kind = KINDS[args.kind];
  if (!kind) { replace(main, h("h1", {}, "Not found")); return; }
  const body = h("div", { id: "acl-list" }, h("p", { class: "muted" }, "Loading…"));
  replace(main, h("h1", {}, kind.title),
    h("div", { class: "toolbar" }, h("a", { class: "button", id: "acl-create", href: href(`acls/${args.kind}/create`) }, `Create a ${kind.one}`)),
    body);
  watch(kind.list, signal, (items) => {
    ctx.clearError();
    items = items || [];
    let cols; let rows;
    const link = (item, text) => h("a", { href: href(`acls/${args.kind}/${enc(item[kind.id])}`) }, text);
    if (args.kind === "tokens") {
      cols = ["Accessor", "Description", "Policies and identities", "Roles", "Local"];
      rows = items.map((t) => [link(t, t.AccessorID), t.Description || "", [
        names(t.Policies).map((n) => badge(n)),
        (t.ServiceIdentities || []).map((i) => badge(`service: ${i.ServiceName}`)),
        (t.NodeIdentities || []).map((i) => badge(`node: ${i.NodeName}`)),
      ], names(t.Roles).map((n) => badge(n)), t.Local ? "yes" : "no"]);
    } else if (args.kind === "policies") {
      cols = ["Name", "Description", "Datacenters"];
      rows = items.map((p) => [link(p, p.Name), p.Description || "", (p.Datacenters || []).join(", ") || "all"]);
    } else {
      cols = ["Name", "Description", "Policies"];
      rows = items.map((r) => [link(r, r.Name), r.Description || "", names(r.Policies).map((n) => badge(n))]);
    }
    replace(body, items.length ? table(cols, rows, { "aria-label": kind.title }) : h("p", { class: "muted" }, "None."));
  }, ctx.showError);
}

const linkList = (text) => text.split(",").map((s) => s.trim()).filter(Boolean).map((Name) => ({ Name }));

export async function editor(ctx) {
  const { main, href, navigate, args } = ctx;
  const kind = KINDS[args.kind];
  const creating = args.id === "create";
  let item = {};
  if (!creating) {
    try { item = await get(`${kind.item}/${enc(args.id)}`); } catch (err) { ctx.showError(err); return; }
  }
  const fields = [];
  const input = (id, label, value, tag = "input") => {
    const el = h(tag, { id, class: tag === "textarea" ? "code" : null, spellcheck: "false" });
    el.value = value || "";
    fields.push(h("label", { for: id }, label), el);
    return el;
  };
  const name = args.kind === "tokens" ? null : input("acl-name", "Name", item.Name);
  const desc = input("acl-description", "Description", item.Description);
  const rules = args.kind === "policies" ? input("acl-rules", "Rules (HCL or JSON)", item.Rules, "textarea") : null;
  const policies = args.kind !== "policies" ? input("acl-policies", "Policies (names, comma separated)", names(item.Policies).join(", ")) : null;
  const roles = args.kind === "tokens" ? input("acl-roles", "Roles (names, comma separated)", names(item.Roles).join(", ")) : null;
  const form = h("form", { class: "card", id: "acl-form" }, fields,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Save"), " ",
      creating ? null : h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete this ${kind.one}?`)) return;
        try { await call("DELETE", `${kind.item}/${enc(args.id)}`); navigate(href(`acls/${args.kind}`)); } catch (err) { ctx.showError(err); }
      } }, "Delete"), " ", h("a", { href: href(`acls/${args.kind}`) }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    // An edit keeps what this form does not show (identities, datacenters, expiry, ...).
    const body = creating ? {} : { ...item };
    for (const stamp of ["Hash", "CreateIndex", "ModifyIndex"]) delete body[stamp];
    body.Description = desc.value;
    if (name) body.Name = name.value;
    if (rules) body.Rules = rules.value;
    if (policies) body.Policies = linkList(policies.value);
    if (roles) body.Roles = linkList(roles.value);
    if (!creating) body[kind.id] = args.id;
    try {
      await call("PUT", creating ? kind.item : `${kind.item}/${enc(args.id)}`, { body });
      navigate(href(`acls/${args.kind}`));
    } catch (err) {
      ctx.showError(err);
    }
  });
  const secret = args.kind === "tokens" && item.SecretID
    ? h("p", {}, "Secret: ", h("code", {}, item.SecretID)) : null;
  replace(main, h("p", { class: "crumbs" }, h("a", { href: href(`acls/${args.kind}`) }, kind.title), " / "),
    h("h1", {}, creating ? `Create a ${kind.one}` : (item.Name || item.Description || args.id)), secret, form);
}
