// Accounts: the pool with state, quota bars and usage; add (device code, paste callback, tokens); enable,
// disable, relabel, delete; bulk actions; export; health check with progress.
import { api } from "../lib/api.js";
import { countdown, fmtNumber, fmtTime, h, quotaBar, table } from "../lib/dom.js";
import { t } from "../public/i18n.js";

const HEALTH_BATCH = 5; // accounts checked per call, so the progress bar moves while a big pool is checked

function quotaCell(quota) {
  if (!quota) return h("span", { class: "muted" }, "–");
  const credits = quota.credits;
  return h("div", {}, ["primary", "secondary"].filter((w) => quota[w]).map((w) =>
    h("div", { class: "nowrap" }, h("span", { class: "muted" }, `${t(`quota.${w}`)} `), quotaBar(quota[w].used_percent),
      ` ${quota[w].used_percent}% · ${countdown(quota[w].resets_at)}`)),
    credits && (credits.has_credits || credits.unlimited)
      ? h("div", { class: "muted" }, t("accounts.credits"), " ", credits.unlimited ? "∞" : credits.balance) : null);
}

export async function render(main) {
  const selected = new Set();
  const status = h("p", { role: "status", id: "acc-status" });
  const progress = h("progress", { id: "health-progress", max: 1, value: 0, hidden: true });
  const list = h("div", { id: "acc-list" });
  const bulk = h("div", { class: "row" },
    h("button", { type: "button", id: "bulk-enable", onclick: () => bulkStatus("active") }, t("accounts.enable")),
    h("button", { type: "button", id: "bulk-disable", onclick: () => bulkStatus("disabled") }, t("accounts.disable")),
    h("button", { type: "button", id: "bulk-delete", class: "danger", onclick: () => bulkDelete() }, t("accounts.delete")),
    h("button", { type: "button", id: "health-check", onclick: () => healthCheck() }, t("accounts.health_check")),
    h("a", { href: "/auth/accounts/export?format=full", download: "" }, t("accounts.export_full")),
    h("a", { href: "/auth/accounts/export?format=minimal", download: "" }, t("accounts.export_minimal")));

  const PAGE = 100;
  let offset = 0;
  let total = 0;
  const search = h("input", { id: "acc-search", type: "search", placeholder: t("accounts.search"), "aria-label": t("accounts.search") });
  const stateFilter = h("select", { id: "acc-state", "aria-label": t("accounts.state") },
    h("option", { value: "" }, t("accounts.all_states")),
    ["active", "cooldown", "rate_limited", "expired", "banned", "disabled", "refreshing"].map((s) => h("option", { value: s }, t(`state.${s}`))));
  const pager = h("div", { class: "row", id: "acc-pager" });
  const selectAll = h("button", { type: "button", id: "acc-select-all", onclick: async () => {
    const { ids } = await api(`/admin/accounts-page?${query(0, 1)}&ids=1`);
    ids.forEach((id) => selected.add(id));
    for (const box of list.querySelectorAll("tbody input[type=checkbox]")) box.checked = true;
    status.textContent = t("accounts.selected", { count: selected.size });
  } }, t("accounts.select_all"));
  let typing = null;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { offset = 0; reload(); }, 250); });
  stateFilter.addEventListener("change", () => { offset = 0; reload(); });
  bulk.prepend(search, stateFilter, selectAll);
  main.append(h("h1", {}, t("nav.accounts")), addPanel(() => reload(), status), h("section", { class: "panel" }, bulk,
    progress, status, list, pager));

  function query(from, limit) {
    const params = new URLSearchParams({ offset: String(from), limit: String(limit) });
    if (search.value.trim()) params.set("q", search.value.trim());
    if (stateFilter.value) params.set("state", stateFilter.value);
    return params.toString();
  }

  async function reload() {
    const data = await api(`/admin/accounts-page?${query(offset, PAGE)}`);
    total = data.total;
    const rows = data.accounts.map((account) => {
      const state = account.state;
      const box = h("input", { type: "checkbox", checked: selected.has(account.id),
        "aria-label": t("accounts.select", { name: account.label || account.email }),
        onchange: (e) => (e.target.checked ? selected.add(account.id) : selected.delete(account.id)) });
      return h("tr", { dataset: { id: account.id } },
        h("td", {}, box),
        h("td", {}, h("div", {}, account.label || "–"), h("div", { class: "muted" }, account.email || account.id)),
        h("td", {}, account.plan_type || "–"),
        h("td", {}, h("span", { class: `badge ${state}` }, t(`state.${state}`)),
          account.status_reason ? h("div", { class: "muted" }, account.status_reason) : null,
          state === "cooldown" ? h("div", { class: "muted" }, countdown(account.cooldown_until)) : null),
        h("td", {}, quotaCell(account.quota),
          h("div", { class: "muted" }, t("accounts.checked"), " ", fmtTime(account.quota_updated_at))),
        h("td", {}, fmtTime(account.usage?.last_used_at)),
        h("td", {}, fmtNumber(account.in_flight)),
        h("td", {}, account.proxy || "–"),
        h("td", {}, h("div", { class: "row" },
          h("button", { type: "button", onclick: () => toggle(account) },
            account.enabled ? t("accounts.disable") : t("accounts.enable")),
          h("button", { type: "button", onclick: () => relabel(account) }, t("accounts.relabel")),
          h("button", { type: "button", class: "check-quota", onclick: () => checkQuota(account) }, t("accounts.check_quota")),
          h("button", { type: "button", onclick: () => refresh(account) }, t("accounts.refresh")),
          h("button", { type: "button", class: "danger", onclick: () => remove(account) }, t("accounts.delete")))));
    });
    pager.replaceChildren(h("span", { class: "muted", id: "acc-range" },
      t("accounts.range", { from: total ? offset + 1 : 0, to: offset + rows.length, total })),
      h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); reload(); } }, "‹"),
      h("button", { type: "button", disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; reload(); } }, "›"));
    list.replaceChildren(rows.length ? table(["", t("accounts.account"), t("accounts.plan"), t("accounts.state"),
      t("accounts.quota"), t("accounts.last_used"), t("accounts.in_flight"), t("accounts.proxy"), ""], rows)
      : h("p", { class: "muted", id: "acc-empty" }, t("accounts.empty")));
  }

  async function act(work, done, clear = false) {
    try {
      await work();
      status.textContent = done;
      if (clear) selected.clear();
    } catch (error) {
      status.textContent = error.message;
    }
    await reload();
  }
  const toggle = (a) => act(() => api(`/auth/accounts/${a.id}`, { method: "PATCH", body: { enabled: !a.enabled } }),
    t("common.saved"));
  const checkQuota = (a) => act(async () => {
    const { results } = await api("/auth/accounts/health-check", { method: "POST", body: { ids: [a.id] } });
    if (!results[0]?.ok) throw new Error(results[0]?.error || t("accounts.check_failed"));
  }, t("accounts.checked_now"));
  const refresh = (a) => act(() => api(`/auth/accounts/${a.id}/refresh`, { method: "POST" }), t("common.saved"));
  async function relabel(account) {
    const label = prompt(t("accounts.relabel"), account.label || "");
    if (label !== null) await act(() => api(`/auth/accounts/${account.id}`, { method: "PATCH", body: { label } }), t("common.saved"));
  }
  async function remove(account) {
    if (confirm(t("accounts.confirm_delete", { count: 1 }))) {
      await act(() => api(`/auth/accounts/${account.id}`, { method: "DELETE" }), t("common.deleted"));
    }
  }
  async function bulkStatus(value) {
    if (!selected.size) { status.textContent = t("accounts.select_some"); return; }
    await act(() => api("/auth/accounts/batch-status", { method: "POST", body: { ids: [...selected], status: value } }),
      t("common.saved"));
  }
  async function bulkDelete() {
    if (!selected.size) { status.textContent = t("accounts.select_some"); return; }
    if (confirm(t("accounts.confirm_delete", { count: selected.size }))) {
      await act(() => api("/auth/accounts/batch-delete", { method: "POST", body: { ids: [...selected] } }),
        t("common.deleted"), true);
    }
  }
  async function healthCheck() {
    const ids = selected.size ? [...selected] : (await api(`/admin/accounts-page?${query(0, 1)}&ids=1`)).ids;
    progress.hidden = false;
    progress.max = ids.length || 1;
    progress.value = 0;
    let ok = 0;
    for (let i = 0; i < ids.length; i += HEALTH_BATCH) {
      const { results } = await api("/auth/accounts/health-check", { method: "POST", body: { ids: ids.slice(i, i + HEALTH_BATCH) } });
      ok += results.filter((r) => r.ok).length;
      progress.value = Math.min(ids.length, i + HEALTH_BATCH);
      status.textContent = t("accounts.health_progress", { done: progress.value, total: ids.length, ok });
    }
    await reload();
    status.textContent = t("accounts.health_done", { total: ids.length, ok });
  }

  await reload();
}

