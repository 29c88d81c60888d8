// The consulpy web UI: a router over the URL below the content path, the page frame, and the
// screens (one module each under views/). Every change goes through the same /v1 API a CLI uses.

import {
  currentDatacenter, explain, get, localDatacenter, setDatacenter, settings, setToken, token,
} from "./api.js";
import { h, replace } from "./dom.js";
import * as acl from "./views/acl.js";
import * as cluster from "./views/cluster.js";
import * as config from "./views/config.js";
import * as intentions from "./views/intentions.js";
import * as kv from "./views/kv.js";
import * as nodes from "./views/nodes.js";
import * as services from "./views/services.js";

const base = settings.ContentPath || "/ui/";
let current = null; // the AbortController of the screen shown

// A link to a screen of the datacenter shown (`dc` names another one).
export function href(rel, dc = currentDatacenter()) {
  return `${base}${encodeURIComponent(dc)}/${rel}`;
}

export function navigate(url, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

export function showError(err) {
  const text = typeof err === "string" ? err : explain(err);
  if (text) replace(document.getElementById("alert"), text);
}

export function clearError() {
  replace(document.getElementById("alert"));
}

const SECTIONS = [
  ["services", "Services"],
  ["nodes", "Nodes"],
  ["kv", "Key/Value"],
  ["intentions", "Intentions"],
  ["config", "Config entries"],
  ["overview", "Cluster"],
];
const ACL_SECTIONS = [
  ["acls/tokens", "Tokens"],
  ["acls/policies", "Policies"],
  ["acls/roles", "Roles"],
];

function header(section) {
  const links = [...SECTIONS, ...(settings.ACLsEnabled ? ACL_SECTIONS : [])].map(([rel, label]) =>
    h("a", { href: href(rel), "aria-current": section === rel ? "page" : null }, label));
  const dc = currentDatacenter();
  const dcSelect = h("select", { "aria-label": "Datacenter", id: "dc", onchange: switchDatacenter },
    h("option", {}, dc));
  get("/v1/catalog/datacenters").then((dcs) => {
    const names = dcs && dcs.length ? [...dcs] : [localDatacenter];
    if (!names.includes(dc)) names.push(dc); // a URL naming a datacenter nobody knows
    replace(dcSelect, names.map((d) => h("option", { selected: d === dc }, d)));
  }).catch(() => {});
  const who = settings.ACLsEnabled
    ? (token()
      ? h("span", { class: "who" }, h("span", { id: "whoami" }, "Logged in"), " ",
        h("button", { onclick: logout, id: "logout" }, "Log out"))
      : h("a", { href: `${base}login` }, "Log in"))
    : null;
  return [h("a", { class: "brand", href: href("services") }, "consulpy"),
    h("nav", { "aria-label": "Main" }, links), h("span", { class: "spacer" }), dcSelect, who];
}

// The same screen (path below the datacenter, and query) in the datacenter just chosen.
function switchDatacenter(ev) {
  const dc = ev.target.value;
  const rest = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "";
  const parts = rest.split("/");
  const below = parts.length > 1 ? parts.slice(1).join("/") : "services";
  navigate(href(below || "services", dc) + location.search);
}

function logout() {
  setToken("");
  navigate(`${base}login`);
}

// The first segment of each screen's path below `<dc>/`.
const SCREENS = new Set(["services", "nodes", "kv", "intentions", "config", "overview", "acls"]);

// Which screen a path names: [section, module, args].
function resolve(path) {
  let rest = path.startsWith(base) ? path.slice(base.length) : path.replace(/^\//, "");
  if (rest === "login" || rest === "settings") return ["login", acl.login, {}];
  const parts = rest.split("/");
  if (!parts[0] || parts.length < 2) return null;
  setDatacenter(decodeURIComponent(parts[0]));
  rest = parts.slice(1).join("/");
  const seg = rest.split("/");
  const dec = (s) => decodeURIComponent(s);
  switch (seg[0]) {
    case "services":
      if (seg[1]) return ["services", services.detail, { name: dec(seg[1]) }];
      return ["services", services.list, {}];
    case "nodes":
      if (seg[1]) return ["nodes", nodes.detail, { name: dec(seg[1]) }];
      return ["nodes", nodes.list, {}];
    case "kv": return ["kv", kv.screen, { path: seg.slice(1).map(dec).join("/") }];
    case "intentions":
      if (seg[1] === "create" || seg[1] === "edit") return ["intentions", intentions.editor, {}];
      return ["intentions", intentions.list, {}];
    case "config": return ["config", config.screen, {}];
    case "overview": return ["overview", cluster.screen, {}];
    case "acls": {
      const kind = seg[1] || "tokens";
      const section = `acls/${kind}`;
      if (seg[2]) return [section, acl.editor, { kind, id: dec(seg[2]) }];
      return [section, acl.list, { kind }];
    }
    default: return null;
  }
}

function render() {
  if (current) current.abort();
  current = new AbortController();
  clearError();
  const main = document.getElementById("main");
  let found = resolve(location.pathname);
  if (!found) {
    const rest = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "";
    const only = /^([^/]+)\/?$/.exec(rest); // `/ui/<dc>` alone
    if (SCREENS.has(rest.split("/")[0])) {
      // A screen's path without a datacenter (`/ui/services`): this agent's datacenter.
      history.replaceState(null, "", href(rest, localDatacenter) + location.search);
      found = resolve(location.pathname);
    } else if (location.pathname === base || location.pathname === base.replace(/\/$/, "") || only) {
      history.replaceState(null, "", href("services", only ? decodeURIComponent(only[1]) : localDatacenter));
      found = resolve(location.pathname);
    }
    if (!found) {
      replace(document.getElementById("top"), header(""));
      replace(main, h("h1", {}, "Not found"), h("p", {}, `Nothing here: ${location.pathname}`),
        h("a", { href: href("services") }, "Back to services"));
      return;
    }
  }
  const [section, screen, args] = found;
  replace(document.getElementById("top"), header(section));
  replace(main);
  const ctx = { signal: current.signal, main, args, href, navigate, showError, clearError, base };
  Promise.resolve(screen(ctx)).catch((err) => showError(err));
  if (settings.ACLsEnabled && token()) {
    get("/v1/acl/token/self").then((t) => {
      const who = document.getElementById("whoami");
      if (who) who.textContent = `Token: ${t.Description || t.AccessorID}`;
    }).catch(() => {});
  }
}

// Same-document navigation for links under the UI; other links behave as links.
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[href]");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(base) || a.target) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
  // Keyboard users continue from the new screen (unless it focused a field itself).
  if (!document.activeElement || document.activeElement === document.body) {
    document.getElementById("main").focus({ preventScroll: true });
  }
});
window.addEventListener("popstate", render);
// "/" jumps to the search box of a list, as many consoles do.
document.addEventListener("keydown", (ev) => {
  const search = document.querySelector("input[type=search]");
  if (ev.key === "/" && search && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
    ev.preventDefault();
    search.focus();
  }
});
render();
