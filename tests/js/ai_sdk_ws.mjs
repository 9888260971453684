// The `ai` package's own WebSocketChatTransport (ai 7) against live servers:
// `node ai_sdk_ws.mjs '<json>'` runs one scenario and prints one JSON line. Driven by
// tests/test_ai_sdk_ws.py. Each connection authenticates the way a browser app would: `params`
// fetches a fresh single-use ticket (POST /api/ws-ticket) for every socket it opens.
// Node 20 has no global WebSocket: the `ws` package is passed in, sending the page's Origin
// (`args.origin`, else the origin of the server the page came from).
//
// Scenarios: send, abort (mid-answer), resume (the first server's socket closes mid-answer, a new
// transport on the second server resumes), resume-none.

import WebSocket from "ws";

import { readAll as readStream } from "./read_ui_stream.mjs";

const args = JSON.parse(process.argv[2]);
const { WebSocketChatTransport, readUIMessageStream } = await import(args.pkg ?? "ai");
const readAll = (stream, options) => readStream(stream, readUIMessageStream, options);

function pageWebSocket(origin) {
  return class PageWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin });
    }
  };
}

function transportFor(base) {
  const origin = args.origin ?? new URL(base).origin;
  return new WebSocketChatTransport({
    url: `${base.replace(/^http/, "ws")}/ws/ai-sdk/chat`,
    webSocket: pageWebSocket(origin),
    body: args.body ?? {},
    params: async () => {
      const response = await fetch(`${base}/api/ws-ticket`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(args.headers ?? {}) },
        body: JSON.stringify({ origin }),
      });
      if (!response.ok) throw new Error(`ticket: ${response.status} ${await response.text()}`);
      return { ticket: (await response.json()).ticket };
    },
  });
}

function userMessage(id, text) {
  return { id, role: "user", parts: [{ type: "text", text }] };
}

const out = {};
const first = transportFor(args.base);
try {
  if (args.scenario === "send") {
    const stream = await first.sendMessages({
      chatId: args.chatId,
      messages: [userMessage("u1", args.text)],
      trigger: "submit-message",
    });
    Object.assign(out, await readAll(stream));
  } else if (args.scenario === "abort") {
    const abort = new AbortController();
    const stream = await first.sendMessages({
      chatId: args.chatId,
      messages: [userMessage("u1", args.text)],
      trigger: "submit-message",
      abortSignal: abort.signal,
    });
    Object.assign(out, await readAll(stream, { after: args.after ?? 3, act: () => abort.abort() }));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the abort frame goes out
  } else if (args.scenario === "resume") {
    const stream = await first.sendMessages({
      chatId: args.chatId,
      messages: [userMessage("u1", args.text)],
      trigger: "submit-message",
    });
    out.first = await readAll(stream, { after: args.after ?? 3, act: () => first.close() });
    const second = transportFor(args.resumeBase ?? args.base);
    const resumed = await second.reconnectToStream({ chatId: args.chatId });
    out.resumed = resumed === null ? null : await readAll(resumed);
    second.close();
  } else if (args.scenario === "resume-none") {
    out.resumed = await first.reconnectToStream({ chatId: args.chatId });
  } else {
    throw new Error(`unknown scenario ${args.scenario}`);
  }
} catch (error) {
  out.thrown = error.message ?? String(error);
}
first.close();
console.log(JSON.stringify(out));
