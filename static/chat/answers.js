// An answer's state in the page, built from a stored message and advanced by turn frames.
// Pure data: rendering is messages.js's, transport is live.js's.

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
    error: message.error_code ? { code: message.error_code, message: message.error_message } : null,
    lastSeq: 0,
  };
}

/** Forgets what was received, before following an answer again from its first event. */
export function restart(answer) {
  Object.assign(answer, { text: "", artifacts: [], lastSeq: 0, status: "streaming", error: null });
}

/**
 * Applies one turn frame (started, delta, artifact, usage, done, error) to `answer`. Frames are
 * applied once and in seq order; a snapshot (a stored answer sent again) starts the answer over.
 * Returns false when the frame changed nothing.
 */
export function applyFrame(answer, frame) {
  if (frame.snapshot && frame.type === "started") Object.assign(answer, { text: "", artifacts: [], lastSeq: 0 });
  if (frame.seq <= answer.lastSeq && !frame.snapshot) return false;
  answer.lastSeq = Math.max(answer.lastSeq, frame.seq);
  switch (frame.type) {
    case "started":
      Object.assign(answer, { status: "streaming", provider: frame.provider, model: frame.model });
      return true;
    case "delta":
      answer.text += frame.text;
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
      Object.assign(answer, { text: frame.content, status: "complete", error: null });
      if (frame.provider) Object.assign(answer, { provider: frame.provider, model: frame.model });
      return true;
    case "error":
      Object.assign(answer, {
        text: frame.content ?? answer.text,
        status: frame.status || "failed",
        error: { code: frame.code, message: frame.message, retry_after: frame.retry_after },
      });
      return true;
    default:
      return false;
  }
}

export function servedBy(answer) {
  return [answer.provider, answer.model].filter(Boolean).join(" · ");
}
