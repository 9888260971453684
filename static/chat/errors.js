// Error codes from the API, the socket and turn events, said plainly with what to do next.

import { formatReset } from "./usage.js";

function seconds(value) {
  const n = Math.max(1, Math.round(Number(value)));
  return `${n} second${n === 1 ? "" : "s"}`;
}

const ADVICE = {
  rate_limited: (e) =>
    `The provider is rate-limiting requests. ${e.retry_after ? `Wait ${seconds(e.retry_after)}` : "Wait a moment"} and send again, or pick another provider in Settings.`,
  provider_unavailable: () =>
    "The provider is unreachable or failing right now. Try again in a minute, or pick another provider in Settings.",
  provider_timeout: () => "The provider took too long to answer. Try again, or ask for a shorter answer.",
  provider_auth_failed: () =>
    "The provider rejected the server's API key. Ask the administrator to check the key, or pick another provider in Settings.",
  provider_not_configured: (e) => `${e.message} Pick another provider in Settings.`,
  invalid_request: (e) => `The provider refused the request: ${e.message}`,
  content_blocked: () => "The provider blocked this content. Rephrase the message and send it again.",
  invalid_json: () => "JSON mode: the reply was not valid JSON. Send again, or turn JSON mode off.",
  turn_in_progress: () => "An answer is still being generated in this session: wait for it, or press Stop.",
  stopped: () => "Stopped. The partial answer is saved.",
  disconnected: () => "The connection was lost before the answer finished. The partial answer is saved.",
  payload_too_large: (e) => e.message,
  network_error: () => "Cannot reach the server. Check your connection, then send again.",
  resume_unavailable: (e) => e.message,
  csrf_failed: () => "Your page is out of date: reload it and send again.",
  not_authenticated: () => "Your login has expired: reload the page and log in again.",
  budget_exceeded: (e) => {
    if (!e.resets_at) return e.message;
    const said = e.message.replace(/;\s*it resets at \S+$/, ".");
    return `${said} It resets ${formatReset(e.resets_at)}.`;
  },
};

/** A sentence for an error object `{code, message, retry_after?}` (an ApiError works too). */
export function explain(error) {
  const details = {
    code: error.code,
    message: error.message || "Something went wrong.",
    retry_after: error.retry_after ?? error.retryAfter ?? null,
    resets_at: error.resets_at ?? error.details?.resets_at ?? null,
  };
  const advice = ADVICE[details.code];
  return advice ? advice(details) : details.message;
}

export function isAuthError(error) {
  return error.status === 401 || error.code === "not_authenticated" || error.code === "authentication_failed";
}
