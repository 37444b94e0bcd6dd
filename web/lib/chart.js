// A hand-written SVG line chart: one series per group, time on x. Small on purpose (no vendored library).
import { h } from "./dom.js";

const COLORS = ["#1f6feb", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

export function lineChart(series, { label }) {
  // series: [{name, points: [[x, y], ...]}]
  const width = 600, height = 180, pad = 28;
  const all = series.flatMap((s) => s.points);
  const figure = h("figure", { class: "chart-figure" });
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  if (!all.length) {
    figure.append(chart);
    return figure;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys, 1);
  const x = (v) => pad + ((v - x0) / (x1 - x0)) * (width - 2 * pad);
  const y = (v) => height - pad - (v / y1) * (height - 2 * pad);
  chart.append(svg("line", { class: "axis", x1: pad, y1: height - pad, x2: width - pad, y2: height - pad }));
  chart.append(svg("line", { class: "axis", x1: pad, y1: pad, x2: pad, y2: height - pad }));
  const top = svg("text", { x: 2, y: pad });
  top.textContent = String(y1);
  chart.append(top);
  series.forEach((s, i) => {
    const path = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d: path, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2 }));
    for (const p of s.points) chart.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: COLORS[i % COLORS.length] }));
  });
  const legend = h("figcaption", { class: "legend" }, series.map((s, i) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = COLORS[i % COLORS.length];
    return h("span", {}, swatch, s.name || "–");
  }));
  figure.append(chart, legend);
  return figure;
}
