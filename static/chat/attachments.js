// Files in the page: the composer's tray (files attached by the button, by paste or by drop, each
// uploaded at once to POST /api/attachments with a progress bar, a thumbnail or a chip, a remove
// button, and the server's message when it refuses one), and a sent message's files (images as
// thumbnails linking to their download, other files as download links with name and size).
// Uploads go over XMLHttpRequest: fetch reports no upload progress.

import { apiError, csrfHeaders, networkError } from "./api.js";
import { explain } from "./errors.js";

export const UPLOAD_PATH = "/api/attachments";
const UPLOAD_FIELD = "file";
/** Types shown as a picture (the server's image allowlist): anything else is a chip. */
const PICTURES = new Set(["image/png", "image/jpeg", "image/webp", "image/gif"]);
const PASTED_NAMES = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif" };

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export function isPicture(mediaType) {
  return PICTURES.has(String(mediaType || "").toLowerCase());
}

/** A short label for a chip's icon: the type's subtype ("PDF", "PLAIN") or "FILE". */
function typeLabel(mediaType) {
  const sub = String(mediaType || "").split("/")[1] || "";
  return (sub === "plain" ? "TXT" : sub.split(/[.+-]/)[0] || "file").slice(0, 4).toUpperCase();
}

/**
 * Uploads one file (multipart, field `file`), with the CSRF header the page's other POSTs send.
 * Returns {promise, abort}: the promise resolves with the server's attachment JSON (201) or rejects
 * with an ApiError carrying the server's {"error": {...}} (an AbortError when aborted);
 * `onProgress(fraction)` follows the request body going out.
 */
export function uploadAttachment(file, { onProgress = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", UPLOAD_PATH);
    xhr.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(csrfHeaders("POST"))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(Math.min(event.loaded / event.total, 1));
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201 && body && body.id) {
        onProgress(1);
        resolve(body);
      } else {
        reject(apiError(xhr.status, xhr.statusText, body, xhr.getResponseHeader("Retry-After")));
      }
    });
    xhr.addEventListener("error", () => reject(networkError()));
    xhr.addEventListener("abort", () => reject(new DOMException("The upload was cancelled.", "AbortError")));
    const form = new FormData();
    form.append(UPLOAD_FIELD, file, fileName(file));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/** The name a file is sent under: its own, or one made from its type (a pasted image has none). */
function fileName(file) {
  if (file.name) return file.name;
  return `pasted.${PASTED_NAMES[file.type] || "bin"}`;
}

function forgetUpload(id) {
  // an upload removed before sending: the server would sweep it later anyway, so a failure is not an error
  const xhr = new XMLHttpRequest();
  xhr.open("DELETE", `${UPLOAD_PATH}/${encodeURIComponent(id)}`);
  for (const [name, value] of Object.entries(csrfHeaders("DELETE"))) xhr.setRequestHeader(name, value);
  xhr.send();
}

// --- the composer's tray -------------------------------------------------------------------------

/**
 * The files attached to the message being written. Each item is uploaded as soon as it is added;
 * its node's `data-state` is "uploading", "done" or "error" (the tests' handle and a CSS hook).
 * A refused file stays, with the server's message, until removed: nothing is dropped silently.
 * `onChange()` is called whenever what can be sent changes.
 */
export class AttachmentTray {
  constructor(root, { onChange = () => {} } = {}) {
    this.root = root;
    this.onChange = onChange;
    this.items = [];
    this.root.addEventListener("click", (event) => {
      const button = event.target.closest(".file-remove");
      if (button) this.remove(button.closest(".file-item"));
    });
    this._paintEmpty();
  }

  /** Whether a file is still uploading (the page does not send until every upload has finished). */
  get busy() {
    return this.items.some((item) => item.state === "uploading");
  }

  /** The uploaded files, as the server described them (in the order they were attached). */
  get ready() {
    return this.items.filter((item) => item.state === "done").map((item) => item.attachment);
  }

  add(files) {
    for (const file of files) this._start(file);
    this.onChange();
  }

  /** Takes the uploaded files for a message: they leave the tray; refused ones stay, with their message. */
  take() {
    const taken = this.items.filter((item) => item.state === "done");
    for (const item of taken) this._drop(item);
    this.onChange();
    return taken.map((item) => item.attachment);
  }

  /** Puts back files of a message the server refused (still uploaded, not sent). */
  restore(attachments) {
    for (const attachment of attachments) {
      if (this.items.some((item) => item.attachment?.id === attachment.id)) continue;
      const item = this._item({ name: attachment.filename, type: attachment.media_type, size: attachment.size });
      item.preview = isPicture(attachment.media_type) ? attachment.download_url : "";
      item.attachment = attachment;
      item.state = "done";
      item.progress = 1;
      this._paint(item);
    }
    this.onChange();
  }

  remove(node) {
    const item = this.items.find((i) => i.node === node);
    if (!item) return;
    if (item.state === "uploading") item.upload.abort();
    if (item.state === "done") forgetUpload(item.attachment.id);
    this._drop(item);
    this.onChange();
  }

  _item({ name, type, size }) {
    const item = { name, type, size, state: "uploading", progress: 0, attachment: null, error: "", preview: "", node: null };
    item.node = this._build(item);
    this.items.push(item);
    this.root.append(item.node);
    this._paintEmpty();
    return item;
  }

