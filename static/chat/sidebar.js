// The sidebar: the user's sessions (newest activity first), search, new, rename and delete.

import { chatApi } from "./api.js";

const SEARCH_DELAY_MS = 250;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

export function sessionTitle(session) {
  return session.title || "Untitled chat";
}

/**
 * callbacks: onSelect(session), onNew(), onRenamed(session), onDeleted(key), onError(error).
 */
export class Sidebar {
  constructor(root, callbacks) {
    this.root = root;
    this.callbacks = callbacks;
    this.list = root.querySelector("#session-list");
    this.search = root.querySelector("#session-search");
    this.more = root.querySelector("#sessions-more");
    this.sessions = [];
    this.next = null;
    this.selectedKey = null;
    this.query = "";
    this.generation = 0;
    root.querySelector("#new-chat").addEventListener("click", () => this.callbacks.onNew());
    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.load(this.search.value.trim()), SEARCH_DELAY_MS);
    });
    this.more.addEventListener("click", () => this.loadMore());
    this.list.addEventListener("click", (event) => this._click(event));
  }

  async load(query = this.query) {
    this.query = query;
    const generation = ++this.generation;
    try {
      const page = await chatApi.listSessions(query);
      if (generation !== this.generation) return; // a newer search answered first
      this.sessions = page.results;
      this.next = page.next;
      this.render();
    } catch (error) {
      this.callbacks.onError(error);
    }
  }

  async loadMore() {
    if (!this.next) return;
    try {
      const page = await chatApi.listSessions(this.query, this.next);
      const known = new Set(this.sessions.map((s) => s.session_key));
      this.sessions.push(...page.results.filter((s) => !known.has(s.session_key)));
      this.next = page.next;
      this.render();
    } catch (error) {
      this.callbacks.onError(error);
    }
  }

  find(key) {
    return this.sessions.find((s) => s.session_key === key) || null;
  }

  /** Puts a session first (new, or with new activity) and repaints. */
  upsert(session) {
    this.sessions = [session, ...this.sessions.filter((s) => s.session_key !== session.session_key)];
    this.render();
  }

  select(key) {
    this.selectedKey = key;
    for (const item of this.list.children) {
      const selected = item.dataset.key === key;
      item.classList.toggle("selected", selected);
      if (selected) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    }
  }

  render() {
    const items = this.sessions.map((session) => this._item(session));
    if (!items.length) {
      const text = this.query ? `No chats match “${this.query}”.` : "No chats yet: write a message to start one.";
      items.push(element("li", "session-empty", text));
    }
    this.list.replaceChildren(...items);
    this.more.hidden = !this.next;
    this.select(this.selectedKey);
  }

  _item(session) {
    const item = element("li", "session");
    item.dataset.key = session.session_key;
    const open = element("button", "session-open");
    open.type = "button";
    open.dataset.action = "open";
    const top = element("span", "session-top");
    top.append(element("span", "session-title", sessionTitle(session)), element("span", "session-when", when(session.updated_at)));
    open.append(top);
    const text = session.last_message ? session.last_message.content : "";
    const preview = text.replace(/[`*#>]+/g, "").replace(/\s+/g, " ").trim().slice(0, 90);
    open.append(element("span", "session-preview", preview || " "));
    const actions = element("span", "session-actions");
    const rename = element("button", "icon", "✎");
    rename.type = "button";
    rename.dataset.action = "rename";
    rename.title = "Rename";
    rename.setAttribute("aria-label", "Rename");
    const remove = element("button", "icon danger", "✕");
    remove.type = "button";
    remove.dataset.action = "delete";
    remove.title = "Delete";
    remove.setAttribute("aria-label", "Delete");
    actions.append(rename, remove);
    item.append(open, actions);
    return item;
  }

  _click(event) {
    const button = event.target.closest("button[data-action]");
    const item = event.target.closest("li.session");
    if (!button || !item) return;
    const session = this.find(item.dataset.key);
    if (!session) return;
    if (button.dataset.action === "open") this.callbacks.onSelect(session);
    if (button.dataset.action === "rename") this._rename(item, session);
    if (button.dataset.action === "delete") this._delete(session);
  }

  _rename(item, session) {
    const input = element("input", "session-rename");
    input.value = session.title || "";
    input.maxLength = 200;
    input.setAttribute("aria-label", "New title");
    const titleNode = item.querySelector(".session-title");
    titleNode.replaceWith(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (!save || !title || title === session.title) {
        this.render();
        return;
      }
      try {
        const updated = await chatApi.updateSession(session.session_key, { title });
        Object.assign(session, updated);
        this.render();
        this.callbacks.onRenamed(session);
      } catch (error) {
        this.render();
        this.callbacks.onError(error);
      }
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
    input.addEventListener("click", (event) => event.stopPropagation());
  }

  async _delete(session) {
    if (!window.confirm(`Delete “${sessionTitle(session)}” and all its messages?`)) return;
    try {
      await chatApi.deleteSession(session.session_key);
      this.sessions = this.sessions.filter((s) => s.session_key !== session.session_key);
      this.render();
      this.callbacks.onDeleted(session.session_key);
    } catch (error) {
      this.callbacks.onError(error);
    }
  }
}
