// Building DOM nodes without innerHTML: every value from the API is text, never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value") {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A table from column titles and rows (each row an array of cells).
export function table(columns, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

export function badge(text, cls = "") {
  return h("span", { class: `badge ${cls}` }, text);
}

// The health of a list of check statuses as one word.
export function worst(statuses) {
  if (statuses.includes("critical")) return "critical";
  if (statuses.includes("warning")) return "warning";
  return "passing";
}

export function healthBadges(passing, warning, critical) {
  const out = [];
  if (passing) out.push(badge(`${passing} passing`, "passing"));
  if (warning) out.push(badge(`${warning} warning`, "warning"));
  if (critical) out.push(badge(`${critical} critical`, "critical"));
  if (!out.length) out.push(h("span", { class: "muted" }, "no checks"));
  return out;
}

export function metaList(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h("p", { class: "muted" }, "none");
  return h("dl", { class: "meta" }, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return [h("label", { for: id }, label), input];
}
