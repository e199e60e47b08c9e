// Building the page from data. Every string from the server is tenant input (a catalog's
// title, a log line, an audit target): it only ever becomes a text node or an attribute
// value, never markup, so "<img src=x onerror=...>" shows as those characters.

export const $ = (id) => document.getElementById(id);

/** An element with attributes (`text` sets textContent, `on<event>` adds a listener). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ""));
  return e;
}

/** Shows a message (or clears it with ""). */
export function say(id, text, kind = "error") {
  const m = $(id);
  m.textContent = text;
  m.dataset.kind = kind;
}

/** "1.5 GiB", "12.0 MiB"; "-" when unknown. */
export function bytes(n) {
  if (typeof n !== "number") return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** "3 h 2 min", "42 s"; "-" when unknown. */
export function duration(s) {
  if (typeof s !== "number") return "-";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A table row of text cells. */
export function row(cells, attrs = {}) {
  return el("tr", attrs, ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: c }))));
}
