// Client tools through the AI SDK's UI message stream, with the published packages' own Chat
// (AbstractChat: what useChat runs), transports and readUIMessageStream against live servers:
// `node ai_sdk_ui_tools.mjs '<json>'` runs one scenario and prints one JSON line with what the
// client saw. Driven by tests/test_ai_sdk_tools.py. `pkg` is "ai" (7) or "ai5" (5.0.0, strict chunk
// schemas); `transport` is "http" (DefaultChatTransport) or "ws" (WebSocketChatTransport, ai 7).
// Every chunk a transport passed on is also checked against both packages' own parsers
// (`validation`: the first error each one reports, or null).
//
// Scenarios:
// - loop: sendMessage with tools; onToolCall answers each call (addToolResult / addToolOutput,
//   `outputs[toolName]`, `{error}` for an output-error) and sendAutomaticallyWhen
//   lastAssistantMessageIsCompleteWithToolCalls sends the results; the loop runs to its end.
// - refuse: one round with no onToolCall, then the results message as the SDK builds it but for a
//   call id the answer did not make (`badCallId`), sent through the transport.
// - resume: the call streams on `base`; the client leaves after its first argument fragment; a
//   transport on `resumeBase` resumes the answer, then a Chat there holds the resumed message,
//   adds the result, and the loop continues on that server.
// - rebuild: `branch` (the history API's messages) rebuilt as UIMessages (ui_history.mjs).
// With `history`, the chat's history is loaded and rebuilt at the end; rebuilt messages are checked
// with ai 7's own safeValidateUIMessages (`historyValid` / `valid`: its error, or null).

import WebSocket from "ws";

import { loadUIMessages, toUIMessages } from "./ui_history.mjs";
import { readAll as readStream } from "./read_ui_stream.mjs";

const args = JSON.parse(process.argv[2]);
const sdk = await import(args.pkg ?? "ai");
const both = { ai: await import("ai"), ai5: await import("ai5") };
const { AbstractChat, DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls } = sdk;

const log = { requests: [], streams: [] };

// --- a Chat with its state in memory (useChat's React state, without React) ---------------------
class MemoryState {
  constructor(messages = []) {
    this.status = "ready";
    this.error = undefined;
    this.messages = messages;
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
  constructor({ messages, ...init }) {
    super({ ...init, state: new MemoryState(messages) });
  }
}

// --- transports, recorded ------------------------------------------------------------------------
function pageWebSocket(origin) {
  return class PageWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin });
    }
  };
}

function recordingFetch(url, init) {
  if (init?.method === "POST") log.requests.push(JSON.parse(init.body));
  return fetch(url, init);
}

