// useChat's messages rebuilt from the history API, as docs/ai-sdk.md shows it (the block between
// the markers is the docs' code, word for word: tests/test_ai_sdk_tools.py checks they agree).
// --- docs/ai-sdk.md: rebuild ---
// A chat's stored messages as useChat's UIMessages: GET the history API's branch, then rebuild.
// A user message's files are `file` parts whose url is the attachment's download link.
// A tool loop (an answer's calls, the tool message of their results, the answer after it) is one
// assistant message of several steps, as useChat held it live: `tool-<name>` parts whose results
// are merged in (output-available / output-error), its id the loop's first answer's.
export function toUIMessages(branch) {
  const messages = [];
  let previous = null;
  for (const m of branch) {
    if (m.status === "streaming") break; // still being generated: resume it instead
    if (m.role === "user") {
      const parts = [];
      for (const p of m.parts) {
        if (p.type === "text") parts.push({ type: "text", text: p.text });
        if (p.type === "file") {
          const file = { type: "file", mediaType: p.media_type };
          if (p.filename) file.filename = p.filename;
          file.url = p.id ? p.download_url : p.url; // the download link answers to who may read the chat
          parts.push(file);
        }
      }
      messages.push({ id: m.client_message_id ?? m.id, role: "user", parts });
    } else if (m.role === "assistant") {
      const continues = previous?.role === "tool" && messages.at(-1)?.role === "assistant";
      if (!continues) messages.push({ id: m.id, role: "assistant", parts: [] });
      const parts = messages.at(-1).parts;
      parts.push({ type: "step-start" });
      for (const p of m.parts) {
        if (p.type === "text") parts.push({ type: "text", text: p.text, state: "done" });
        if (p.type === "tool_call") {
          const state = p.incomplete ? "input-streaming" : "input-available";
          parts.push({ type: `tool-${p.name}`, toolCallId: p.id, state, input: p.input ?? p.arguments });
        }
      }
    } else if (m.role === "tool") {
      for (const r of m.parts) {
        const call = messages.at(-1)?.parts.find((p) => p.toolCallId === r.call_id);
        if (call == null) continue;
        const result = r.is_error
          ? { state: "output-error", errorText: r.output }
          : { state: "output-available", output: r.output };
        Object.assign(call, result);
      }
    }
    previous = m;
  }
  return messages;
}

export async function loadUIMessages(chatId, { base = "", headers = {} } = {}) {
  const all = [];
  let url = `${base}/api/sessions/${encodeURIComponent(chatId)}/messages?page_size=200`;
  while (url) {
    const response = await fetch(url, { headers });
    if (response.status === 404) return []; // a chat with no message yet
    if (!response.ok) throw new Error(`history: ${response.status} ${await response.text()}`);
    const page = await response.json();
    all.push(...page.results);
    url = page.next;
  }
  const byId = new Map(all.map((m) => [m.id, m]));
  const branch = []; // the newest message's branch, oldest first
  for (let m = all.at(-1); m != null; m = byId.get(m.parent_id)) branch.unshift(m);
  return toUIMessages(branch);
}
// --- end ---
