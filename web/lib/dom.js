// Small helpers to build DOM nodes without innerHTML (nothing from the API is ever parsed as markup).
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function table(headers, rows) {
  return h("div", { class: "table-wrap" },
    h("table", {}, h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows)));
}

export function fmtNumber(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString();
}

export function fmtTime(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

export function countdown(seconds) {
  if (!seconds) return "–";
  let left = Math.max(0, Math.round(seconds - Date.now() / 1000));
  const d = Math.floor(left / 86400); left %= 86400;
  const hh = Math.floor(left / 3600); left %= 3600;
  const mm = Math.floor(left / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${mm}m` : `${mm}m`;
}

export function quotaBar(percent) {
  const used = Math.max(0, Math.min(100, Number(percent) || 0));
  const bar = h("span", { class: `bar${used >= 100 ? " full" : used >= 80 ? " high" : ""}`, role: "img",
    "aria-label": `${used}%` }, h("span", {}));
  bar.firstChild.style.width = `${used}%`;
  return bar;
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", {}, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const before = button.textContent;
    button.textContent = "✓";
    setTimeout(() => { button.textContent = before; }, 1200);
  }
}
