// Overview: the pool at a glance, the last hour, quota headroom with reset countdowns, Ollama and the client.
import { onLive } from "../app.js";
import { api } from "../lib/api.js";
import { countdown, fmtNumber, fmtTime, h, table } from "../lib/dom.js";
import { t } from "../public/i18n.js";

function card(label, value, id) {
  return h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "value", id }, value));
}

// The store this instance keeps its data in (docs/scale-out.md): engine, reachable or not, writes waiting for it.
function storeLine(store) {
  if (!store) return null;
  const engine = store.engine === "postgresql" ? "PostgreSQL" : "SQLite";
  const waiting = (store.deferred_writes ?? 0) + (store.usage_records_pending ?? 0);
  return h("p", {}, t("overview.store"), ": ", h("strong", { id: "ov-store-engine" }, engine), " ",
    h("span", { id: "ov-store-state", class: `badge ${store.available ? "active" : "disabled"}` },
      t(store.available ? "overview.store_available" : "overview.store_away", { since: fmtTime(store.since) })),
    waiting ? h("span", { class: "muted" }, " ", t("overview.store_deferred", { count: fmtNumber(waiting) })) : null);
}

export async function render(main) {
  main.append(h("h1", {}, t("nav.overview")));
  const data = await api("/admin/overview");
  const hour = data.last_hour || {};
  const errors = hour.errors ?? 0;
  const rate = hour.requests ? ((errors / hour.requests) * 100).toFixed(1) + "%" : "–";
  main.append(h("div", { class: "cards" },
    card(t("overview.accounts"), fmtNumber(data.accounts.total), "ov-accounts"),
    card(t("overview.requests_hour"), fmtNumber(hour.requests ?? 0), "ov-requests"),
    card(t("overview.tokens_hour"), fmtNumber((hour.input_tokens ?? 0) + (hour.output_tokens ?? 0)), "ov-tokens"),
    card(t("overview.error_rate"), rate, "ov-errors"),
    card(t("overview.in_flight"), fmtNumber(data.accounts.in_flight), "ov-inflight"),
    card(t("overview.open_streams"), "–", "ov-streams")));

  const states = Object.entries(data.accounts.by_state).map(([state, count]) =>
    h("tr", {}, h("td", {}, h("span", { class: `badge ${state}` }, t(`state.${state}`))), h("td", {}, fmtNumber(count))));
  const plans = Object.entries(data.accounts.by_plan).map(([plan, count]) =>
    h("tr", {}, h("td", {}, plan), h("td", {}, fmtNumber(count))));
  const windows = Object.entries(data.quota_windows).map(([name, w]) =>
    h("tr", {}, h("td", {}, t(`quota.${name}`), " ", h("span", { class: "muted" }, `${w.window_minutes} min`)),
      h("td", {}, `${w.headroom_percent}%`),
      h("td", {}, fmtNumber(w.accounts), w.exhausted ? h("div", { class: "warn" }, t("overview.exhausted", { count: w.exhausted })) : null),
      h("td", {}, countdown(w.next_reset), " ", h("span", { class: "muted" }, fmtTime(w.next_reset))),
      h("td", {}, fmtTime(w.oldest_check))));
  main.append(h("div", { class: "grid2" },
    h("section", { class: "panel" }, h("h2", {}, t("overview.by_state")),
      h("table", {}, h("tbody", {}, states.length ? states : h("tr", {}, h("td", {}, t("common.none")))))),
    h("section", { class: "panel" }, h("h2", {}, t("overview.by_plan")), h("table", {}, h("tbody", {}, plans))),
    h("section", { class: "panel" }, h("h2", {}, t("overview.services")),
      h("p", {}, t("overview.ollama"), ": ", h("strong", { id: "ov-ollama" }, data.ollama.state),
        data.ollama.url ? ` — ${data.ollama.url}` : ""),
      h("p", {}, t("overview.client"), ": ", h("strong", {}, data.client.version || "–"), " ",
        h("span", { class: "muted" }, data.client.profile || "")),
      storeLine(data.store)),
    h("section", { class: "panel wide" }, h("h2", {}, t("overview.headroom")),
      windows.length ? table([t("overview.window"), t("overview.headroom_pct"), t("overview.accounts"),
        t("overview.next_reset"), t("overview.oldest_check")], windows) : h("p", { class: "muted" }, t("overview.no_quota")))));

  onLive("counters", (counters) => {
    document.getElementById("ov-streams").textContent = fmtNumber(counters.open_streams);
  });
  onLive("request", (record) => {
    const requests = document.getElementById("ov-requests");
    requests.textContent = fmtNumber(Number(requests.textContent.replace(/\D/g, "")) + 1);
    const tokens = document.getElementById("ov-tokens");
    tokens.textContent = fmtNumber(Number(tokens.textContent.replace(/\D/g, "")) + (record.total_tokens || 0));
  });
}
