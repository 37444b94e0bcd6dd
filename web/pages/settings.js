// Settings: each field saves through the admin API's config store (written to local.yaml, applied at once);
// a refused value shows the store's message next to the field.
import { api } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { t } from "../public/i18n.js";

// [section, key, kind, choices]; "" in choices stands for an unset value (null)
const FIELDS = [
  ["auth", "rotation_strategy", "choice", ["least_used", "round_robin", "sticky"]],
  ["quota", "warning_thresholds", "numbers"],
  ["quota", "skip_exhausted", "bool"],
  ["quota", "refresh_interval_minutes", "number"],
  ["model", "default", "text"],
  ["model", "default_reasoning_effort", "choice", ["", "none", "minimal", "low", "medium", "high", "xhigh"]],
  ["model", "aliases", "mapping"],
  ["model", "custom_models", "json"],
  ["ollama", "enabled", "bool"],
  ["ollama", "port", "number"],
  ["client", "identity", "choice", ["codex-tui", "codex-exec", "app-server"]],
  ["client", "version", "text"],
  ["logs", "request_log", "bool"],
  ["logs", "request_log_bodies", "bool"],
];

function shown(kind, value) {
  if (kind === "numbers") return (value || []).join(", ");
  if (kind === "mapping") return Object.entries(value || {}).map(([k, v]) => `${k} = ${v}`).join("\n");
  if (kind === "json") return JSON.stringify(value ?? [], null, 2);
  return value ?? "";
}

function parsed(kind, input) {
  const text = input.value;
  if (kind === "bool") return input.checked;
  if (kind === "number" || kind === "choice") return text === "" ? null : kind === "number" ? Number(text) : text;
  if (kind === "json") { // a syntax error is shown at the field like the store's own refusals
    try { return JSON.parse(text); } catch (error) { throw new Error(t("settings.invalid_json", { error: error.message })); }
  }
  if (kind === "numbers") return text.split(",").map((x) => x.trim()).filter(Boolean).map(Number);
  if (kind === "mapping") {
    return Object.fromEntries(text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const [name, ...target] = line.split("=");
      return [name.trim(), target.join("=").trim()];
    }));
  }
  return text;
}

export async function render(main) {
  let settings = await api("/admin/settings");
  const ollama = h("span", { id: "ollama-state" });
  function showOllama(status) {
    ollama.textContent = `${status.state}${status.url ? " — " + status.url : ""}${status.error ? " — " + status.error : ""}`;
  }
  const ollamaState = async () => showOllama(await api("/admin/ollama-status"));
  const sections = {};
  for (const [section, key, kind, choices] of FIELDS) {
    const id = `set-${section}-${key}`;
    const value = settings[section][key];
    let input;
    if (kind === "bool") input = h("input", { id, type: "checkbox", checked: Boolean(value) });
    else if (kind === "choice") input = h("select", { id }, choices.map((c) => h("option", { value: c, selected: c === (value ?? "") },
      c || t("settings.unset"))));
    else if (kind === "mapping") input = h("textarea", { id, rows: 5 }, shown(kind, value));
    else if (kind === "json") input = h("textarea", { id, rows: 8, class: "mono", spellcheck: "false",
      "aria-describedby": `${id}-hint` }, shown(kind, value));
    else input = h("input", { id, type: kind === "number" ? "number" : "text", value: shown(kind, value) });
    const problem = h("p", { class: "error", id: `${id}-error`, role: "alert" });
    const saved = h("span", { class: "ok", "aria-live": "polite" });
    const save = h("button", { type: "button", id: `${id}-save`, onclick: async () => {
      problem.textContent = "";
      saved.textContent = "";
      try {
        if (section === "ollama") { // applied at once; the answer carries the listener's resulting state
          const result = await api("/admin/ollama-settings", { method: "POST", body: { [key]: parsed(kind, input) } });
          showOllama(result.status);
          saved.textContent = t("common.saved");
        } else {
          const result = await api("/admin/settings", { method: "PATCH", body: { [section]: { [key]: parsed(kind, input) } } });
          settings = result.settings;
          saved.textContent = result.restart_required ? t("settings.restart") : t("common.saved");
        }
      } catch (error) { problem.textContent = error.message; }
    } }, t("common.save"));
    const hint = kind === "json" && h("p", { class: "muted", id: `${id}-hint` }, t(`settings.${section}.${key}.hint`));
    const field = h("div", { class: "field" }, h("label", { for: id }, t(`settings.${section}.${key}`)), hint,
      h("div", { class: "row" }, input, save, saved), problem);
    (sections[section] ||= h("section", { class: "panel" }, h("h2", {}, t(`settings.${section}`)))).append(field);
  }
  sections.ollama.append(h("p", {}, t("overview.ollama"), ": ", ollama));
  main.append(h("h1", {}, t("nav.settings")), h("div", { class: "grid2" }, Object.values(sections)));
  await ollamaState();
}
