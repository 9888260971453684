// Model output as safe HTML: Markdown rendered by marked, raw HTML shown as text (never parsed),
// images shown as links (no remote loads from model output), then DOMPurify as a second wall.

import { Marked } from "./vendor/marked/marked.esm.js";
import DOMPurify from "./vendor/dompurify/purify.es.js";

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]);

let fencePosition = 0; // the n-th fenced block of a message is its artifact at position n

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    image({ href, text }) {
      const label = escapeHtml(text || href);
      return `<a href="${escapeHtml(href)}" class="image-link">[image: ${label}]</a>`;
    },
    code({ text, lang, codeBlockStyle }) {
      const language = (lang || "").trim().split(/\s+/)[0].split(":")[0];
      const fenced = codeBlockStyle !== "indented";
      const position = fenced ? fencePosition++ : null;
      const code = text.replace(/\n$/, "");
      const attrs = position === null ? "" : ` data-position="${position}"`;
      const open =
        position === null ? "" : '<button type="button" class="link open-code" data-action="open-code">Open</button>';
      const cls = language ? ` class="language-${escapeHtml(language)}"` : "";
      return (
        `<div class="codeblock"${attrs} data-language="${escapeHtml(language)}">` +
        `<div class="codebar"><span class="codelang">${escapeHtml(language || "text")}</span>${open}</div>` +
        `<pre><code${cls}>${escapeHtml(code)}</code></pre></div>`
      );
    },
  },
});

const FORBID_TAGS = ["style", "form", "input", "textarea", "select", "img", "video", "audio", "iframe", "svg", "math"];

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Sanitized HTML for a Markdown text (safe to assign to innerHTML). */
export function renderMarkdown(text) {
  fencePosition = 0;
  const html = marked.parse(text || "");
  return DOMPurify.sanitize(html, { FORBID_TAGS, FORBID_ATTR: ["style"] });
}

/** The text pretty-printed when it is a whole JSON object or array (JSON-mode replies), else null. */
export function prettyJson(text) {
  const trimmed = (text || "").trim();
  if (!/^[[{]/.test(trimmed)) return null;
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return null;
  }
}
