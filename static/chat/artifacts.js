// The side panel for a code artifact: language, file name, the code, copy and download.
// Stored artifacts download from the raw endpoint; ones still streaming (no id yet) from a Blob.

import { chatApi } from "./api.js";

const EXTENSIONS = {
  python: "py", py: "py", javascript: "js", js: "js", typescript: "ts", ts: "ts", json: "json",
  html: "html", css: "css", bash: "sh", sh: "sh", shell: "sh", sql: "sql", go: "go", rust: "rs",
  java: "java", c: "c", cpp: "cpp", "c++": "cpp", ruby: "rb", php: "php", yaml: "yaml", yml: "yml",
  markdown: "md", md: "md", toml: "toml", xml: "xml", kotlin: "kt", swift: "swift",
};

export function artifactFilename(artifact) {
  if (artifact.filename) return artifact.filename;
  const ext = EXTENSIONS[(artifact.language || "").toLowerCase()] || "txt";
  return `snippet-${(artifact.position ?? 0) + 1}.${ext}`;
}

export class ArtifactPanel {
  constructor(root) {
    this.root = root;
    this.name = root.querySelector("#artifact-name");
    this.language = root.querySelector("#artifact-language");
    this.code = root.querySelector("#artifact-code");
    this.copyButton = root.querySelector("#artifact-copy");
    this.download = root.querySelector("#artifact-download");
    this.status = root.querySelector("#artifact-status");
    this.blobUrl = null;
    root.querySelector("#artifact-close").addEventListener("click", () => this.close());
    this.copyButton.addEventListener("click", () => this.copy());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.root.hidden) this.close();
    });
  }

  /** artifact: {id?, position, language, filename, content?}; fetched from the API when content is absent. */
  async open(sessionKey, artifact) {
    let item = artifact;
    this.root.hidden = false;
    document.body.classList.add("with-artifact");
    this.status.textContent = "";
    if (item.content == null && item.id != null) {
      this.code.textContent = "Loading…";
      try {
        item = { ...item, ...(await chatApi.getArtifact(sessionKey, item.id)) };
      } catch (error) {
        this.code.textContent = "";
        this.status.textContent = `Could not load this artifact: ${error.message}`;
        return;
      }
    }
    const filename = artifactFilename(item);
    this.current = item;
    this.name.textContent = filename;
    this.language.textContent = item.language || "text";
    this.code.textContent = item.content ?? "";
    this.code.className = item.language ? `language-${item.language}` : "";
    if (this.blobUrl) URL.revokeObjectURL(this.blobUrl);
    this.blobUrl = null;
    if (item.id != null && sessionKey) {
      this.download.href = chatApi.rawArtifactUrl(sessionKey, item.id);
    } else {
      this.blobUrl = URL.createObjectURL(new Blob([item.content ?? ""], { type: "text/plain;charset=utf-8" }));
      this.download.href = this.blobUrl;
    }
    this.download.setAttribute("download", filename);
  }

  async copy() {
    const text = this.current?.content ?? "";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const range = document.createRange();
      range.selectNodeContents(this.code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      document.execCommand("copy");
      selection.removeAllRanges();
    }
    this.status.textContent = "Copied to the clipboard.";
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => {
      this.status.textContent = "";
    }, 2000);
  }

  close() {
    this.root.hidden = true;
    document.body.classList.remove("with-artifact");
  }
}
