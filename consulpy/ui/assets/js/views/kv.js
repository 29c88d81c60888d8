// Key/value: browse folders (keys ending in "/"), create keys and folders, edit a value in a
// code view, delete keys and whole folders, see the session that holds a lock on a key.

import { call, encPath, get, watch } from "../api.js";
import { badge, h, replace, table } from "../dom.js";

function decode(b64) {
  if (!b64) return "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function crumbs(path, href) {
  const parts = path.split("/").filter(Boolean);
  const out = [h("a", { href: href("kv/") }, "Key/Value"), " / "];
  let acc = "";
  for (const p of parts.slice(0, -1)) {
    acc += `${p}/`;
    out.push(h("a", { href: href(`kv/${encPath(acc)}`) }, p), " / ");
  }
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, out);
}

const folderOf = (key) => key.slice(0, key.lastIndexOf("/") + 1);

export function screen(ctx) {
  const path = ctx.args.path;
  if (path.endsWith("/edit")) return edit(ctx, path.slice(0, -"/edit".length));
  if (path === "create" || path.endsWith("/create")) return create(ctx, path.slice(0, -"create".length));
  if (path === "" || path.endsWith("/")) return folder(ctx, path);
  return edit(ctx, path);
}

function folder(ctx, prefix) {
  const { main, signal, href } = ctx;
  const body = h("div", { id: "kv-list" }, h("p", { class: "muted" }, "Loading…"));
  replace(main, crumbs(prefix + "x", href), h("h1", {}, prefix || "Key/Value"),
    h("div", { class: "toolbar" },
      h("a", { class: "button", href: href(`kv/${encPath(prefix)}create`), id: "kv-create" }, "Create")),
    body);
  watch(`/v1/kv/${encPath(prefix)}?keys&separator=/`, signal, (keys) => {
    ctx.clearError();
    const items = (keys || []).filter((k) => k !== prefix);
    if (!items.length) {
      replace(body, h("p", { class: "muted" }, "This folder is empty."));
      return;
    }
    replace(body, table(["Name", "", ""], items.map((k) => {
      const isFolder = k.endsWith("/");
      const rel = k.slice(prefix.length);
      const link = isFolder ? href(`kv/${encPath(k)}`) : href(`kv/${encPath(k)}/edit`);
      return [h("a", { href: link, "data-key": k }, rel), isFolder ? badge("folder") : "",
        h("button", { class: "danger", "aria-label": `Delete ${k}`, onclick: () => remove(ctx, k) }, "Delete")];
    }), { "aria-label": "Keys" }));
  }, ctx.showError);
}

async function remove(ctx, key) {
  const isFolder = key.endsWith("/");
  if (!confirm(isFolder ? `Delete the folder ${key} and every key in it?` : `Delete ${key}?`)) return;
  try {
    await call("DELETE", `/v1/kv/${encPath(key)}${isFolder ? "?recurse" : ""}`);
  } catch (err) {
    ctx.showError(err);
  }
}

function create(ctx, prefix) {
  const { main, href, navigate } = ctx;
  const name = h("input", { id: "kv-name", required: true, autocomplete: "off" });
  const value = h("textarea", { id: "kv-value", class: "code", spellcheck: "false" });
  const hint = h("p", { class: "muted" }, "A name ending in / creates a folder.");
  const form = h("form", { class: "card", id: "kv-form" },
    h("label", { for: "kv-name" }, `Key or folder name (in ${prefix || "/"})`), name, hint,
    h("label", { for: "kv-value" }, "Value"), value,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Save"), " ",
      h("a", { href: href(`kv/${encPath(prefix)}`) }, "Cancel")));
  name.addEventListener("input", () => { value.disabled = name.value.endsWith("/"); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    const key = prefix + name.value;
    const isFolder = key.endsWith("/");
    try {
      await call("PUT", `/v1/kv/${encPath(key)}`, {
        body: isFolder ? "" : value.value, raw: true, contentType: "text/plain; charset=utf-8",
      });
      navigate(href(`kv/${encPath(isFolder ? key : folderOf(key))}`));
    } catch (err) {
      ctx.showError(err);
    }
  });
  replace(main, crumbs(prefix + "x", href), h("h1", {}, "Create"), form);
  name.focus();
}

async function edit(ctx, key) {
  const { main, href, navigate, signal } = ctx;
  const value = h("textarea", { id: "kv-value", class: "code", spellcheck: "false", "aria-label": "Value" });
  const flags = h("input", { id: "kv-flags", inputmode: "numeric", value: "0" });
  const lock = h("div", { id: "kv-lock" });
  const saved = h("span", { class: "ok-note", role: "status" });
  const form = h("form", { class: "card", id: "kv-form" },
    h("label", { for: "kv-value" }, "Value"), value,
    h("label", { for: "kv-flags" }, "Flags"), flags,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Save"), " ",
      h("button", { type: "button", class: "danger", id: "kv-delete", onclick: async () => {
        if (!confirm(`Delete ${key}?`)) return;
        try {
          await call("DELETE", `/v1/kv/${encPath(key)}`);
          navigate(href(`kv/${encPath(folderOf(key))}`));
        } catch (err) { ctx.showError(err); }
      } }, "Delete"), " ", saved));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    saved.textContent = "";
    try {
      await call("PUT", `/v1/kv/${encPath(key)}?flags=${encodeURIComponent(flags.value)}`, {
        body: value.value, raw: true, contentType: "text/plain; charset=utf-8",
      });
      saved.textContent = "Saved.";
    } catch (err) {
      ctx.showError(err);
    }
  });
  replace(main, crumbs(key, href), h("h1", {}, key), lock, form);
  let first = true;
  watch(`/v1/kv/${encPath(key)}`, signal, async (rows) => {
    const row = rows && rows[0];
    if (!row) {
      replace(lock, h("p", { class: "muted" }, "This key does not exist (yet); saving creates it."));
      first = false;
      return;
    }
    if (first) {
      value.value = decode(row.Value);
      flags.value = String(row.Flags || 0);
      first = false;
    }
    if (row.Session) {
      let holder = "";
      try {
        const info = await get(`/v1/session/info/${encodeURIComponent(row.Session)}`);
        if (info && info[0]) holder = ` on node ${info[0].Node}${info[0].Name ? ` (${info[0].Name})` : ""}`;
      } catch { /* the lock line still names the session */ }
      replace(lock, h("p", {}, badge("locked", "warning"), ` Held by session ${row.Session}${holder}.`));
    } else {
      replace(lock);
    }
  }, ctx.showError);
}
