// Client keys: create (the secret is shown once, with a copy button), limits (edited after creation too), revoke,
// usage per key.
import { api } from "../lib/api.js";
import { copyText, fmtNumber, fmtTime, h, table } from "../lib/dom.js";
import { t } from "../public/i18n.js";

const LIMITS = ["requests_per_minute", "max_concurrency", "tokens_per_day", "tokens_per_week", "tokens_per_month"];

function limitsText(key) {
  const shown = LIMITS.filter((k) => key[k]).map((k) => `${t(`keys.${k}`)}: ${key[k]}`);
  if (key.allowed_models?.length) shown.unshift(`${t("keys.allowed_models")}: ${key.allowed_models.join(", ")}`);
  return shown.join(", ") || "–";
}

// The limits of one key as a form: an empty number clears that limit, an empty model list allows every model.
// A value the admin API refuses shows its message under its own field (the API names it in `param`).
function limitsEditor(key, done) {
  const fields = {};
  const problems = {};
  const general = h("p", { class: "error", role: "alert" });
  const field = (name, input) => {
    fields[name] = input;
    problems[name] = h("p", { class: "error", id: `key-edit-${name}-error`, role: "alert" });
    return h("div", { class: "field" }, h("label", { for: input.id }, t(`keys.edit.${name}`)), input, problems[name]);
  };
  const models = field("allowed_models", h("input", { id: "key-edit-allowed_models", type: "text",
    value: (key.allowed_models || []).join(", "), placeholder: "gpt-5.5*, openrouter/*" }));
  const numbers = LIMITS.map((name) => field(name, h("input", { id: `key-edit-${name}`, type: "number",
    value: key[name] ?? "" })));
  const form = h("form", { class: "key-editor", id: "key-editor", onsubmit: async (event) => {
    event.preventDefault();
    for (const p of [general, ...Object.values(problems)]) p.textContent = "";
    const body = { allowed_models: fields.allowed_models.value.split(",").map((m) => m.trim()).filter(Boolean) };
    for (const name of LIMITS) body[name] = fields[name].value === "" ? null : Number(fields[name].value);
    try {
      await api(`/admin/client-keys/${key.id}`, { method: "PATCH", body });
      await done();
    } catch (error) {
      (problems[error.param] || general).textContent = error.message;
      fields[error.param]?.focus();
    }
  } }, h("div", { class: "grid2" }, models, numbers), general,
  h("div", { class: "row" }, h("button", { class: "primary", type: "submit", id: "key-edit-save" }, t("common.save")),
    h("button", { type: "button", onclick: () => done() }, t("common.close"))));
  return form;
}

export async function render(main) {
  const list = h("div", { id: "key-list" });
  const created = h("div", { id: "key-created", "aria-live": "polite" });
  const name = h("input", { id: "key-name", required: true, placeholder: t("keys.name") });
  const rpm = h("input", { id: "key-rpm", type: "number", min: 1, placeholder: t("keys.rpm"), "aria-label": t("keys.rpm") });
  const problem = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "row", id: "key-form", onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const body = { name: name.value.trim() };
    if (rpm.value) body.requests_per_minute = Number(rpm.value);
    try {
      const key = await api("/admin/client-keys", { method: "POST", body });
      const copy = h("button", { type: "button", id: "key-copy", onclick: () => copyText(key.key, copy) }, t("common.copy"));
      created.replaceChildren(h("div", { class: "panel" }, h("p", {}, t("keys.shown_once")),
        h("p", { class: "secret", id: "key-secret" }, key.key), copy));
      name.value = "";
      await reload();
    } catch (error) { problem.textContent = error.message; }
  } }, h("label", { for: "key-name", class: "sr-only" }, t("keys.name")), name, rpm,
  h("button", { class: "primary", type: "submit", id: "key-create" }, t("keys.create")));
  main.append(h("h1", {}, t("nav.keys")), h("section", { class: "panel" }, form, problem, created),
    h("section", { class: "panel" }, list));

  let editing = null; // the id of the key whose limits are being edited
  let keys = [];
  const usage = {};

  async function reload() {
    // the last 30 days per key from the daily rollups (a few hundred points, not a scan of the usage rows)
    const from = Math.floor(Date.now() / 1000 / 86400) * 86400 - 29 * 86400;
    const [listed, history] = await Promise.all([api("/admin/client-keys"),
      api(`/admin/usage-stats/history?granularity=day&group_by=key&from=${from}`)]);
    keys = listed.keys;
    for (const id of Object.keys(usage)) delete usage[id];
    for (const point of history.points) {
      const row = (usage[point.key] ||= { requests: 0, total_tokens: 0 });
      row.requests += point.requests;
      row.total_tokens += point.total_tokens;
    }
    draw();
  }

  function draw() {
    const rows = keys.flatMap((key) => [h("tr", { dataset: { id: key.id } },
      h("td", {}, key.name), h("td", { class: "secret" }, key.prefix || key.id),
      h("td", {}, key.enabled ? t("state.active") : t("state.disabled")),
      h("td", { class: "key-limits" }, limitsText(key)),
      h("td", { class: "key-requests" }, fmtNumber(usage[key.id]?.requests ?? 0)),
      h("td", {}, fmtNumber(usage[key.id]?.total_tokens ?? 0),
        h("div", { class: "muted" }, t("keys.today"), " ", fmtNumber(key.tokens_this_day))),
      h("td", {}, fmtTime(key.last_used_at)),
      h("td", {}, h("div", { class: "row" }, h("button", { type: "button", class: "key-toggle", onclick: async () => {
        await api(`/admin/client-keys/${key.id}`, { method: "PATCH", body: { enabled: !key.enabled } });
        await reload();
      } }, key.enabled ? t("accounts.disable") : t("accounts.enable")),
      h("button", { type: "button", class: "key-edit", "aria-expanded": String(editing === key.id), onclick: () => {
        editing = editing === key.id ? null : key.id;
        draw();
        document.getElementById("key-edit-allowed_models")?.focus();
      } }, t("keys.edit")),
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(t("keys.confirm_revoke", { name: key.name }))) return;
        await api(`/admin/client-keys/${key.id}`, { method: "DELETE" });
        await reload();
      } }, t("keys.revoke"))))),
    editing === key.id && h("tr", { class: "key-edit-row" }, h("td", { colspan: 8 }, limitsEditor(key, async () => {
      editing = null;
      await reload();
    })))]);
    list.replaceChildren(rows.length ? table([t("keys.name"), t("keys.prefix"), t("accounts.state"), t("keys.limits"),
      t("keys.requests_30d"), t("keys.tokens_30d"), t("accounts.last_used"), ""], rows) : h("p", { class: "muted" }, t("keys.empty")));
  }
  await reload();
}
