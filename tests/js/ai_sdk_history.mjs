// The server's UIMessages (GET /api/ai-sdk/chat/{id}/messages) checked by the AI SDK itself:
// `node ai_sdk_history.mjs '{"base", "headers", "chatId"}'` prints one JSON line with
// - served: the endpoint's messages (or `status` and `body` when it did not answer 200),
// - rebuilt: the same chat rebuilt on the client from the history API (ui_history.mjs, the
//   reference code docs/ai-sdk.md showed before the endpoint existed),
// - valid: ai 7's validateUIMessages on the served messages (its error, or null),
// - equal: whether served and rebuilt are the same JSON.
// Driven by tests/test_ai_sdk_history.py.

import { validateUIMessages } from "ai";

import { loadUIMessages } from "./ui_history.mjs";

const args = JSON.parse(process.argv[2]);
const out = {};
try {
  const url = `${args.base}/api/ai-sdk/chat/${encodeURIComponent(args.chatId)}/messages`;
  const response = await fetch(url, { headers: args.headers ?? {} });
  if (response.status !== 200) {
    Object.assign(out, { status: response.status, body: await response.text() });
  } else {
    out.served = (await response.json()).messages;
    out.rebuilt = await loadUIMessages(args.chatId, { base: args.base, headers: args.headers ?? {} });
    try {
      await validateUIMessages({ messages: out.served });
      out.valid = null;
    } catch (error) {
      out.valid = String(error.message ?? error).slice(0, 400);
    }
    out.equal = JSON.stringify(sorted(out.served)) === JSON.stringify(sorted(out.rebuilt));
  }
} catch (error) {
  out.thrown = error.message ?? String(error);
}
console.log(JSON.stringify(out));
process.exit(0);

// The same JSON with every object's keys in one order (the two build parts key by key differently).
function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}
