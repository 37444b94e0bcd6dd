// A hand-written SVG line chart: one series per group, time on x. Small on purpose (no vendored library).
import { h } from "./dom.js";

const COLORS = ["#1f6feb", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function short(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value * 1000) / 1000);
}

// series: [{name, points: [[bucket, value], ...]}]; the x axis is the whole range [start, end) in steps, so a
// bucket without requests is drawn as zero rather than skipped.
export function lineChart(series, { label, start, end, step }) {
  const width = 1000, height = 180, pad = 34;
  const figure = h("figure", { class: "chart-figure" });
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  figure.append(chart);
  const first = Math.floor(start / step) * step;
  const buckets = [];
  for (let b = first; b < end; b += step) buckets.push(b);
  const filled = series.map((s) => {
    const byBucket = new Map(s.points);
    return { name: s.name, values: buckets.map((b) => byBucket.get(b) || 0) };
  });
  const top = Math.max(0, ...filled.flatMap((s) => s.values)) || 1;
  const x = (i) => pad + (buckets.length > 1 ? (i / (buckets.length - 1)) * (width - 2 * pad) : 0);
  const y = (v) => height - pad / 2 - (v / top) * (height - pad);
  chart.append(svg("line", { class: "axis", x1: pad, y1: y(0), x2: width - pad, y2: y(0) }));
  chart.append(svg("line", { class: "axis", x1: pad, y1: y(top), x2: pad, y2: y(0) }));
  const topLabel = svg("text", { x: 2, y: y(top) + 4 });
  topLabel.textContent = short(top);
  chart.append(topLabel);
  filled.forEach((s, i) => {
    const path = s.values.map((v, j) => `${j ? "L" : "M"}${x(j).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const line = svg("path", { d: path, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2 });
    const title = svg("title"); // the series' total, for a pointer hovering it and for screen readers
    title.textContent = `${s.name || "–"}: ${short(s.values.reduce((sum, v) => sum + v, 0))}`;
    line.append(title);
    chart.append(line);
  });
  figure.append(h("figcaption", { class: "legend" }, filled.map((s, i) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = COLORS[i % COLORS.length];
    return h("span", {}, swatch, s.name || "–");
  })));
  return figure;
}