function addPanel(reload, status) {
  const output = h("div", { id: "add-output", "aria-live": "polite" });
  const label = h("input", { id: "add-label", placeholder: t("accounts.label") });
  let polling = null;

  async function waitFor(loginId) {
    clearInterval(polling);
    polling = setInterval(async () => {
      const login = await api(`/auth/login/${loginId}`);
      if (login.status === "pending") return;
      clearInterval(polling);
      output.replaceChildren(h("p", { id: "add-result", class: login.status === "succeeded" ? "ok" : "error" },
        t(`login.${login.status}`), login.error ? ` — ${login.error}` : ""));
      await reload();
    }, 1000);
  }
  async function device() {
    const login = await api("/auth/login", { method: "POST", body: { mode: "device", label: label.value || undefined } });
    output.replaceChildren(h("p", {}, t("accounts.device_hint")),
      h("p", {}, h("a", { href: login.verification_url, target: "_blank", rel: "noopener" }, login.verification_url)),
      h("p", {}, t("accounts.code"), " ", h("strong", { id: "device-code", class: "secret" }, login.user_code)));
    waitFor(login.login_id);
  }
  async function paste() {
    const login = await api("/auth/login", { method: "POST", body: { mode: "paste", label: label.value || undefined } });
    const input = h("input", { id: "paste-url", placeholder: "http://127.0.0.1:1455/auth/callback?code=…", size: 40 });
    const error = h("p", { class: "error", id: "paste-error", role: "alert" });
    output.replaceChildren(h("p", {}, t("accounts.paste_hint")),
      h("p", {}, h("a", { id: "authorize-url", href: login.url, target: "_blank", rel: "noopener" }, t("accounts.open_login"))),
      h("div", { class: "row" }, input, h("button", { type: "button", id: "paste-submit", class: "primary", onclick: async () => {
        try {
          await api(`/auth/login/${login.login_id}/callback`, { method: "POST", body: { url: input.value.trim() } });
          waitFor(login.login_id);
        } catch (e) { error.textContent = e.message; }
      } }, t("accounts.finish"))), error);
    waitFor(login.login_id); // the callback server on this machine may receive the redirect first
  }
  async function tokens() {
    const area = h("textarea", { id: "token-text", rows: 4, cols: 50, placeholder: t("accounts.token_hint") });
    output.replaceChildren(area, h("div", {}, h("button", { type: "button", class: "primary", onclick: async () => {
      const text = area.value.trim();
      try {
        const body = text.startsWith("{") ? JSON.parse(text) : { refresh_token: text };
        await api("/auth/accounts", { method: "POST", body: { ...body, label: label.value || undefined } });
        status.textContent = t("common.saved");
        await reload();
      } catch (e) { output.append(h("p", { class: "error" }, e.message)); }
    } }, t("accounts.add"))));
  }
  async function upload(event) {
    const file = event.target.files[0];
    if (!file) return;
    const result = await api("/auth/accounts/import", { method: "POST", text: await file.text() });
    event.target.value = "";
    output.replaceChildren(h("p", { id: "import-result", class: "ok" },
      t("accounts.imported", { added: result.added, updated: result.updated })),
      ...(result.errors || []).map((e) => h("p", { class: "error" }, String(e))));
    await reload();
  }
  const run = (fn) => async () => { try { await fn(); } catch (e) { output.replaceChildren(h("p", { class: "error" }, e.message)); } };
  return h("section", { class: "panel" }, h("h2", {}, t("accounts.add")),
    h("div", { class: "row" }, label,
      h("button", { type: "button", id: "add-device", onclick: run(device) }, t("accounts.device")),
      h("button", { type: "button", id: "add-paste", onclick: run(paste) }, t("accounts.paste")),
      h("button", { type: "button", id: "add-tokens", onclick: run(tokens) }, t("accounts.tokens")),
      h("label", { class: "button-like" }, t("accounts.import_file"), " ",
        h("input", { type: "file", id: "import-file", accept: ".json,.txt,application/json,text/plain", onchange: (event) => run(() => upload(event))() }))),
    output);
}
