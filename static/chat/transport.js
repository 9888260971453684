// How turn events reach the page: a WebSocket per open session (ws/chat/{key}/), with SSE over
// fetch as the fallback when the socket cannot connect. Both hand the same frames to the page:
// started, delta, artifact, usage, done, error (SSE's completed/failed are renamed to match).

import { csrfHeaders, errorFrom, networkError, sessionPath } from "./api.js";

const CONNECT_TIMEOUT_MS = 4000;
const RETRY_BROKEN_AFTER_MS = 30000;
const RECONNECT_DELAYS_MS = [300, 1000, 2000, 4000, 8000];
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;

export const FRAME_NAMES = { completed: "done", failed: "error" };

export function isTerminal(frame) {
  return (frame.type === "done" || frame.type === "error") && frame.seq != null;
}

/**
 * One session's socket. `onFrame(frame)` gets every server frame; `onState(state, detail)` gets
 * "connecting", "open", "reconnected", "closed", "broken" (never opened) and "denied" (4401/4403).
 * After an unexpected close it reconnects with backoff while `wanted()` says a turn needs it.
 */
export class SessionSocket {
  constructor(sessionKey, { onFrame, onState, wanted }) {
    this.sessionKey = sessionKey;
    this.onFrame = onFrame;
    this.onState = onState;
    this.wanted = wanted || (() => false);
    this.ws = null;
    this.opening = null;
    this.closedByUs = false;
    this.brokenAt = 0;
    this.everOpened = false;
    this.attempt = 0;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/ws/chat/${encodeURIComponent(this.sessionKey)}/`;
  }

  /** Resolves true once open, false when the socket cannot connect (the caller falls back to SSE). */
  ensureOpen() {
    if (this.closedByUs) return Promise.resolve(false);
    if (this.isOpen) return Promise.resolve(true);
    if (this.opening) return this.opening;
    if (this.brokenAt && Date.now() - this.brokenAt < RETRY_BROKEN_AFTER_MS) return Promise.resolve(false);
    this.opening = new Promise((resolve) => this._open(resolve)).finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  _open(resolve) {
    let settled = false;
    let opened = false;
    const firstConnection = !this.everOpened;
    const settle = (ok) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ok && firstConnection && !this.closedByUs) {
        this.brokenAt = Date.now(); // never connected: the page streams over SSE for a while
        this.onState("broken");
      }
      resolve(ok);
    };
    this.onState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      settle(false);
      return;
    }
    this.ws = ws;
    const timer = setTimeout(() => {
      if (!opened) {
        settle(false);
        ws.close();
      }
    }, CONNECT_TIMEOUT_MS);
    ws.addEventListener("open", () => {
      opened = true;
      this.brokenAt = 0;
      this.onState(firstConnection ? "open" : "reconnected");
      this.everOpened = true;
      settle(true);
    });
    ws.addEventListener("message", (event) => {
      this.attempt = 0; // a socket that delivers frames is healthy; one that only opens and drops is not
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws === ws) this.ws = null;
      if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
        settled = true;
        clearTimeout(timer);
        resolve(false);
        if (!this.closedByUs) this.onState("denied", event.code);
        return;
      }
      if (!opened) {
        settle(false); // a failed (re)connection attempt; _maybeReconnect decides what is next
        return;
      }
      if (this.closedByUs) return;
      this.onState("closed", event.code);
      this._maybeReconnect();
    });
  }

  _maybeReconnect() {
    if (this.closedByUs || !this.wanted()) return;
    if (this.attempt >= RECONNECT_DELAYS_MS.length) {
      this.brokenAt = Date.now();
      this.onState("broken");
      return;
    }
    const delay = RECONNECT_DELAYS_MS[this.attempt];
    this.attempt += 1;
    setTimeout(() => {
      if (this.closedByUs) return;
      this.brokenAt = 0;
      this.ensureOpen().then((ok) => {
        if (!ok) this._maybeReconnect();
      });
    }, delay);
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.closedByUs = true;
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

function normalise(event) {
  const type = FRAME_NAMES[event.type] || event.type;
  return type === event.type ? event : { ...event, type };
}

/** Reads a text/event-stream response body, calling onFrame with each event's JSON data. */
export async function readEventStream(response, onFrame) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const flush = (block) => {
    const data = block
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
      .join("\n");
    if (!data) return;
    try {
      onFrame(normalise(JSON.parse(data)));
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      flush(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  if (buffer.trim()) flush(buffer);
}

async function openStream(path, init) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...init });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw networkError();
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** POST a turn and stream its events over SSE (the fallback when the socket cannot connect). */
export async function sseTurn(sessionKey, body, onFrame, signal) {
  const response = await openStream(`${sessionPath(sessionKey)}/messages`, {
    method: "POST",
    headers: { Accept: "text/event-stream", "Content-Type": "application/json", ...csrfHeaders("POST") },
    body: JSON.stringify(body),
    signal,
  });
  await readEventStream(response, onFrame);
}

/** Resume an answer over SSE from after `afterSeq`: the missed events, then the live ones. */
export async function sseResume(sessionKey, messageId, afterSeq, onFrame, signal) {
  const path = `${sessionPath(sessionKey)}/messages/${encodeURIComponent(messageId)}/stream?after_seq=${afterSeq}`;
  const response = await openStream(path, { headers: { Accept: "text/event-stream" }, signal });
  await readEventStream(response, onFrame);
}
