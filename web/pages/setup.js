// Set-up: copy-paste snippets for each client, filled with this gateway's address and a key; a test button
// that sends one real request through the gateway and shows the answer.
import { api } from "../lib/api.js";
import { copyText, h } from "../lib/dom.js";
import { t } from "../public/i18n.js";

function snippets(base, key, model) {
  const host = new URL(base);
  return {
    "OpenAI SDK (Python)": `from openai import OpenAI\nclient = OpenAI(base_url="${base}/v1", api_key="${key}")\nprint(client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)`,
    "Anthropic SDK (Python)": `import anthropic\nclient = anthropic.Anthropic(base_url="${base}", api_key="${key}")\nprint(client.messages.create(model="sonnet", max_tokens=512, messages=[{"role": "user", "content": "hi"}]).content[0].text)`,
    "Gemini SDK (google-genai)": `from google import genai\nclient = genai.Client(api_key="${key}", http_options={"base_url": "${base}", "api_version": "v1beta"})\nprint(client.models.generate_content(model="${model}", contents="hi").text)`,
    "Codex CLI (~/.codex/config.toml)": `model = "${model}"\nmodel_provider = "codex-trio"\n\n[model_providers.codex-trio]\nname = "codex-trio"\nbase_url = "${base}/v1"\nenv_key = "CODEX_TRIO_API_KEY"\nwire_api = "responses"\n\n# export CODEX_TRIO_API_KEY=${key}`,
    "Claude Code": `export ANTHROPIC_BASE_URL=${base}\nexport ANTHROPIC_API_KEY=${key}\nclaude`,
    "Gemini CLI": `export GOOGLE_GEMINI_BASE_URL=${base}\nexport GEMINI_API_KEY=${key}\ngemini`,
    "aider": `export OPENAI_API_BASE=${base}/v1\nexport OPENAI_API_KEY=${key}\naider --model openai/${model}`,
    "Continue (config.yaml)": `models:\n  - name: codex-trio\n    provider: openai\n    model: ${model}\n    apiBase: ${base}/v1\n    apiKey: ${key}`,
    "Cline": `API Provider: OpenAI Compatible\nBase URL: ${base}/v1\nAPI Key: ${key}\nModel ID: ${model}`,
    "codex --oss (Ollama listener)": `codex --oss -m ${model}\n# needs ollama.enabled: true; the listener answers on ${host.hostname}:11434 by default`,
    "curl": `curl ${base}/v1/chat/completions \\\n  -H 'Authorization: Bearer ${key}' -H 'content-type: application/json' \\\n  -d '{"model": "${model}", "messages": [{"role": "user", "content": "hi"}]}'`,
  };
}

export async function render(main) {
  const settings = await api("/admin/settings");
  const base = location.origin;
  const model = settings.model.default;
  const key = h("input", { id: "setup-key", size: 40, placeholder: t("setup.key_hint"), "aria-label": t("setup.key") });
  const cards = h("div", { class: "grid2", id: "setup-cards" });
  const answer = h("pre", { id: "test-answer", hidden: true });
  const problem = h("p", { class: "error", id: "test-error", role: "alert" });
  function draw() {
    const shownKey = key.value.trim() || "<your-key>";
    cards.replaceChildren(...Object.entries(snippets(base, shownKey, model)).map(([name, text]) => {
      const copy = h("button", { type: "button", onclick: () => copyText(text, copy) }, t("common.copy"));
      return h("section", { class: "panel" }, h("h2", {}, name), h("pre", {}, text), copy);
    }));
  }
  async function test() {
    problem.textContent = "";
    answer.hidden = true;
    const headers = { "content-type": "application/json" };
    if (key.value.trim()) headers.authorization = `Bearer ${key.value.trim()}`;
    const response = await fetch("/v1/chat/completions", { method: "POST", headers, credentials: "same-origin",
      body: JSON.stringify({ model, messages: [{ role: "user", content: "Say hello from the dashboard." }] }) });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) { problem.textContent = body.error?.message || response.statusText; return; }
    answer.textContent = `${body.model}: ${body.choices?.[0]?.message?.content ?? ""}`;
    answer.hidden = false;
  }
  key.addEventListener("input", draw);
  main.append(h("h1", {}, t("nav.setup")), h("section", { class: "panel" },
    h("p", {}, t("setup.address"), " ", h("strong", {}, base)),
    h("div", { class: "row" }, key, h("button", { type: "button", class: "primary", id: "test-connection", onclick: test },
      t("setup.test"))), problem, answer), cards);
  draw();
}
