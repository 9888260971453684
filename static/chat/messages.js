// The message list: user messages as plain text (with their files, attachments.js), answers as sanitized Markdown (JSON replies
// pretty-printed), each answer with its tool calls as cards, its artifacts, usage, status and any
// error said plainly. A tool message is not a bubble of its own: each of its results is shown on the
// card of the call it answers (by call id, wherever that answer is in the list).

import { explain } from "./errors.js";
import { prettyJson, renderMarkdown } from "./markdown.js";
import { artifactFilename } from "./artifacts.js";
import { filesElement } from "./attachments.js";
import { orphanCall, paintToolCards } from "./tools.js";

const STATUS_LABELS = {
  streaming: "Generating…",
  interrupted: "Interrupted",
  failed: "Failed",
  pending: "Waiting…",
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

export class MessageList {
  constructor(root, { onOpenArtifact }) {
    this.root = root;
    this.onOpenArtifact = onOpenArtifact;
    this.answers = new Map(); // message id (or a local placeholder id) -> {state, node}
    this.results = new Map(); // call id -> the tool_result answering it {call_id, name, output, is_error, notSent?}
    this.notes = new Map(); // call id -> why the page sent no result for it (when not the default)
    root.addEventListener("click", (event) => this._click(event));
  }

  clear(placeholder) {
    this.answers.clear();
    this.results.clear();
    this.notes.clear();
    this.root.replaceChildren();
    if (placeholder) this.root.append(element("div", "empty", placeholder));
  }

  _nearBottom() {
    return this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 80;
  }

  _append(node) {
    const stick = this._nearBottom();
    this.root.querySelector(":scope > .empty")?.remove();
    this.root.append(node);
    if (stick) this.root.scrollTop = this.root.scrollHeight;
  }

  /** A user message: its files (see attachments.js filesFromParts) above its text, when it has any. */
  addUser(content, { id = "", failed = false, files = [] } = {}) {
    const node = element("article", "msg msg-user");
    node.dataset.role = "user";
    if (id) node.dataset.id = id;
    if (files.length) node.append(filesElement(files));
    if (content || !files.length) node.append(element("div", "msg-body", content));
    if (failed) node.classList.add("msg-not-sent");
    this._append(node);
    return node;
  }

  markLastUserNotSent() {
    const users = this.root.querySelectorAll(".msg-user");
    users[users.length - 1]?.classList.add("msg-not-sent");
  }

  /** Adds an answer bubble for `state` (see answers.js) under `key` (its id, or a local one until started). */
  addAnswer(key, state) {
    const node = element("article", "msg msg-assistant");
    node.dataset.role = "assistant";
    const tools = element("div", "msg-tools");
    tools.setAttribute("aria-label", "Tool calls");
    node.append(element("div", "msg-body"), tools, element("div", "msg-artifacts"), element("div", "msg-error"));
    node.append(element("div", "msg-meta"));
    const entry = { state, node, frame: 0 };
    this.answers.set(key, entry);
    this._append(node);
    this._paint(entry);
    return entry;
  }

  get(key) {
    return this.answers.get(key);
  }

  /** Moves a placeholder answer to its server id (on `started`). */
  rekey(oldKey, newKey) {
    const entry = this.answers.get(oldKey);
    if (!entry) return;
    this.answers.delete(oldKey);
    this.answers.set(newKey, entry);
    entry.state.id = newKey;
    this.update(entry);
  }

  /** The answer whose tool calls include `callId`. */
  _callOwner(callId) {
    for (const entry of this.answers.values()) if (entry.state.toolCalls.some((c) => c.id === callId)) return entry;
    return null;
  }

  /**
   * Shows tool results (a stored tool message's, or ones this page just ran) on the cards of the
   * calls they answer. A result whose call is not on the page gets a card of its own here.
   */
  addResults(results, { id = "" } = {}) {
    const orphans = [];
    for (const result of results) {
      this.results.set(result.call_id, result);
      const owner = this._callOwner(result.call_id);
      if (owner) this.update(owner);
      else orphans.push(result);
    }
    if (!orphans.length) return;
    const node = element("article", "msg msg-tool");
    node.dataset.role = "tool";
    if (id) node.dataset.id = id;
    const cards = element("div", "msg-tools");
    cards.setAttribute("aria-label", "Tool results");
    paintToolCards(cards, orphans.map(orphanCall), { resultFor: (call) => this.results.get(call.id) });
    node.append(cards);
    this._append(node);
  }

  /** Says why no result was sent for these calls (shown on their cards). */
  noteCalls(calls, note) {
    for (const call of calls) {
      this.notes.set(call.id, note);
      const owner = this._callOwner(call.id);
      if (owner) this.update(owner);
    }
  }

  /** Results this page ran whose tool message the server refused: their cards say so. */
  markResultsNotSent(results, why) {
    for (const result of results) {
      const shown = this.results.get(result.call_id);
      if (shown) shown.notSent = `Not sent: ${why}`;
      const owner = this._callOwner(result.call_id);
      if (owner) this.update(owner);
    }
  }

  remove(key) {
    const entry = this.answers.get(key);
    if (!entry) return;
    entry.node.remove();
    this.answers.delete(key);
  }

  /** Repaints on the next animation frame: many deltas, one render. */
  update(entry) {
    if (entry.frame) return;
    entry.frame = requestAnimationFrame(() => {
      entry.frame = 0;
      this._paint(entry);
    });
  }

  _paint(entry) {
    const { state, node } = entry;
    const stick = this._nearBottom();
    const [body, tools, artifacts, errorBox, meta] = node.children;
    node.dataset.status = state.status;
    if (state.id) node.dataset.id = state.id;
    const pretty = state.status === "complete" ? prettyJson(state.text) : null;
    if (pretty !== null) {
      const pre = element("pre", "json");
      pre.append(element("code", "language-json", pretty));
      body.replaceChildren(pre);
    } else if (state.text) {
      body.innerHTML = renderMarkdown(state.text);
    } else {
      body.replaceChildren(element("span", "typing", state.status === "streaming" || state.status === "pending" ? "…" : ""));
    }
    body.hidden = !state.text && state.toolCalls.length > 0; // an answer that is only calls: just the cards
    paintToolCards(tools, state.toolCalls, {
      resultFor: (call) => (call.id ? this.results.get(call.id) : undefined),
      noteFor: (call) => this.notes.get(call.id) || "",
      streaming: state.status === "streaming" || state.status === "pending",
    });
    artifacts.replaceChildren(
      ...state.artifacts.map((artifact) => {
        const button = element("button", "artifact-chip");
        button.type = "button";
        button.dataset.position = artifact.position;
        button.append(element("span", "chip-icon", "</>"), element("span", "", artifactFilename(artifact)));
        if (artifact.language) button.append(element("span", "chip-lang", artifact.language));
        return button;
      }),
    );
    errorBox.hidden = !state.error;
    errorBox.textContent = state.error ? explain(state.error) : "";
    errorBox.setAttribute("role", state.error ? "alert" : "");
    meta.replaceChildren(...this._meta(state));
    if (stick) this.root.scrollTop = this.root.scrollHeight;
  }

  _meta(state) {
    const parts = [];
    if (STATUS_LABELS[state.status]) parts.push(element("span", `status status-${state.status}`, STATUS_LABELS[state.status]));
    if (state.provider || state.model) parts.push(element("span", "", [state.provider, state.model].filter(Boolean).join(" · ")));
    if (state.usage) {
      const u = state.usage;
      const approx = u.estimated ? "≈" : "";
      parts.push(element("span", "", `${approx}${u.input_tokens ?? 0} in / ${approx}${u.output_tokens ?? 0} out tokens`));
    }
    return parts;
  }

  _click(event) {
    const chip = event.target.closest(".artifact-chip");
    const block = event.target.closest(".open-code") && event.target.closest(".codeblock");
    if (!chip && !block) return;
    const node = event.target.closest(".msg-assistant");
    const entry = [...this.answers.values()].find((e) => e.node === node);
    if (!entry) return;
    const position = Number((chip || block).dataset.position);
    const stored = entry.state.artifacts.find((a) => a.position === position);
    if (stored) {
      this.onOpenArtifact(stored);
    } else if (block) {
      const language = block.dataset.language || "";
      this.onOpenArtifact({ position, language, filename: "", content: block.querySelector("code").textContent });
    }
  }
}
