// Usage: time series (requests, tokens by kind, cost) grouped by model, account or key, with a table under each.
import { api } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { fmtNumber, h, table } from "../lib/dom.js";
import { t } from "../public/i18n.js";

const RANGES = { "1h": ["minute", 3600], "24h": ["hour", 86400], "7d": ["hour", 7 * 86400], "30d": ["day", 30 * 86400] };
const STEP = { minute: 60, hour: 3600, day: 86400 };
const METRICS = ["requests", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost_usd"];

export async function render(main) {
  const range = h("select", { id: "usage-range", "aria-label": t("usage.range") },
    Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === "24h" }, r)));
  const group = h("select", { id: "usage-group", "aria-label": t("usage.group") },
    ["model", "account", "key"].map((g) => h("option", { value: g }, t(`usage.by_${g}`))));
  const charts = h("div", { id: "usage-charts" });
  range.addEventListener("change", draw);
  group.addEventListener("change", draw);
  main.append(h("h1", {}, t("nav.usage")), h("div", { class: "row" }, range, group), charts);

  async function draw() {
    const [granularity, span] = RANGES[range.value];
    const now = Math.floor(Date.now() / 1000);
    const from = now - span;
    const data = await api(`/admin/usage-stats/history?granularity=${granularity}&group_by=${group.value}&from=${from}`);
    // client keys are stored by id; show their names
    const names = group.value === "key"
      ? Object.fromEntries((await api("/admin/client-keys")).keys.map((k) => [k.id, k.name])) : {};
    const groups = {};
    for (const point of data.points) {
      const value = point[group.value] ?? "";
      const name = names[value] ?? value;
      (groups[name] ||= []).push(point);
    }
    charts.replaceChildren(...METRICS.map((metric) => {
      const series = Object.entries(groups).map(([name, points]) =>
        ({ name, points: points.map((p) => [p.bucket, Number(p[metric] || 0)]) }));
      const totals = Object.entries(groups).map(([name, points]) =>
        h("tr", {}, h("td", {}, name || "–"), h("td", { class: `total-${metric}` },
          fmtNumber(points.reduce((sum, p) => sum + Number(p[metric] || 0), 0)))));
      return h("section", { class: "panel", dataset: { metric } }, h("h2", {}, t(`usage.${metric}`)),
        lineChart(series, { label: t(`usage.${metric}`), start: from, end: now + 1, step: STEP[granularity] }),
        table([t(`usage.by_${group.value}`), t("usage.total")], totals));
    }));
  }
  await draw();
}
