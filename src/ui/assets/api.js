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

/**
 * One API call: the parsed JSON (text for text bodies, null for 204), or an ApiError.
 * `body` is sent as JSON when given.
 */
export async function api(method, path, body) {
  const headers = authHeaders();
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(apiUrl(path), init);
  } catch (e) {
    throw new ApiError(0, "network", "the front door could not be reached");
  }
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
