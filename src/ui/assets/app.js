// The page's start: sign in with a pasted token, show the user's view (and the admin view
// for an admin), follow the event stream, sign out.

import { api, token, ApiError } from "./api.js";
import { $, say } from "./dom.js";
import { follow } from "./events.js";
import * as user from "./user.js";
import * as admin from "./admin.js";

let stream = null;
let me = null; // the caller's slug
let adminView = false;

function showLogin(message) {
  $("login").hidden = false;
  $("user-view").hidden = true;
  $("admin-view").hidden = true;
  $("logout").hidden = true;
  $("whoami").textContent = "";
  say("login-msg", message || "");
}

/** Drops the token and everything shown with it. */
function signOut(message) {
  token.clear();
  if (stream) stream.close();
  stream = null;
  me = null;
  for (const id of ["server-table", "gateways-table", "audit-table"]) $(id).tBodies[0].replaceChildren();
  for (const id of ["secret-list", "gw-history", "gw-details", "base-list", "team-list"]) $(id).replaceChildren();
  $("gw-logs").textContent = "";
  showStatus("off");
  showLogin(message);
}

function showStatus(status) {
  const s = $("events-status");
  s.dataset.status = status;
  s.textContent = `events: ${status}`;
}

function onEvent({ type, data }) {
  if (type === "reset") {
    // Events were missed (history too short, or the front door restarted): read it all again.
    reloadAll();
    return;
  }
  const mine = data.user === me;
  if (type === "gateway.state") {
    if (mine) {
      user.showState(data.state, data.reason);
      user.noteTransition(data);
      if (data.state === "ready" || data.state === "stopped") user.loadGateway();
    }
    if (adminView) admin.gatewayEvent(data);
  } else if (type === "catalog.changed") {
    // A base or team catalog (no user: only admins get those) may change anyone's servers.
    if (mine || data.user === null || data.user === undefined) user.loadServers();
    if (adminView && (data.scope === "base" || data.scope === "team")) admin.loadCatalogs();
  } else if (type === "secrets.changed" && mine) {
    user.loadSecrets();
  }
}

async function reloadAll() {
  await user.loadUser();
  if (adminView) await admin.loadAdmin();
}

async function start() {
  let who;
  try {
    who = await api("GET", "users/me/secrets?limit=1");
  } catch (e) {
    signOut(e instanceof ApiError && e.status === 401 ? `This token was refused: ${e.message}` : user.describe(e));
    return;
  }
  me = who.user;
  $("login").hidden = true;
  $("user-view").hidden = false;
  $("logout").hidden = false;
  try {
    adminView = await admin.isAdmin();
  } catch (_) {
    adminView = false;
  }
  $("admin-view").hidden = !adminView;
  $("whoami").textContent = `${me}${adminView ? " (admin)" : ""}`;
  stream = follow({
    onEvent,
    onResync: reloadAll,
    onStatus: (s) => {
      showStatus(s);
      if (s === "unauthorized") signOut("Your token expired or was refused: paste a new one.");
    },
  });
  await reloadAll();
}

function wire() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("token-input");
    const t = input.value.trim().replace(/^Bearer\s+/i, "");
    input.value = "";
    if (!t) return;
    token.set(t);
    start();
  });
  $("logout").addEventListener("click", () => signOut("Token forgotten."));
  user.wireUser();
  admin.wireAdmin();
}

wire();
if (token.get()) start();
else showLogin();
// Every module loaded and the page wired (tests wait for this).
document.body.dataset.ready = "true";
