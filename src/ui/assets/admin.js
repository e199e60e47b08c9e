// The admin view: every gateway, the base and team catalogs, the audit trail. Shown only when
// GET /api/v1/gateways answers 200 (admins only); the API checks every call again anyway.

import { api, allPages, ApiError } from "./api.js";
import { $, el, say, bytes, duration, row } from "./dom.js";
import { describe } from "./user.js";

export async function isAdmin() {
  try {
    await api("GET", "gateways?limit=1");
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return false;
    throw e;
  }
}

export async function loadGateways() {
  const body = $("gateways-table").tBodies[0];
  try {
    const all = await allPages("gateways?limit=1000");
    body.replaceChildren(
      ...all.map((g) =>
        row(
          [
            g.user,
            el("span", { class: "state", "data-state": g.state, text: g.reason ? `${g.state} (${g.reason})` : g.state }),
            duration(g.uptime_seconds),
            typeof g.idle_seconds === "number" ? `${duration(g.idle_seconds)} ago` : "-",
            bytes(g.memory_bytes),
            String(g.open_streams ?? 0),
            (g.server_containers || []).join(", ") || "-",
          ],
          { "data-user": g.user },
        ),
      ),
    );
    say("gateways-msg", all.length ? "" : "No gateway is running.", "info");
  } catch (e) {
    say("gateways-msg", describe(e));
  }
}

/** A state change of anyone's gateway: the row changes now, the details on the next load. */
export function gatewayEvent(ev) {
  for (const r of $("gateways-table").tBodies[0].rows) {
    if (r.dataset.user === ev.user) {
      const s = r.cells[1].firstChild;
      s.dataset.state = ev.state;
      s.textContent = ev.state;
      return;
    }
  }
  loadGateways(); // a gateway not listed yet
}

const serverNames = (c) => Object.keys((c && c.registry) || {}).sort();

function catalogItem(label, names) {
  return el("li", {}, el("strong", { text: label }), " ", el("span", { class: "servers", text: names.join(", ") || "(no servers)" }));
}

export async function loadCatalogs() {
  try {
    const base = await allPages("catalogs/base?limit=100", "items", 1);
    const baseItems = await Promise.all(
      base.map(async (b) => {
        const c = await api("GET", `catalogs/base/${encodeURIComponent(b.name)}`);
        return catalogItem(`${b.name} (priority ${b.priority})`, serverNames(c));
      }),
    );
    $("base-list").replaceChildren(...baseItems);
    const teams = await allPages("catalogs/teams?limit=100", "items", 1);
    const teamItems = await Promise.all(
      teams.map(async (t) => {
        const c = await api("GET", `catalogs/teams/${encodeURIComponent(t)}`);
        return catalogItem(t, serverNames(c));
      }),
    );
    $("team-list").replaceChildren(...teamItems);
    say("catalogs-msg", "");
  } catch (e) {
    say("catalogs-msg", describe(e));
  }
}

export async function loadAudit() {
  const body = $("audit-table").tBodies[0];
  try {
    const page = await api("GET", "audit?limit=50");
    body.replaceChildren(
      ...(page.items || []).map((a) =>
        row([a.time, a.actor, a.action, a.target, a.error ? `${a.outcome} (${a.error})` : a.outcome], {
          "data-outcome": a.outcome,
        }),
      ),
    );
    say("audit-msg", "");
  } catch (e) {
    body.replaceChildren();
    const missing = e instanceof ApiError && e.status === 404;
    say("audit-msg", missing ? "This front door has no audit query API (GET /api/v1/audit answered 404)." : describe(e));
  }
}

export function wireAdmin() {
  $("gateways-refresh").addEventListener("click", loadGateways);
  $("audit-refresh").addEventListener("click", loadAudit);
}

export async function loadAdmin() {
  await Promise.all([loadGateways(), loadCatalogs(), loadAudit()]);
}
