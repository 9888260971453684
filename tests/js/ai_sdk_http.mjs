// The published `ai` package's own DefaultChatTransport and readUIMessageStream against a live
// server: `node ai_sdk_http.mjs '<json>'` runs one scenario and prints one JSON line with what
// the client saw. Driven by tests/test_ai_sdk_http.py (which starts the server and checks the
// result against the database). `pkg` is "ai" (the current major) or "ai5" (the 5.0 line).
//
// Scenarios: send, regenerate, reconnect (abort mid-answer, then reconnectToStream), resume-none.

const args = JSON.parse(process.argv[2]);
const { DefaultChatTransport, readUIMessageStream } = await import(args.pkg);

const transport = new DefaultChatTransport({
  api: `${args.base}/api/ai-sdk/chat`,
  headers: args.headers ?? {},
  body: args.body ?? {},
});

function userMessage(id, text) {
  return { id, role: "user", parts: [{ type: "text", text }] };
}

// Read a chunk stream to the end: the chunk types seen, the final UIMessage, the errors reported.
async function readAll(stream, { stopAfterText = null, abort = null } = {}) {
  const [forTypes, forMessage] = stream.tee();
  const types = [];
  const errors = [];
  const typesDone = (async () => {
    const reader = forTypes.getReader();
    let texts = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        types.push(value.type);
        if (value.type === "text-delta" && stopAfterText != null && ++texts >= stopAfterText) {
          abort.abort();
          break;
        }
      }
    } catch (error) {
      errors.push(`chunks: ${error.message ?? error}`);
    }
  })();
  let message = null;
  try {
    for await (const snapshot of readUIMessageStream({
      stream: forMessage,
      onError: (error) => errors.push(error.message ?? String(error)),
    })) {
      message = snapshot;
    }
  } catch (error) {
    errors.push(`stream: ${error.message ?? error}`);
  }
  await typesDone;
  return { types, errors, message, text: textOf(message) };
}

function textOf(message) {
  if (!message) return null;
  return message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
}

async function send({ chatId, messages, trigger = "submit-message", messageId, abortSignal }) {
  return transport.sendMessages({ chatId, messages, trigger, messageId, abortSignal, metadata: undefined });
}

const out = {};
try {
  if (args.scenario === "send") {
    const stream = await send({ chatId: args.chatId, messages: [userMessage(args.userId ?? "u1", args.text)] });
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
    out.first = await readAll(stream, { stopAfterText: args.stopAfterText ?? 2, abort });
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
