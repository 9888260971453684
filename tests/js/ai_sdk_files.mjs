// Files through the AI SDK chat, with the published package's own Chat (AbstractChat: what useChat
// runs) and its transports against a live server: `node ai_sdk_files.mjs '<json>'` sends
// `sendMessage({text, files})` (`files`: FileUIParts, as useChat makes them of a FileList — a data
// URL each — or with an https URL), then `followUp` (a text message) when given, and prints one JSON
// line: the bodies the transport sent (`requests`), the chat's messages at the end, its error, and
// with `history` the chat's messages as the server serves them (GET /api/ai-sdk/chat/{id}/messages)
// and ai 7's validateUIMessages of them (`historyValid`: its error, or null). Driven by
// tests/test_attachments_protocols.py. `pkg` is "ai" (7) or "ai5" (5.0.0); `transport` is "http"
// (DefaultChatTransport) or "ws" (WebSocketChatTransport, ai 7).

import WebSocket from "ws";

const args = JSON.parse(process.argv[2]);
const sdk = await import(args.pkg ?? "ai");
const { AbstractChat, DefaultChatTransport } = sdk;
const { validateUIMessages } = await import("ai");

class MemoryState {
  constructor() {
    this.status = "ready";
    this.error = undefined;
    this.messages = [];
  }
  snapshot = (value) => structuredClone(value);
  pushMessage = (message) => {
    this.messages = [...this.messages, this.snapshot(message)];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
}

class TestChat extends AbstractChat {
  constructor(init) {
    super({ ...init, state: new MemoryState() });
  }
}

const requests = [];

function pageWebSocket(origin) {
  return class PageWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin });
    }
  };
}

function transport() {
  const base = args.base;
  if (args.transport === "ws") {
    const origin = new URL(base).origin;
    const ws = new sdk.WebSocketChatTransport({
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
    return {
      sendMessages: (options) => {
        const { chatId: id, messages, trigger, messageId } = options;
        requests.push(JSON.parse(JSON.stringify({ id, messages, trigger, messageId })));
        return ws.sendMessages(options);
      },
      reconnectToStream: (options) => ws.reconnectToStream(options),
      close: () => ws.close?.(),
    };
  }
  return new DefaultChatTransport({
    api: `${base}/api/ai-sdk/chat`,
    headers: args.headers ?? {},
    body: args.body ?? {},
    fetch: (url, init) => {
      if (init?.method === "POST") requests.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
}

const out = {};
const used = transport();
try {
  const chat = new TestChat({ id: args.chatId, transport: used });
  await chat.sendMessage({ text: args.text, files: args.files });
  out.error = chat.error ? String(chat.error.message ?? chat.error) : null;
  if (args.followUp && !chat.error) {
    await chat.sendMessage({ text: args.followUp });
    out.error = chat.error ? String(chat.error.message ?? chat.error) : null;
  }
  out.messages = chat.messages;
  if (args.history) {
    const url = `${args.base}/api/ai-sdk/chat/${encodeURIComponent(args.chatId)}/messages`;
    const response = await fetch(url, { headers: args.headers ?? {} });
    out.history = (await response.json()).messages;
    try {
      await validateUIMessages({ messages: out.history });
      out.historyValid = null;
    } catch (error) {
      out.historyValid = String(error.message ?? error).slice(0, 400);
    }
  }
} catch (error) {
  out.thrown = error.message ?? String(error);
}
out.requests = requests;
used.close?.();
console.log(JSON.stringify(out));
process.exit(0);
