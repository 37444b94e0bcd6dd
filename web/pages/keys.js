// Client keys: create (the secret is shown once, with a copy button), limits, revoke, usage per key.
import { api } from "../lib/api.js";
import { copyText, fmtNumber, fmtTime, h, table } from "../lib/dom.js";
import { t } from "../public/i18n.js";

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

  async function reload() {
    // the last 30 days per key from the daily rollups (a few hundred points, not a scan of the usage rows)
    const from = Math.floor(Date.now() / 1000 / 86400) * 86400 - 29 * 86400;
    const [{ keys }, history] = await Promise.all([api("/admin/client-keys"),
      api(`/admin/usage-stats/history?granularity=day&group_by=key&from=${from}`)]);
    const usage = {};
    for (const point of history.points) {
      const row = (usage[point.key] ||= { requests: 0, total_tokens: 0 });
      row.requests += point.requests;
      row.total_tokens += point.total_tokens;
    }
    const LIMITS = ["requests_per_minute", "max_concurrency", "tokens_per_day", "tokens_per_week", "tokens_per_month"];
    const rows = keys.map((key) => h("tr", { dataset: { id: key.id } },
      h("td", {}, key.name), h("td", { class: "secret" }, key.prefix || key.id),
      h("td", {}, key.enabled ? t("state.active") : t("state.disabled")),
      h("td", {}, LIMITS.filter((k) => key[k]).map((k) => `${t(`keys.${k}`)}: ${key[k]}`).join(", ") || "–"),
      h("td", { class: "key-requests" }, fmtNumber(usage[key.id]?.requests ?? 0)),
      h("td", {}, fmtNumber(usage[key.id]?.total_tokens ?? 0),
        h("div", { class: "muted" }, t("keys.today"), " ", fmtNumber(key.tokens_this_day))),
      h("td", {}, fmtTime(key.last_used_at)),
      h("td", {}, h("div", { class: "row" }, h("button", { type: "button", class: "key-toggle", onclick: async () => {
        await api(`/admin/client-keys/${key.id}`, { method: "PATCH", body: { enabled: !key.enabled } });
        await reload();
      } }, key.enabled ? t("accounts.disable") : t("accounts.enable")),
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(t("keys.confirm_revoke", { name: key.name }))) return;
        await api(`/admin/client-keys/${key.id}`, { method: "DELETE" });
        await reload();
      } }, t("keys.revoke"))))));
    list.replaceChildren(rows.length ? table([t("keys.name"), t("keys.prefix"), t("accounts.state"), t("keys.limits"),
      t("keys.requests_30d"), t("keys.tokens_30d"), t("accounts.last_used"), ""], rows) : h("p", { class: "muted" }, t("keys.empty")));
  }
  await reload();
}
