// GET /api/v1/events read with fetch(): EventSource cannot send an Authorization header, so
// the page parses the event stream itself and reconnects with Last-Event-ID, which the front
// door resumes from within its bounded history (or answers with `event: reset`).

import { apiUrl, authHeaders } from "./api.js";

/**
 * An event-stream parser (the WHATWG rules the page needs): lines end in \n, \r\n or \r
 * (also split across chunks), `:` starts a comment, a blank line dispatches, `data` lines
 * join with \n, `id` sets the last event id (kept for later events), an event with neither
 * data nor type is dropped.
 */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = "";
    this.pendingCR = false;
    this.reset();
  }

  reset() {
    this.type = "";
    this.data = [];
    this.id = undefined;
  }

  /** Feeds decoded text. */
  push(text) {
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.pendingCR = false;
    this.buf += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A \r at the very end may be the first half of \r\n.
      if (m[0] === "\r" && m.index === this.buf.length - 1) {
        this.pendingCR = true;
      }
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      // An event with a type but no data is dispatched too (unlike EventSource): a bare
      // `event: reset` must still reach the page.
      if (this.data.length > 0 || this.type !== "") {
        this.onEvent({ id: this.id, type: this.type || "message", data: this.data.join("\n") });
      }
      this.type = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Follows the event stream until `close()`. Handlers: `onEvent({id, type, data})` with
 * `data` parsed from JSON, `onStatus(status)` with "connecting", "live", "retrying",
 * "unauthorized", "unavailable" or "closed", and `onResync()` when a stream cut before its
 * first event is opened again: with no id to resume from, whatever happened in between is
 * read again instead.
 */
export function follow({ onEvent, onStatus, onResync }) {
  let lastId = null;
  let closed = false;
  let controller = null;
  let backoff = 1000;
  let opened = 0;

  async function once() {
    controller = new AbortController();
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const resp = await fetch(apiUrl("events"), {
      headers,
      cache: "no-store",
      credentials: "omit",
      signal: controller.signal,
    });
    if (resp.status === 401) return "unauthorized";
    if (resp.status === 404) return "unavailable";
    if (!resp.ok || !resp.body) return "retry";
    onStatus("live");
    backoff = 1000;
    if (lastId === null && opened > 0 && onResync) onResync();
    opened++;
    const parser = new SseParser((ev) => {
      if (ev.id !== undefined) lastId = ev.id;
      let data = {};
      try {
        if (ev.data !== "") data = JSON.parse(ev.data);
      } catch (_) {
        if (ev.type !== "reset") return; // not ours
      }
      onEvent({ id: ev.id, type: ev.type, data });
    });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "retry";
      parser.push(value);
    }
  }

  (async () => {
    while (!closed) {
      onStatus(lastId === null ? "connecting" : "retrying");
      let outcome;
      try {
        outcome = await once();
      } catch (_) {
        outcome = "retry"; // the stream broke (or close() aborted it)
      }
      if (closed) break;
      if (outcome === "unauthorized" || outcome === "unavailable") {
        onStatus(outcome);
        return;
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 30000);
    }
    onStatus("closed");
  })();

  return {
    close() {
      closed = true;
      if (controller) controller.abort();
    },
  };
}
