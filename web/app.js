// The dashboard shell: hash routes to pages, the one live event stream, theme, language and log-out.
import { api } from "./lib/api.js";
import { applyTheme, language, setLanguage, t, translate } from "./public/i18n.js";

const PAGES = {
  overview: () => import("./pages/overview.js"),
  accounts: () => import("./pages/accounts.js"),
  keys: () => import("./pages/keys.js"),
  usage: () => import("./pages/usage.js"),
  logs: () => import("./pages/logs.js"),
  settings: () => import("./pages/settings.js"),
  setup: () => import("./pages/setup.js"),
};

// One EventSource per open dashboard; pages subscribe to its events instead of polling.
const listeners = { counters: new Set(), request: new Set() };
let lastCounters = null; // a page that opens between two counter events starts from the last one
export function onLive(kind, callback) {
  listeners[kind].add(callback);
  if (kind === "counters" && lastCounters) callback(lastCounters);
  return () => listeners[kind].delete(callback);
}

function connectLive() {
  const source = new EventSource("/admin/events");
  const status = document.getElementById("live");
  source.addEventListener("open", () => { status.textContent = t("live.on"); });
  source.addEventListener("error", () => { status.textContent = t("live.off"); });
  for (const kind of Object.keys(listeners)) {
    source.addEventListener(kind, (event) => {
      const data = JSON.parse(event.data);
      if (kind === "counters") lastCounters = data;
      for (const callback of listeners[kind]) callback(data);
    });
  }
}

let leave = null;
async function route() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0] || "overview";
  const load = PAGES[name] || PAGES.overview;
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${name}`);
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  if (leave) leave();
  leave = null;
  listeners.counters.clear();
  listeners.request.clear();
  const main = document.getElementById("main");
  main.replaceChildren();
  delete main.dataset.ready;
  main.dataset.page = name;
  const page = await load();
  leave = (await page.render(main)) || null;
  main.dataset.ready = name;
}

applyTheme();
translate();
document.getElementById("theme").addEventListener("click", () => {
  localStorage.setItem("theme", document.documentElement.dataset.theme === "dark" ? "light" : "dark");
  applyTheme();
});
document.getElementById("lang").addEventListener("click", () => {
  setLanguage(language() === "zh" ? "en" : "zh");
  translate();
  route();
});
document.getElementById("logout").addEventListener("click", async () => {
  await api("/ui/session", { method: "DELETE" });
  location.replace("/");
});
window.addEventListener("hashchange", route);
connectLive();
route();