  _start(file) {
    const item = this._item({ name: fileName(file), type: file.type, size: file.size });
    if (isPicture(file.type)) item.preview = URL.createObjectURL(file);
    item.upload = uploadAttachment(file, {
      onProgress: (fraction) => {
        item.progress = fraction;
        this._paintProgress(item);
      },
    });
    this._paint(item);
    item.upload.promise.then(
      (attachment) => {
        item.attachment = attachment;
        item.state = "done";
        item.progress = 1;
      },
      (error) => {
        if (error.name === "AbortError") return;
        item.state = "error";
        item.error = `Not attached: ${explain(error)}`;
      },
    ).finally(() => {
      if (!this.items.includes(item)) return;
      this._paint(item);
      this.onChange();
    });
  }

  _drop(item) {
    if (item.preview.startsWith("blob:")) URL.revokeObjectURL(item.preview);
    item.node.remove();
    this.items = this.items.filter((i) => i !== item);
    this._paintEmpty();
  }

  _build(item) {
    const node = element("div", "file-item");
    node.dataset.name = item.name;
    const remove = element("button", "file-remove icon", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${item.name}`);
    remove.title = "Remove";
    const info = element("div", "file-info");
    const progress = element("progress", "file-progress");
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", `Uploading ${item.name}`);
    info.append(element("span", "file-name", item.name), element("span", "file-size", formatSize(item.size)), progress);
    node.append(element("span", "file-preview"), info, remove, element("div", "file-error"));
    return node;
  }

  _paint(item) {
    const { node } = item;
    node.dataset.state = item.state;
    const preview = node.querySelector(".file-preview");
    if (item.preview && !preview.querySelector("img")) {
      const img = element("img", "file-thumb");
      img.alt = item.name;
      img.src = item.preview;
      preview.replaceChildren(img);
    } else if (!item.preview && !preview.firstChild) {
      preview.replaceChildren(element("span", "file-icon", typeLabel(item.type)));
    }
    this._paintProgress(item);
    const error = node.querySelector(".file-error");
    error.textContent = item.error;
    error.hidden = !item.error;
    error.setAttribute("role", item.error ? "alert" : "");
  }

  _paintProgress(item) {
    const progress = item.node.querySelector(".file-progress");
    progress.value = item.progress;
    progress.hidden = item.state === "error";
  }

  _paintEmpty() {
    this.root.hidden = this.items.length === 0;
  }
}

/**
 * Wires the ways to attach: the button (a hidden multiple file input); paste anywhere on the page
 * but in another field (the search box, the settings) — files on the clipboard, e.g. a screenshot,
 * are attached, and text on it still pastes as text; and drop onto `dropZone` (the conversation
 * and the composer; a file dropped elsewhere is ignored rather than opened in place of the page).
 */
export function listenForFiles(tray, { button, input, composer, dropZone }) {
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    if (input.files.length) tray.add([...input.files]);
    input.value = ""; // the same file can be chosen again
  });
  document.addEventListener("paste", (event) => {
    const field = event.target instanceof Element && event.target.closest("input, textarea, select, [contenteditable]");
    if (field && !composer.contains(field)) return; // that field's paste
    const files = [...(event.clipboardData?.files || [])];
    if (!files.length) return;
    if (!event.clipboardData.types.includes("text/plain")) event.preventDefault();
    tray.add(files);
  });
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  let depth = 0;
  dropZone.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    dropZone.classList.add("drop-target");
  });
  dropZone.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  dropZone.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) dropZone.classList.remove("drop-target");
  });
  dropZone.addEventListener("drop", (event) => {
    depth = 0;
    dropZone.classList.remove("drop-target");
    const files = [...(event.dataTransfer?.files || [])];
    if (!files.length) return;
    event.preventDefault(); // the browser would otherwise open the file in place of the page
    tray.add(files);
  });
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (!carriesFiles(event) || dropZone.contains(event.target)) return;
      event.preventDefault(); // not a place to drop files: nothing happens (the page stays)
      event.dataTransfer.dropEffect = "none";
    });
  }
}

// --- a sent message's files ------------------------------------------------------------------------

/** The files of a stored user message's parts (the history API's `file` parts). */
export function filesFromParts(parts) {
  return (parts || [])
    .filter((part) => part.type === "file")
    .map((part) => ({
      id: part.id,
      media_type: part.media_type || "",
      filename: part.filename || "",
      size: part.size ?? 0,
      sha256: part.sha256 || "",
      download_url: part.download_url || (part.id ? `${UPLOAD_PATH}/${encodeURIComponent(part.id)}/content` : ""),
      url: part.url || "",
    }));
}

function fileChip(file) {
  const link = element("a", "file-chip");
  link.href = file.download_url || file.url;
  link.download = file.filename || "";
  link.title = `Download ${file.filename || "the file"}`;
  link.append(
    element("span", "file-icon", typeLabel(file.media_type)),
    element("span", "file-name", file.filename || file.url || "file"),
    element("span", "file-size", file.size ? formatSize(file.size) : ""),
  );
  return link;
}

function fileThumb(file) {
  const link = element("a", "file-thumb-link");
  link.href = file.download_url;
  link.download = file.filename || "";
  link.title = `${file.filename || "image"} (${formatSize(file.size)}): download`;
  const img = element("img", "file-thumb");
  img.alt = file.filename || "image";
  img.src = file.download_url;
  img.addEventListener("error", () => link.replaceWith(fileChip(file))); // gone, or not an image after all
  link.append(img);
  return link;
}

/** A message's files: images as thumbnails linking to their download, others as download chips. */
export function filesElement(files) {
  const list = element("div", "msg-files");
  list.setAttribute("aria-label", "Attachments");
  for (const file of files) list.append(isPicture(file.media_type) && file.download_url ? fileThumb(file) : fileChip(file));
  return list;
}
