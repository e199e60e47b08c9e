// The token and the one way the page talks to the API. The token lives in sessionStorage
// (this tab only) and leaves the page only as an Authorization header to this origin's
// /api/v1; never in a URL, never in a cookie (so no other site can make the browser use it).

const KEY = "mcp-frontdoor.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

// The API beside the page: /ui/ → /api/v1/ (also under a path prefix).
export const API_BASE = new URL("../api/v1/", document.baseURI);

/** An API answer that was not 2xx: `status`, the API's `code` and `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** "403 forbidden: this route needs the admin role" */
  describe() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

/** The URL of an API path (relative, e.g. "users/me/secrets"). */
export function apiUrl(path) {
  return new URL(path, API_BASE);
}

/** Headers of every API request. */
export function authHeaders() {
  return { Authorization: `Bearer ${token.get()}` };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Tries of one call whose request never got an answer (see `api`). */
const TRIES = 8;

/**
 * One API call: the parsed JSON (text for text bodies, null for 204), or an ApiError.
 * `body` is sent as JSON when given.
 *
 * A request that got no answer at all is sent again (a few times, briefly apart): Chromium
 * aborts every request in flight when a network interface of the machine changes
 * (ERR_NETWORK_CHANGED), and a front door's host changes interfaces whenever a gateway's
 * network is made or removed. Every call the page makes may be repeated: PUT replaces, the
 * bulk switch and the gateway start are idempotent, and a DELETE repeated after the first one
 * went through answers 404, taken as done.
 */
export async function api(method, path, body) {
  const headers = authHeaders();
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  let repeated = false;
  for (let attempt = 1; ; attempt++) {
    try {
      resp = await fetch(apiUrl(path), init);
      break;
    } catch (e) {
      if (attempt >= TRIES) throw new ApiError(0, "network", "the front door could not be reached");
      repeated = true;
      await sleep(Math.min(250 * attempt, 2000));
    }
  }
  if (resp.status === 404 && method === "DELETE" && repeated) return null;
  if (!resp.ok) {
    let err = {};
    try {
      err = await resp.json();
    } catch (_) {
      // Not our JSON (a proxy in between): the status says enough.
    }
    const code = typeof err.error === "string" ? err.error : `http_${resp.status}`;
    const message = typeof err.message === "string" ? err.message : resp.statusText;
    throw new ApiError(resp.status, code, message);
  }
  if (resp.status === 204) return null;
  const type = resp.headers.get("content-type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

/** Every item of a paged list (`{items, next_cursor}`), at most `max` pages. */
export async function allPages(path, key = "items", max = 20) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < max; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const q = cursor === null ? "" : `${sep}cursor=${encodeURIComponent(cursor)}`;
    const page = await api("GET", path + q);
    out.push(...page[key]);
    if (page.next_cursor === null || page.next_cursor === undefined) break;
    cursor = page.next_cursor;
  }
  return out;
}
