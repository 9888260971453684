// Per-session settings: provider, model and system prompt (saved on the session, sent with each turn).

import { chatApi } from "./api.js";

// Used until GET /api/providers answers (or when it does not exist).
const FALLBACK_PROVIDERS = {
  default: "",
  providers: [
    { name: "demo", configured: true, default_model: "demo", aliases: { fast: "demo", smart: "demo" } },
    { name: "gemini", configured: null, default_model: "gemini-2.5-flash", aliases: { fast: "gemini-2.5-flash", smart: "gemini-2.5-pro" } },
    { name: "openai", configured: null, default_model: "gpt-4o-mini", aliases: { fast: "gpt-4o-mini", smart: "gpt-4.1" } },
    { name: "openai-responses", configured: null, default_model: "gpt-4o-mini", aliases: { fast: "gpt-4o-mini", smart: "gpt-4.1" } },
    { name: "zai", configured: null, default_model: "glm-4.6", aliases: { fast: "glm-4.5-flash", smart: "glm-4.6" } },
    { name: "openai-compatible", configured: null, default_model: "llama3.2", aliases: {} },
  ],
};

function option(value, label, disabled = false) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = label;
  node.disabled = disabled;
  return node;
}

/** callbacks: onSaved(fields) after the user saves; the caller persists them. */
export class SettingsPanel {
  constructor(root, toggle, { onSave }) {
    this.root = root;
    this.toggle = toggle;
    this.onSave = onSave;
    this.provider = root.querySelector("#setting-provider");
    this.model = root.querySelector("#setting-model");
    this.models = root.querySelector("#setting-models");
    this.system = root.querySelector("#setting-system");
    this.status = root.querySelector("#settings-status");
    this.catalog = FALLBACK_PROVIDERS;
    toggle.addEventListener("click", () => this.show(this.root.hidden));
    this.provider.addEventListener("change", () => this._fillModels());
    root.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.status.textContent = "Saving…";
      const ok = await this.onSave(this.values());
      this.status.textContent = ok ? "Saved." : "";
      if (ok) this.hideTimer = setTimeout(() => this.show(false), 600);
    });
    root.querySelector("#settings-cancel").addEventListener("click", () => this.show(false));
  }

  async loadProviders() {
    try {
      const catalog = await chatApi.providers();
      if (catalog && Array.isArray(catalog.providers)) this.catalog = catalog;
    } catch {
      // keep the built-in list: the page works without the endpoint
    }
    this._fillProviders();
  }

  show(visible) {
    clearTimeout(this.hideTimer);
    this.root.hidden = !visible;
    this.toggle.setAttribute("aria-expanded", String(visible));
    if (visible) this.status.textContent = "";
  }

  _fillProviders() {
    const selected = this.provider.value;
    const defaultName = this.catalog.default;
    const options = [option("", defaultName ? `Server default (${defaultName})` : "Server default")];
    for (const p of this.catalog.providers) {
      const label = p.configured === false ? `${p.name} (not configured)` : p.name;
      options.push(option(p.name, label, p.configured === false));
    }
    this.provider.replaceChildren(...options);
    this.provider.value = selected;
    this._fillModels();
  }

  _fillModels() {
    const name = this.provider.value || this.catalog.default;
    const spec = this.catalog.providers.find((p) => p.name === name);
    const names = spec ? [spec.default_model, ...Object.keys(spec.aliases || {})] : [];
    this.models.replaceChildren(...[...new Set(names.filter(Boolean))].map((n) => option(n, n)));
    this.model.placeholder = spec?.default_model ? `Default: ${spec.default_model}` : "Provider default";
  }

  /** Shows a session's (or the draft's) values. */
  fill({ provider = "", model = "", system_prompt = "" } = {}) {
    if (provider && ![...this.provider.options].some((o) => o.value === provider)) {
      this.provider.append(option(provider, provider));
    }
    this.provider.value = provider;
    this.model.value = model;
    this.system.value = system_prompt;
    this._fillModels();
  }

  values() {
    return { provider: this.provider.value, model: this.model.value.trim(), system_prompt: this.system.value };
  }
}
