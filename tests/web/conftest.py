"""A real `codex-trio demo` subprocess and a real Chromium (Debian's /usr/bin/chromium) driven by Playwright.

The tests fail, never skip, when Chromium or Playwright is missing: CI installs both (.ci/run, the test extras).
Screenshots go to tests/web/screenshots/ (gitignored), or to $CODEX_TRIO_SCREENSHOTS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from ruamel.yaml import YAML

from tests.foundation.test_serving import _free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(os.environ.get("CODEX_TRIO_SCREENSHOTS", Path(__file__).parent / "screenshots"))
PAGES = ("overview", "accounts", "keys", "usage", "logs", "settings", "setup")


@dataclass
class Demo:
    url: str
    key: str
    link: str  # the one-time log-in link the demo printed
    data_dir: Path
    process: subprocess.Popen

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.key}"}, timeout=30)

    def sim_base(self) -> str:
        """The simulator's own address (the demo pins the real host names to it in local.yaml)."""
        local = YAML(typ="safe").load((self.data_dir / "local.yaml").read_text())
        return "https://" + local["tls"]["resolve"]["auth.openai.com"]

    def sim_ca(self) -> str:
        return YAML(typ="safe").load((self.data_dir / "local.yaml").read_text())["tls"]["ca_file"]


def start_demo(data_dir: Path) -> Demo:
    port = _free_port()
    log = data_dir.parent / "demo.log"
    process = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "demo", "--port", str(port), "--no-ollama",
                                "--data-dir", str(data_dir)], stderr=log.open("wb"), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text()
        if "Ctrl-C stops it." in text:
            break
        assert process.poll() is None and time.monotonic() < deadline, f"demo did not start:\n{text}"
        time.sleep(0.1)
    key = re.search(r"API key:\s+(\S+)", text).group(1)
    link = re.search(r"dashboard:\s+(\S+)", text).group(1)
    return Demo(f"http://127.0.0.1:{port}", key, link, data_dir, process)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("web") / "data"
    data_dir.mkdir(mode=0o700)
    running = start_demo(data_dir)
    try:
        yield running
    finally:
        running.process.terminate()
        try:
            running.process.wait(timeout=20)
        finally:
            running.process.kill()


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageProblems:
    """Console errors, uncaught exceptions and failed requests seen by a page."""

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.messages.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.messages.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.messages.append(f"failed: {r.url} {r.failure}")
                if "/admin/events" not in r.url else None)  # the live stream is cut when the page goes away
        page.on("response", lambda r: r.status >= 400 and self.messages.append(f"HTTP {r.status}: {r.url}"))


@pytest.fixture
def context(chromium, demo):
    context = chromium.new_context(base_url=demo.url, viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        context.close()


def log_in(page, demo: Demo) -> None:
    page.goto("/", wait_until="domcontentloaded")
    page.fill("#admin-key", demo.key)
    page.click("button[type=submit]")
    page.wait_for_selector("main[data-ready]")


def open_page(page, name: str) -> None:
    """Show a dashboard page with fresh data (reloaded when it is already the one shown)."""
    if page.url.endswith(f"#/{name}"):
        page.reload()
    else:
        page.goto(f"/#/{name}")
    page.wait_for_selector(f"main[data-ready='{name}']")


def sim_control(demo: Demo, method: str, path: str, body=None) -> httpx.Response:
    """The demo simulator's control API (/_sim/...), reached by its address with the real host name's SNI."""
    import ssl

    context = ssl.create_default_context(cafile=demo.sim_ca())
    with httpx.Client(verify=context, timeout=30) as client:
        return client.request(method, demo.sim_base() + path, json=body,
                              headers={"host": "auth.openai.com"}, extensions={"sni_hostname": "auth.openai.com"})
