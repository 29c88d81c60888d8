// The cluster: servers and the leader (Raft configuration), this agent's Raft state,
// autopilot health, and gossip members with their status. These reads do not block, so the
// screen polls them. For another datacenter, its servers answer the Raft and autopilot reads;
// gossip members are then the WAN pool's servers of that datacenter (this agent's LAN is not
// theirs), and this agent's Raft state is not shown.

import { APIError, currentDatacenter, explain, get, localDatacenter, poll } from "../api.js";
import { badge, h, replace, table } from "../dom.js";

const MEMBER_STATUS = { 0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed" };
const STATUS_CLASS = { alive: "passing", leaving: "warning", left: "warning", failed: "critical" };

async function autopilot() {
  try {
    return await get("/v1/operator/autopilot/health");
  } catch (err) {
    // 429 carries the (unhealthy) report itself.
    if (err instanceof APIError && err.status === 429) return JSON.parse(err.message);
    throw err;
  }
}

export function screen(ctx) {
  const { main, signal } = ctx;
  const dc = currentDatacenter();
  const remote = dc !== localDatacenter;
  const servers = h("div", { id: "servers" }, h("p", { class: "muted" }, "Loading…"));
  const raft = h("div", { id: "raft" });
  const pilot = h("div", { id: "autopilot" });
  const members = h("div", { id: "members" });
  replace(main, h("h1", {}, "Cluster"), h("h2", {}, "Servers"), servers,
    h("h2", {}, "Autopilot"), pilot,
    remote ? null : [h("h2", {}, "This agent's Raft state"), raft],
    h("h2", {}, remote ? `Servers of ${dc} in the WAN pool (gossip)` : "Members (gossip)"), members);
  const fail = (where) => (err) => replace(where, h("p", { class: "critical" }, explain(err)));
  poll(async () => {
    const [config, leader] = await Promise.all([get("/v1/operator/raft/configuration"), get("/v1/status/leader")]);
    ctx.clearError();
    replace(servers, h("p", {}, "Leader: ", h("strong", { id: "leader" }, leader || "no leader")),
      table(["Server", "Address", "Role", "Voter"], (config.Servers || []).map((s) => [
        s.Node, s.Address, s.Leader ? badge("leader", "passing") : "follower", s.Voter ? "yes" : "no",
      ]), { "aria-label": "Servers" }));
  }, 3000, signal, (err) => {
    ctx.showError(err);
    replace(servers, h("p", { class: "critical" }, explain(err).split("\n")[0]));
  });
  poll(async () => {
    const ap = await autopilot();
    replace(pilot, h("p", {}, ap.Healthy ? badge("healthy", "passing") : badge("unhealthy", "critical"),
      ` failure tolerance: ${ap.FailureTolerance}`),
    table(["Server", "Healthy", "Voter", "Last contact", "Last index"], (ap.Servers || []).map((s) => [
      s.Name, s.Healthy ? badge("healthy", "passing") : badge("unhealthy", "critical"), s.Voter ? "yes" : "no",
      s.LastContact || "", String(s.LastIndex ?? ""),
    ])));
  }, 3000, signal, fail(pilot));
  if (!remote) poll(async () => {
    const self = await get("/v1/agent/self");
    const stats = (self.Stats && self.Stats.raft) || {};
    const keys = Object.keys(stats);
    replace(raft, keys.length
      ? table(["Raft", "Value"], ["state", "term", "commit_index", "applied_index", "last_log_index", "num_peers", "last_contact"]
        .filter((k) => k in stats).map((k) => [k, stats[k]]))
      : h("p", { class: "muted" }, "This agent is a client: it keeps no Raft state."));
  }, 3000, signal, fail(raft));
  poll(async () => {
    const list = remote
      ? ((await get("/v1/agent/members?wan=1")) || []).filter((m) => (m.Tags || {}).dc === dc)
      : await get("/v1/agent/members");
    if (remote && !list.length) {
      replace(members, h("p", { class: "muted" },
        `This agent sees no server of ${dc} in the WAN pool (a client agent is in no WAN pool).`));
      return;
    }
    replace(members, table(["Name", "Address", "Status", "Role"], (list || []).map((m) => {
      const status = MEMBER_STATUS[m.Status] || String(m.Status);
      return [m.Name, `${m.Addr}:${m.Port}`, badge(status, STATUS_CLASS[status] || ""),
        (m.Tags && m.Tags.role) === "consul" ? "server" : "client"];
    }), { "aria-label": "Members" }));
  }, 3000, signal, fail(members));
}
