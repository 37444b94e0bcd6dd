// The strings of both languages live in i18n/en.js and i18n/zh.js; this picks one and fills the page.
import en from "./i18n/en.js";
import zh from "./i18n/zh.js";

const LANGUAGES = { en, zh };

export function language() {
  const chosen = localStorage.getItem("lang");
  if (chosen && LANGUAGES[chosen]) return chosen;
  return navigator.language && navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function setLanguage(lang) {
  localStorage.setItem("lang", lang);
}

export function t(key, values = {}) {
  const text = LANGUAGES[language()][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

export function translate(root = document) {
  document.documentElement.lang = language() === "zh" ? "zh-CN" : "en";
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
}

export function applyTheme() {
  const chosen = localStorage.getItem("theme");
  const dark = chosen ? chosen === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}
