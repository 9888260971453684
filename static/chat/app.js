// The chat page: wires the sidebar, the message list, the composer (and its attachments), the
// settings and the artifact panel to the history API; live.js carries the answers (WebSocket, SSE
// fallback, resume).

import { chatApi } from "./api.js";
import { answerFrom, servedBy } from "./answers.js";
import { ArtifactPanel } from "./artifacts.js";
import { AttachmentTray, filesFromParts, listenForFiles } from "./attachments.js";
import { explain, isAuthError } from "./errors.js";
import { LiveChat } from "./live.js";
import { MessageList } from "./messages.js";
import { LOOKUP_TOOL, resultsFromParts } from "./tools.js";
import { SettingsPanel } from "./settings.js";
import { Sidebar, sessionTitle } from "./sidebar.js";
import { UsagePanel } from "./usage.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const $ = (selector) => document.querySelector(selector);

const state = {
  session: null, // the open chat (a history API session); null for a new chat not saved yet
  draft: { provider: "", model: "", system_prompt: "" }, // a new chat's settings until it is saved
  servedBy: "", // "provider · model" of the chat's last answer, shown when the chat names none
  streaming: false, // an answer is being followed
};

const ui = {
  title: $("#chat-title"),
  model: $("#chat-model"),
  conn: $("#conn-state"),
  banner: $("#banner"),
  bannerText: $("#banner-text"),
  composer: $("#composer"),
  input: $("#composer-input"),
  json: $("#json-mode"),
  demoTool: $("#demo-tool"),
  send: $("#send"),
  stop: $("#stop"),
  attach: $("#attach"),
  attachInput: $("#attach-input"),
};

// --- page-wide feedback --------------------------------------------------------------------------
function showBanner(text) {
  ui.bannerText.textContent = text;
  ui.banner.hidden = false;
}

function hideBanner() {
  ui.banner.hidden = true;
}

function showError(error) {
  if (isAuthError(error)) {
    const here = window.location.pathname + window.location.search;
    window.location.href = `${config.loginUrl}?next=${encodeURIComponent(here)}`;
    return;
  }
  showBanner(explain(error));
}

function setConnection(label, kind = "") {
  ui.conn.textContent = label;
  ui.conn.dataset.kind = kind;
}

function setStreaming(streaming) {
  state.streaming = streaming;
  ui.stop.hidden = !streaming;
  ui.stop.disabled = false;
  showSendState();
  document.body.classList.toggle("streaming", streaming);
}

/** Send is disabled while an answer streams, and while files are uploading (it says so). */
function showSendState() {
  const uploading = attachments.busy;
  ui.send.disabled = state.streaming || uploading;
  ui.send.textContent = uploading ? "Uploading…" : "Send";
  ui.send.title = uploading ? "Wait for the files to finish uploading" : "";
}

function showSessionHeader() {
  const session = state.session;
  ui.title.textContent = session ? sessionTitle(session) : "New chat";
  const values = session || state.draft;
  const chosen = [values.provider, values.model].filter(Boolean).join(" · ");
  ui.model.textContent = chosen || (state.servedBy ? `${state.servedBy} (server default)` : "Server default");
  document.title = session ? `${sessionTitle(session)} · Chat` : "Chat";
}

function setUrl(key, replace = false) {
  const url = new URL(window.location.href);
  if (key) url.searchParams.set("session", key);
  else url.searchParams.delete("session");
  if (url.href === window.location.href) return;
  window.history[replace ? "replaceState" : "pushState"]({ session: key }, "", url);
}

