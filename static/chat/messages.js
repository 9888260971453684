// The message list: user messages as plain text, answers as sanitized Markdown (JSON replies
// pretty-printed), each answer with its artifacts, usage, status and any error said plainly.

import { explain } from "./errors.js";
import { prettyJson, renderMarkdown } from "./markdown.js";
import { artifactFilename } from "./artifacts.js";

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
    root.addEventListener("click", (event) => this._click(event));
  }

  clear(placeholder) {
    this.answers.clear();
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

  addUser(content, { id = "", failed = false } = {}) {
    const node = element("article", "msg msg-user");
    node.dataset.role = "user";
    if (id) node.dataset.id = id;
    node.append(element("div", "msg-body", content));
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
    node.append(element("div", "msg-body"), element("div", "msg-artifacts"), element("div", "msg-error"));
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
    const [body, artifacts, errorBox, meta] = node.children;
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
