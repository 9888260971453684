// The published `ai` package's own DefaultChatTransport and readUIMessageStream against a live
// server: `node ai_sdk_http.mjs '<json>'` runs one scenario and prints one JSON line with what
// the client saw. Driven by tests/test_ai_sdk_http.py (which starts the server and checks the
// result against the database). `pkg` is "ai" (the current major) or "ai5" (the 5.0 line).
//
// Scenarios: send, regenerate, reconnect (abort mid-answer, then reconnectToStream), resume-none.

const args = JSON.parse(process.argv[2]);
import { readAll as readStream } from "./read_ui_stream.mjs";

const { DefaultChatTransport, readUIMessageStream } = await import(args.pkg);
const readAll = (stream, options) => readStream(stream, readUIMessageStream, options);

const transport = new DefaultChatTransport({
  api: `${args.base}/api/ai-sdk/chat`,
  headers: args.headers ?? {},
  body: args.body ?? {},
});

function userMessage(id, text) {
  return { id, role: "user", parts: [{ type: "text", text }] };
}

async function send({ chatId, messages, trigger = "submit-message", messageId, abortSignal }) {
  return transport.sendMessages({ chatId, messages, trigger, messageId, abortSignal, metadata: undefined });
}

const out = {};
try {
  if (args.scenario === "send") {
    const message = userMessage(args.userId ?? "u1", args.text);
    message.parts.push(...(args.parts ?? []));  // e.g. a file part the server must refuse
    const stream = await send({ chatId: args.chatId, messages: [message] });
    Object.assign(out, await readAll(stream));
  } else if (args.scenario === "regenerate") {
    const messages = [userMessage(args.userId, args.text)];
    const stream = await send({
      chatId: args.chatId,
      messages,
      trigger: "regenerate-message",
      messageId: args.messageId,
    });
    Object.assign(out, await readAll(stream));
  } else if (args.scenario === "reconnect") {
    const abort = new AbortController();
    const stream = await send({
      chatId: args.chatId,
      messages: [userMessage("u1", args.text)],
      abortSignal: abort.signal,
    });
    out.first = await readAll(stream, { after: args.stopAfterText ?? 2, act: () => abort.abort() });
    const resumed = await transport.reconnectToStream({ chatId: args.chatId });
    out.resumed = resumed === null ? null : await readAll(resumed);
  } else if (args.scenario === "resume-none") {
    out.resumed = await transport.reconnectToStream({ chatId: args.chatId });
  } else {
    throw new Error(`unknown scenario ${args.scenario}`);
  }
} catch (error) {
  out.thrown = error.message ?? String(error);
}
console.log(JSON.stringify(out));