function autosize() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 240)}px`;
}

// --- the parts -----------------------------------------------------------------------------------
const artifacts = new ArtifactPanel($("#artifact-panel"));
const attachments = new AttachmentTray($("#composer-files"), { onChange: () => showSendState() });
listenForFiles(attachments, {
  button: ui.attach,
  input: ui.attachInput,
  composer: ui.composer,
  dropZone: $("main.chat"), // the conversation and the composer
});
const messages = new MessageList($("#messages"), {
  onOpenArtifact: (artifact) => artifacts.open(state.session?.session_key, artifact),
});
const sidebar = new Sidebar($("#sidebar"), {
  onSelect: (session) => selectSession(session),
  onNew: () => openDraft(),
  onRenamed: (session) => {
    if (state.session?.session_key === session.session_key) showSessionHeader();
  },
  onDeleted: (key) => {
    if (state.session?.session_key === key) openDraft();
  },
  onError: showError,
});
const usage = new UsagePanel($("#usage"));
const settings = new SettingsPanel($("#settings"), $("#settings-toggle"), { onSave: saveSettings });
const live = new LiveChat(messages, {
  streaming: setStreaming,
  connection: setConnection,
  banner: showBanner,
  error: showError,
  finished: () => {
    sidebar.load();
    usage.load();
    if (document.activeElement === document.body) ui.input.focus();
  },
  servedBy: (label) => {
    state.servedBy = label;
    showSessionHeader();
  },
  notSent: (content, files) => {
    usage.load(); // a refusal for budget shows the budget used up
    if (!ui.input.value) {
      ui.input.value = content;
      autosize();
    }
    attachments.restore(files); // still uploaded: they can be sent again (or removed)
  },
  reload: () => {
    if (state.session) loadMessages(state.session);
  },
});

// --- opening a chat ------------------------------------------------------------------------------
function leaveCurrent() {
  live.detach();
  state.session = null;
  state.servedBy = "";
  hideBanner();
  artifacts.close();
  setConnection("");
}

function openDraft({ push = true } = {}) {
  leaveCurrent();
  sidebar.select(null);
  settings.fill(state.draft);
  showSessionHeader();
  messages.clear("Start a conversation: write a message below.");
  if (push) setUrl(null);
  ui.input.focus();
}

async function selectSession(session, { push = true } = {}) {
  leaveCurrent();
  state.session = session;
  sidebar.select(session.session_key);
  settings.fill(session);
  showSessionHeader();
  if (push) setUrl(session.session_key);
  messages.clear("Loading…");
  live.attach(session);
  await loadMessages(session);
}

async function openByKey(key, { push = true } = {}) {
  const known = sidebar.find(key);
  if (known) return selectSession(known, { push });
  try {
    return await selectSession(await chatApi.getSession(key), { push });
  } catch (error) {
    openDraft({ push: false });
    setUrl(null, true);
    if (error.status === 404) showBanner("That chat does not exist any more: start a new one or pick another.");
    else showError(error);
  }
}

/** Shows a chat's stored messages (answers already being followed keep their state) and follows a running answer. */
async function loadMessages(session) {
  let list;
  try {
    list = await chatApi.listMessages(session.session_key);
  } catch (error) {
    if (state.session !== session) return;
    messages.clear("");
    showError(error);
    return;
  }
  if (state.session !== session) return;
  const followed = new Map([...messages.answers.entries()].map(([key, entry]) => [key, entry.state]));
  messages.clear(list.length ? "" : "No messages yet: write one below.");
  let running = null;
  for (const message of list) {
    if (message.role === "user") messages.addUser(message.content, { id: message.id, files: filesFromParts(message.parts) });
    if (message.role === "tool") messages.addResults(resultsFromParts(message.parts), { id: message.id });
    if (message.role !== "assistant") continue;
    const known = followed.get(message.id);
    const entry = messages.addAnswer(message.id, known && known.lastSeq > 0 ? known : answerFrom(message));
    if (message.status === "streaming") running = entry;
    if (message.provider) state.servedBy = servedBy(message);
  }
  showSessionHeader();
  if (running && !live.follows(running.state.id)) live.resume(running);
}

// --- sending -------------------------------------------------------------------------------------
function titleFrom(content, files) {
  const line = content.split("\n").find((l) => l.trim()) || content;
  return (line.trim() || files[0]?.filename || "Attachment").slice(0, 80);
}

/** Sends the composer's text with the files uploaded in its tray (a message may be files only). */
async function send(content) {
  if (live.busy || attachments.busy) return;
  if (!content.trim() && !attachments.ready.length) return;
  hideBanner();
  ui.input.value = "";
  autosize();
  const files = attachments.take();
  const turn = live.begin(content, files);
  if (!state.session) {
    let session;
    try {
      const fields = { title: titleFrom(content, files) };
      for (const [name, value] of Object.entries(state.draft)) if (value) fields[name] = value;
      session = await chatApi.createSession(fields);
    } catch (error) {
      live.notSent(turn, error);
      return;
    }
    if (live.turn !== turn) return; // the user moved on meanwhile
    state.session = session;
    sidebar.upsert(session);
    sidebar.select(session.session_key);
    showSessionHeader();
    setUrl(session.session_key);
    live.attach(session);
  }
  await live.dispatch(turn, { jsonMode: ui.json.checked, tools: ui.demoTool.checked ? [LOOKUP_TOOL] : null });
}

async function saveSettings(values) {
  if (!state.session) {
    state.draft = { ...values };
    showSessionHeader();
    return true;
  }
  try {
    const updated = await chatApi.updateSession(state.session.session_key, values);
    Object.assign(state.session, updated || values);
    sidebar.upsert(state.session);
    showSessionHeader();
    return true;
  } catch (error) {
    showError(error);
    return false;
  }
}

// --- events --------------------------------------------------------------------------------------
ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send(ui.input.value);
});
ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send(ui.input.value);
  }
});
ui.input.addEventListener("input", autosize);
ui.stop.addEventListener("click", () => {
  ui.stop.disabled = true;
  live.stop();
});
$("#banner-close").addEventListener("click", hideBanner);
window.addEventListener("popstate", () => {
  const key = new URLSearchParams(window.location.search).get("session");
  if (key) openByKey(key, { push: false });
  else openDraft({ push: false });
});

async function start() {
  settings.loadProviders();
  usage.load();
  await sidebar.load("");
  const key = new URLSearchParams(window.location.search).get("session");
  if (key) await openByKey(key, { push: false });
  else openDraft({ push: false });
  document.body.dataset.ready = "true";
}

start();