function transportFor(base) {
  const body = { tools: args.tools, ...(args.body ?? {}) };
  if (args.transport === "ws") {
    const origin = new URL(base).origin;
    const transport = new sdk.WebSocketChatTransport({
      url: `${base.replace(/^http/, "ws")}/ws/ai-sdk/chat`,
      webSocket: pageWebSocket(origin),
      body,
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
    return recorded(transport, true);
  }
  const transport = new DefaultChatTransport({
    api: `${base}/api/ai-sdk/chat`,
    headers: args.headers ?? {},
    body,
    fetch: recordingFetch,
  });
  return recorded(transport, false);
}

// Every stream a transport hands the Chat, its chunks kept; a ws send recorded as the frame's body.
function recorded(transport, ws) {
  const tap = (stream) => {
    const chunks = [];
    log.streams.push(chunks);
    return stream.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          chunks.push(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
  };
  return {
    async sendMessages(options) {
      if (ws) {
        const { chatId: id, messages, trigger, messageId } = options;
        log.requests.push(JSON.parse(JSON.stringify({ id, messages, trigger, messageId })));
      }
      return tap(await transport.sendMessages(options));
    },
    async reconnectToStream(options) {
      const stream = await transport.reconnectToStream(options);
      return stream == null ? null : tap(stream);
    },
    close: () => transport.close?.(),
  };
}

// The chunks as SSE, through each package's own DefaultChatTransport parser (its chunk schema).
async function validate(chunks) {
  const out = {};
  for (const [name, pkg] of Object.entries(both)) {
    const text = chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";
    const bytes = new Response(text).body;
    try {
      const parsed = new pkg.DefaultChatTransport().processResponseStream(bytes);
      const reader = parsed.getReader();
      for (let n = 0; ; n++) {
        const { done } = await reader.read();
        if (done) break;
      }
      out[name] = null;
    } catch (error) {
      out[name] = String(error.message ?? error).slice(0, 400);
    }
  }
  return out;
}

function chatFor(transport, { messages = [], answer = true } = {}) {
  const errors = [];
  const chat = new TestChat({
    id: args.chatId,
    messages,
    transport,
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
    onError: (error) => errors.push(error.message ?? String(error)),
    onToolCall: answer
      ? ({ toolCall }) => {
          // not awaited: onToolCall runs inside the Chat's job queue, which addToolResult joins
          addResult(chat, toolCall.toolName, toolCall.toolCallId);
        }
      : undefined,
  });
  return { chat, errors };
}

function addResult(chat, toolName, toolCallId) {
  const output = args.outputs?.[toolName] ?? `ran ${toolName}`;
  if (output?.error != null) {
    return chat.addToolOutput({ state: "output-error", tool: toolName, toolCallId, errorText: output.error });
  }
  return chat.addToolResult({ tool: toolName, toolCallId, output });
}

async function settled(chat, timeout = 30000) {
  const deadline = Date.now() + timeout;
  while (chat.status === "submitted" || chat.status === "streaming") {
    if (Date.now() > deadline) throw new Error(`the chat is still ${chat.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const json = (value) => JSON.parse(JSON.stringify(value));

async function uiValid(messages) {
  const result = await both.ai.safeValidateUIMessages({ messages });
  return result.success ? null : String(result.error.message ?? result.error).slice(0, 400);
}

async function finish(out, transports) {
  out.requests = log.requests;
  out.streams = log.streams.map((chunks) => json(chunks));
  out.validation = await validate(log.streams.flat());
  for (const t of transports) t.close();
  if (args.history) {
    out.history = await loadUIMessages(args.chatId, { base: args.base, headers: args.headers });
    out.historyValid = await uiValid(out.history);
  }
}

const out = {};
const transports = [];
try {
  if (args.scenario === "loop") {
    const transport = transportFor(args.base);
    transports.push(transport);
    const { chat, errors } = chatFor(transport);
    await chat.sendMessage({ text: args.text });
    await settled(chat);
    Object.assign(out, { messages: json(chat.messages), errors, status: chat.status });
  } else if (args.scenario === "refuse") {
    const transport = transportFor(args.base);
    transports.push(transport);
    const { chat, errors } = chatFor(transport, { answer: false });
    await chat.sendMessage({ text: args.text });
    await settled(chat);
    out.first = { messages: json(chat.messages), errors };
    const messages = structuredClone(chat.messages);
    const last = messages.at(-1);
    for (const part of last.parts) {
      if (sdk.isToolUIPart(part)) Object.assign(part, { toolCallId: args.badCallId, state: "output-available", output: "x" });
    }
    try {
      const stream = await transport.sendMessages({
        chatId: args.chatId,
        messages,
        trigger: "submit-message",
        messageId: last.id,
        metadata: undefined,
      });
      out.refused = await readStream(stream, sdk.readUIMessageStream);
    } catch (error) {
      out.thrown = error.message ?? String(error);
    }
  } else if (args.scenario === "resume") {
    const first = transportFor(args.base);
    transports.push(first);
    const abort = new AbortController();
    const stream = await first.sendMessages({
      chatId: args.chatId,
      messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: args.text }] }],
      trigger: "submit-message",
      abortSignal: abort.signal,
    });
    const reader = stream.getReader();
    const seen = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      seen.push(value.type);
      if (value.type === "tool-input-delta") break;
    }
    if (args.transport === "ws") first.close();
    else abort.abort();
    reader.cancel().catch(() => {});
    out.first = seen;
    const second = transportFor(args.resumeBase);
    transports.push(second);
    const resumed = await second.reconnectToStream({ chatId: args.chatId });
    out.resumed = resumed === null ? null : await readStream(resumed, sdk.readUIMessageStream);
    if (out.resumed?.message) {
      const user = { id: "u1", role: "user", parts: [{ type: "text", text: args.text }] };
      const { chat, errors } = chatFor(second, { messages: [user, out.resumed.message] });
      for (const part of out.resumed.message.parts.filter(sdk.isToolUIPart)) {
        await addResult(chat, sdk.getToolName(part), part.toolCallId);
      }
      await settled(chat);
      Object.assign(out, { messages: json(chat.messages), errors, status: chat.status });
    }
  } else if (args.scenario === "rebuild") {
    out.messages = toUIMessages(args.branch);
    out.valid = await uiValid(out.messages);
  } else {
    throw new Error(`unknown scenario ${args.scenario}`);
  }
} catch (error) {
  out.thrown = error.message ?? String(error);
}
try {
  await finish(out, transports);
} catch (error) {
  out.finishError = error.message ?? String(error);
}
console.log(JSON.stringify(out));
process.exit(0);
