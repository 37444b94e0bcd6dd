// Logs: the request log with filters and a detail view, live tail from the dashboard's event stream, errors.
import { onLive } from "../app.js";
import { api } from "../lib/api.js";
import { fmtNumber, fmtTime, h, table } from "../lib/dom.js";
import { t } from "../public/i18n.js";

const FILTERS = ["status", "model", "account", "key", "protocol", "text"];

export async function render(main) {
  const inputs = Object.fromEntries(FILTERS.map((name) =>
    [name, h("input", { id: `log-${name}`, placeholder: t(`logs.${name}`), "aria-label": t(`logs.${name}`), size: 10 })]));
  const source = h("select", { id: "log-source", "aria-label": t("logs.source") },
    h("option", { value: "memory" }, t("logs.recent")), h("option", { value: "errors" }, t("logs.errors")));
  const live = h("input", { type: "checkbox", id: "log-live", checked: true });
  const list = h("div", { id: "log-list" });
  const detail = h("dialog", { id: "log-detail" });
  let records = [];
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); load(); } },
    source, Object.values(inputs), h("button", { type: "submit", class: "primary" }, t("logs.filter")),
    h("label", {}, live, " ", t("logs.live")));
  main.append(h("h1", {}, t("nav.logs")), h("section", { class: "panel" }, form, h("p", { class: "muted", id: "log-total" }), list),
    detail);

  function show(record) {
    detail.replaceChildren(h("h2", {}, `${record.method} ${record.path}`),
      h("pre", {}, JSON.stringify(record, null, 2)),
      h("form", { method: "dialog" }, h("button", { type: "submit" }, t("common.close"))));
    detail.showModal();
  }
  function draw() {
    const rows = records.map((r) => h("tr", { class: r.outcome === "error" ? "error" : "" },
      h("td", {}, fmtTime(r.started_at)), h("td", {}, r.status), h("td", {}, r.protocol),
      h("td", {}, r.model || r.requested_model || "–"), h("td", {}, r.key_name || "–"),
      h("td", {}, fmtNumber(r.total_tokens ?? (r.input_tokens || 0) + (r.output_tokens || 0))),
      h("td", {}, `${Math.round(r.duration_ms || 0)} ms`), h("td", {}, r.error_text || ""),
      h("td", {}, h("button", { type: "button", onclick: () => show(r) }, t("logs.detail")))));
    list.replaceChildren(table([t("logs.time"), t("logs.status"), t("logs.protocol"), t("logs.model"), t("logs.key"),
      t("usage.tokens"), t("logs.duration"), t("logs.error"), ""], rows));
  }
  function matches(record) {
    if (source.value !== "memory") return false;
    return FILTERS.every((name) => {
      const wanted = inputs[name].value.trim().toLowerCase();
      if (!wanted) return true;
      if (name === "status") return String(record.status).startsWith(wanted.replace(/x+$/, ""));
      if (name === "text") return JSON.stringify(record).toLowerCase().includes(wanted);
      const field = { key: record.key_name + " " + record.key_id, model: record.model + " " + record.requested_model }[name]
        ?? String(record[name] ?? "");
      return field.toLowerCase().includes(wanted);
    });
  }
  async function load() {
    const query = new URLSearchParams({ limit: "100" });
    if (source.value === "errors") query.set("source", "errors");
    else for (const name of FILTERS) if (inputs[name].value.trim()) query.set(name === "key" ? "client_key" : name, inputs[name].value.trim());
    const page = await api(`/admin/logs?${query}`);
    records = page.records;
    document.getElementById("log-total").textContent = t("logs.total", { total: page.total ?? records.length });
    draw();
  }
  onLive("request", (record) => {
    if (!live.checked || !matches(record) || records.some((r) => r.id === record.id)) return;
    records = [record, ...records].slice(0, 100);
    draw();
  });
  await load();
}
