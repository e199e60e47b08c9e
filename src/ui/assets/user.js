// The user's own view: their gateway, their servers (with origins and a switch), their
// secret names, the client config snippet. Every path is `users/me/...`: the page never
// names a user, so a token reaches only what the API lets that token reach.

import { api, allPages, ApiError } from "./api.js";
import { $, el, say, bytes, duration, row } from "./dom.js";

const STATES = ["stopped", "starting", "ready", "stopping", "failed"];

/** Shows a gateway state ("ready", ...) and its reason. */
export function showState(state, reason) {
  const s = $("gw-state");
  const known = STATES.includes(state) ? state : "unknown";
  s.textContent = known;
  s.dataset.state = known;
  $("gw-reason").textContent = reason ? `(${reason})` : "";
  $("gw-start").disabled = known === "ready" || known === "starting";
  $("gw-stop").disabled = known === "stopped" || known === "stopping";
}

/** Adds one line to the state history (newest first, at most 50). */
export function noteTransition(ev) {
  const list = $("gw-history");
  const time = typeof ev.time === "string" ? ev.time.replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
  const text = `${time} ${ev.previous || "?"} → ${ev.state}${ev.reason ? ` (${ev.reason})` : ""}`;
  list.prepend(el("li", { "data-state": ev.state, text }));
  while (list.children.length > 50) list.lastChild.remove();
}

export async function loadGateway() {
  try {
    const g = await api("GET", "users/me/gateway");
    showState(g.state, g.reason);
    const details = $("gw-details");
    const pairs = [
      ["Uptime", duration(g.uptime_seconds)],
      ["Last activity", typeof g.idle_seconds === "number" ? `${duration(g.idle_seconds)} ago` : "-"],
      ["Memory", bytes(g.memory_bytes)],
      ["Open streams", String(g.open_streams ?? 0)],
      ["Server containers", (g.server_containers || []).join(", ") || "-"],
    ];
    for (const u of g.unavailable_servers || []) {
      pairs.push([`Left out: ${u.server}`, u.reason || ""]);
    }
    details.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    say("gw-msg", "");
  } catch (e) {
    say("gw-msg", describe(e));
  }
}

export async function loadLogs() {
  const pre = $("gw-logs");
  try {
    pre.textContent = (await api("GET", "users/me/gateway/logs?tail=200")) || "(empty)";
  } catch (e) {
    pre.textContent = e instanceof ApiError && e.status === 404 ? "No gateway is running: nothing has logged." : describe(e);
  }
}

async function startStop(method) {
  say("gw-msg", method === "POST" ? "Starting…" : "Stopping…", "info");
  try {
    await api(method, "users/me/gateway");
    say("gw-msg", "");
  } catch (e) {
    say("gw-msg", describe(e));
  }
  await loadGateway();
}

/** The server's title in whichever catalog the user sees it. */
function titleOf(name, cat) {
  const merged = cat.merged && cat.merged.registry ? cat.merged.registry[name] : undefined;
  const layers = [
    ...(cat.custom && cat.custom.registry ? [cat.custom.registry] : []),
    ...(cat.teams || []).map((t) => (t.catalog && t.catalog.registry) || {}),
    ...(cat.base || []).map((b) => (b.catalog && b.catalog.registry) || {}),
  ];
  const entry = merged || layers.map((r) => r[name]).find(Boolean) || {};
  return typeof entry.title === "string" ? entry.title : "";
}

export async function loadServers() {
  const body = $("server-table").tBodies[0];
  try {
    const cat = await api("GET", "users/me/catalogs");
    const enabled = new Set(Object.keys((cat.merged && cat.merged.registry) || {}));
    const origins = cat.origins || {};
    const rows = Object.keys(origins)
      .sort()
      .map((name) => {
        const on = enabled.has(name);
        const toggle = el("input", {
          type: "checkbox",
          checked: on,
          "data-server": name,
          "aria-label": `enable ${name}`,
          onchange: (ev) => switchServer(name, ev.target),
        });
        return row([name, titleOf(name, cat), origins[name], toggle], {
          "data-server": name,
          "data-enabled": String(on),
        });
      });
    body.replaceChildren(...rows);
    say("servers-msg", rows.length ? "" : "No servers are offered to you yet.", "info");
  } catch (e) {
    say("servers-msg", describe(e));
  }
}

async function switchServer(name, box) {
  box.disabled = true;
  const change = box.checked ? { enable: [name], disable: [] } : { enable: [], disable: [name] };
  try {
    await api("POST", "users/me/servers", change);
    say("servers-msg", `${name} ${box.checked ? "enabled" : "disabled"}.`, "info");
  } catch (e) {
    box.checked = !box.checked;
    say("servers-msg", describe(e));
  }
  box.disabled = false;
  await loadServers();
}

export async function loadSecrets() {
  try {
    renderSecretNames(await allPages("users/me/secrets", "names"));
  } catch (e) {
    say("secrets-msg", describe(e));
  }
}

function renderSecretNames(names) {
  const items = names.map((n) =>
    el(
      "li",
      { "data-secret": n },
      el("code", { text: n }),
      " ",
      el("button", { type: "button", class: "small", text: "Delete", onclick: () => deleteSecret(n) }),
    ),
  );
  $("secret-list").replaceChildren(...items);
  if (!items.length) $("secret-list").append(el("li", { class: "none", text: "No secrets stored." }));
}

async function saveSecret(ev) {
  ev.preventDefault();
  const nameInput = $("secret-name");
  const valueInput = $("secret-value");
  const name = nameInput.value.trim();
  const value = valueInput.value;
  // Cleared at once, whatever the answer: the value is not kept on the page.
  valueInput.value = "";
  try {
    const r = await api("PUT", "users/me/secrets", { [name]: value });
    nameInput.value = "";
    renderSecretNames(r.names);
    say("secrets-msg", `Saved ${name}.`, "info");
  } catch (e) {
    say("secrets-msg", describe(e));
  }
}

async function deleteSecret(name) {
  try {
    await api("DELETE", `users/me/secrets?name=${encodeURIComponent(name)}`);
    say("secrets-msg", `Deleted ${name}.`, "info");
  } catch (e) {
    say("secrets-msg", describe(e));
  }
  await loadSecrets();
}

/** The JSON an MCP client takes: the public URL and a placeholder for the token. */
export async function showSnippet() {
  let url = new URL("/mcp", location.origin).href;
  try {
    const r = await fetch(new URL("../.well-known/oauth-protected-resource/mcp", document.baseURI), {
      credentials: "omit",
    });
    const doc = await r.json();
    if (typeof doc.resource === "string") url = doc.resource;
  } catch (_) {
    // The page's own origin is a fine guess.
  }
  const snippet = {
    mcpServers: {
      "mcp-frontdoor": { type: "http", url, headers: { Authorization: "Bearer <your token>" } },
    },
  };
  $("config-snippet").textContent = JSON.stringify(snippet, null, 2);
}

export function describe(e) {
  return e instanceof ApiError ? e.describe() : String(e);
}

export function wireUser() {
  $("gw-start").addEventListener("click", () => startStop("POST"));
  $("gw-stop").addEventListener("click", () => startStop("DELETE"));
  $("logs-refresh").addEventListener("click", loadLogs);
  $("secret-form").addEventListener("submit", saveSecret);
}

/** Everything of the user view, again (at sign-in and on `event: reset`). */
export async function loadUser() {
  await Promise.all([loadGateway(), loadServers(), loadSecrets(), loadLogs(), showSnippet()]);
}
