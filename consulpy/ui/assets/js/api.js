// Talking to the agent's /v1 API: the token, Consul's errors in words a person understands,
// and blocking queries for live screens.

const SETTINGS_EL = document.getElementById("consulpy-settings");
export const settings = JSON.parse(SETTINGS_EL ? SETTINGS_EL.textContent : "{}");
const TOKEN_KEY = "consulpy:token";

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(secret) {
  if (secret) localStorage.setItem(TOKEN_KEY, secret);
  else localStorage.removeItem(TOKEN_KEY);
}

// The datacenter the screens show (the URL's `/ui/<dc>/` segment). Every /v1 call carries it
// as `?dc=`, as Consul's UI does, so reads and writes reach that datacenter's servers.
export const localDatacenter = settings.LocalDatacenter || "dc1";
let datacenter = localDatacenter;

export function currentDatacenter() {
  return datacenter;
}

export function setDatacenter(dc) {
  datacenter = dc || localDatacenter;
}

// /v1/agent/* is this agent's own state and the datacenter list is the same wherever it is
// asked: those go without `dc`. A path that names its `dc` keeps it.
export function withDatacenter(path) {
  if (!path.startsWith("/v1/") || path.startsWith("/v1/agent/") ||
      path.startsWith("/v1/catalog/datacenters") || /[?&]dc=/.test(path)) return path;
  return `${path}${path.includes("?") ? "&" : "?"}dc=${encodeURIComponent(datacenter)}`;
}

export class APIError extends Error {
  constructor(status, text, path) {
    super(text);
    this.status = status;
    this.path = path;
  }
}

// The message shown for a failed call.
export function explain(err) {
  if (err.name === "AbortError") return "";
  if (!(err instanceof APIError)) return `Cannot reach the agent: ${err.message}`;
  const text = (err.message || "").trim();
  if (/No cluster leader|no leader/i.test(text)) {
    return "No leader: the servers have not elected a leader, so nothing can be read or " +
      "written right now (is a majority of the servers running?).\n" + `(${err.path}: ${text})`;
  }
  if (/^No path to datacenter/.test(text)) {
    return `No path to datacenter ${currentDatacenter()}: its servers are unknown or not alive ` +
      `in the WAN pool.\n(${err.path}: ${text})`;
  }
  if (err.status === 403) {
    return `Permission denied (403) for ${err.path}:\n${text || "ACL not found"}`;
  }
  return `The agent answered ${err.status} for ${err.path}:\n${text || "(no message)"}`;
}

export async function call(method, path, { body, signal, raw = false, contentType } = {}) {
  const headers = {};
  const secret = token();
  if (secret) headers["X-Consul-Token"] = secret;
  let payload = body;
  if (body !== undefined && !raw) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  } else if (contentType) {
    headers["Content-Type"] = contentType;
  }
  const resp = await fetch(withDatacenter(path), { method, headers, body: payload, signal });
  const text = await resp.text();
  if (!resp.ok) throw new APIError(resp.status, text, `${method} ${path.split("?")[0]}`);
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  return { data, index: Number(resp.headers.get("X-Consul-Index") || 0), resp };
}

export const get = (path, opts) => call("GET", path, opts).then((r) => r.data);

// Calls `onData(data)` now and again each time the result changes (blocking queries), until
// `signal` aborts. A 404 is passed on as null. Errors go to `onError` and the watch retries.
export async function watch(path, signal, onData, onError) {
  let index = 0;
  let delay = 500;
  const sep = path.includes("?") ? "&" : "?";
  while (!signal.aborted) {
    try {
      const url = index ? `${path}${sep}index=${index}&wait=60s` : path;
      let result;
      try {
        result = await call("GET", url, { signal });
      } catch (err) {
        if (err instanceof APIError && err.status === 404) {
          result = { data: null, index: 0, resp: null };
        } else {
          throw err;
        }
      }
      const next = result.index;
      if (!index || next !== index || !next) onData(result.data);
      if (!next) {
        await pause(2000, signal);
        index = 0;
      } else {
        index = next < index ? 0 : next;
      }
      delay = 500;
    } catch (err) {
      if (signal.aborted) return;
      if (onError) onError(err);
      await pause(delay, signal);
      delay = Math.min(delay * 2, 10000);
    }
  }
}

// Polling for reads that do not block (cluster status).
export async function poll(fn, every, signal, onError) {
  while (!signal.aborted) {
    try { await fn(); } catch (err) { if (!signal.aborted && onError) onError(err); }
    await pause(every, signal);
  }
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export const enc = encodeURIComponent;
// A KV key or other path whose slashes stay slashes.
export const encPath = (p) => p.split("/").map(encodeURIComponent).join("/");
