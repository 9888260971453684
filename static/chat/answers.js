// An answer's state in the page, built from a stored message and advanced by turn frames.
// Pure data: rendering is messages.js's, transport is live.js's. An answer's tool calls are
// `toolCalls`: {index, id, name, arguments (the JSON text so far), input, status} with status
// "calling" (arguments still arriving), "called" (whole) or "cut" (the answer ended mid-arguments).

import { callsFromParts } from "./tools.js";

export function answerFrom(message) {
  return {
    id: message.id,
    text: message.content || "",
    status: message.status || "complete",
    provider: message.provider || "",
    model: message.model || "",
    usage:
      message.output_tokens != null
        ? { input_tokens: message.input_tokens, output_tokens: message.output_tokens, estimated: message.usage_estimated }
        : null,
    artifacts: (message.artifacts || []).map((a) => ({ ...a })),
    toolCalls: callsFromParts(message.parts),
    finishReason: message.finish_reason || "",
    error: message.error_code ? { code: message.error_code, message: message.error_message } : null,
    lastSeq: 0,
  };
}

/** Forgets what was received, before following an answer again from its first event. */
export function restart(answer) {
  Object.assign(answer, { text: "", artifacts: [], toolCalls: [], lastSeq: 0, status: "streaming", error: null });
}

function callAt(answer, frame) {
  let call = answer.toolCalls.find((c) => c.index === frame.index);
  if (!call) {
    call = { index: frame.index, id: frame.call_id, name: frame.name || "", arguments: "", input: undefined, status: "calling" };
    answer.toolCalls.push(call);
    answer.toolCalls.sort((a, b) => a.index - b.index);
  }
  return call;
}

/** Calls still taking arguments when the answer ended are cut: never shown as whole calls. */
function cutOpenCalls(answer) {
  for (const call of answer.toolCalls) if (call.status === "calling") call.status = "cut";
}

/**
 * Applies one turn frame (started, delta, tool_call_start/_delta/_done, artifact, usage, done,
 * error) to `answer`. Frames are
 * applied once and in seq order; a snapshot (a stored answer sent again) starts the answer over.
 * Returns false when the frame changed nothing.
 */
export function applyFrame(answer, frame) {
  if (frame.snapshot && frame.type === "started") Object.assign(answer, { text: "", artifacts: [], toolCalls: [], lastSeq: 0 });
  if (frame.seq <= answer.lastSeq && !frame.snapshot) return false;
  answer.lastSeq = Math.max(answer.lastSeq, frame.seq);
  switch (frame.type) {
    case "started":
      Object.assign(answer, { status: "streaming", provider: frame.provider, model: frame.model });
      return true;
    case "delta":
      answer.text += frame.text;
      return true;
    case "tool_call_start":
      Object.assign(callAt(answer, frame), { id: frame.call_id, name: frame.name });
      return true;
    case "tool_call_delta":
      callAt(answer, frame).arguments += frame.arguments;
      return true;
    case "tool_call_done":
      Object.assign(callAt(answer, frame), {
        id: frame.call_id,
        name: frame.name,
        arguments: frame.arguments,
        input: frame.input,
        status: "called",
      });
      return true;
    case "artifact": {
      const artifact = { position: frame.position, language: frame.language, filename: frame.filename, content: frame.content };
      const known = answer.artifacts.find((a) => a.position === frame.position);
      if (known) Object.assign(known, artifact);
      else answer.artifacts.push(artifact);
      return true;
    }
    case "usage":
      answer.usage = { input_tokens: frame.input_tokens, output_tokens: frame.output_tokens, estimated: frame.estimated };
      return true;
    case "done":
      Object.assign(answer, { text: frame.content, status: "complete", error: null, finishReason: frame.finish_reason || "" });
      cutOpenCalls(answer);
      if (frame.provider) Object.assign(answer, { provider: frame.provider, model: frame.model });
      return true;
    case "error":
      Object.assign(answer, {
        text: frame.content ?? answer.text,
        status: frame.status || "failed",
        error: { code: frame.code, message: frame.message, retry_after: frame.retry_after },
      });
      cutOpenCalls(answer);
      return true;
    default:
      return false;
  }
}

export function servedBy(answer) {
  return [answer.provider, answer.model].filter(Boolean).join(" · ");
}
