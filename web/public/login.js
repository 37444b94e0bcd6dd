import { applyTheme, t, translate } from "./i18n.js";

applyTheme();
translate();
const form = document.getElementById("login-form");
const problem = document.getElementById("login-error");
if (new URLSearchParams(location.search).get("link") === "used") problem.textContent = t("login.link_used");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.textContent = "";
  const key = form.elements.key.value.trim();
  const response = await fetch("/ui/session", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    location.replace("/");
    return;
  }
  problem.textContent = response.status === 401 ? t("login.wrong_key") : (body.error?.message || response.statusText);
});
