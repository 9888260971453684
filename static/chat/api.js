// JSON calls to the history and turn APIs with the session cookie and the CSRF header.
// Every failure becomes an ApiError carrying the server's {"error": {"code", "message"}}.

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = details.retry_after ?? null;
  }
}

export function cookie(name) {
  const prefix = `${name}=`;
  for (const part of document.cookie.split(";")) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return "";
}

export function csrfHeaders(method) {
  return SAFE_METHODS.has(method) ? {} : { "X-CSRFToken": cookie("csrftoken") };
}

/** Same-origin path of a URL the server returned (DRF's absolute `next` links). */
export function localPath(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

/** The ApiError for a refusal: `body` is the parsed JSON (or null), `retryAfter` the header's value. */
export function apiError(status, statusText, body, retryAfter) {
  const error = (body && body.error) || {};
  const details = { ...error };
  if (details.retry_after == null && retryAfter) details.retry_after = Number(retryAfter);
  return new ApiError(
    status,
    error.code || `http_${status}`,
    error.message || `The server answered ${status} ${statusText}.`,
    details,
  );
}

export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return apiError(response.status, response.statusText, body, response.headers.get("Retry-After"));
}

export function networkError() {
  return new ApiError(0, "network_error", "Cannot reach the server.");
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json", ...csrfHeaders(method) };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw networkError();
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

const enc = encodeURIComponent;
export const sessionPath = (key) => `/api/sessions/${enc(key)}`;

export const chatApi = {
  listSessions(query, nextUrl) {
    if (nextUrl) return api("GET", localPath(nextUrl));
    return api("GET", query ? `/api/sessions?q=${enc(query)}` : "/api/sessions");
  },
  getSession: (key) => api("GET", sessionPath(key)),
  createSession: (fields) => api("POST", "/api/sessions", fields),
  updateSession: (key, fields) => api("PATCH", sessionPath(key), fields),
  deleteSession: (key) => api("DELETE", sessionPath(key)),
  /** Every message of a session, oldest first (follows the cursor pages). */
  async listMessages(key) {
    const messages = [];
    let page = await api("GET", `${sessionPath(key)}/messages`);
    for (let pages = 1; ; pages += 1) {
      messages.push(...page.results);
      if (!page.next || pages >= 50) return messages;
      page = await api("GET", localPath(page.next));
    }
  },
  getArtifact: (key, id) => api("GET", `${sessionPath(key)}/artifacts/${enc(id)}`),
  rawArtifactUrl: (key, id) => `${sessionPath(key)}/artifacts/${enc(id)}/raw`,
  stopMessage: (key, messageId) => api("POST", `${sessionPath(key)}/messages/${enc(messageId)}/stop`, {}),
  providers: () => api("GET", "/api/providers"),
};
