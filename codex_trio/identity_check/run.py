"""`codex-trio identity check`: one turn of the real Codex CLI and the same turn through the gateway, both against
the built-in stand-in (the simulator) on loopback, compared call by call (compare.py).

The real client is pointed at the stand-in through its own settings (`-c chatgpt_base_url=…`); its TLS trust
comes from `SSL_CERT_DIR` only, so it keeps its default TLS stacks, and the stand-in is reached by host name
(`localhost`), so every hello carries SNI as it would for chatgpt.com. The gateway then presents the release
of the given binary with the `codex-exec` profile, and sends the real client's own turn body through its
Responses endpoint. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..config.store import ConfigStore
from ..config.writer import update_local_file
from .compare import Report, calls_of, compare

# Variables that would change the real client's TLS stack or route it elsewhere.
_CLEARED_ENV = ("OPENAI_API_KEY", "SSL_CERT_FILE", "CODEX_CA_CERTIFICATE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                "http_proxy", "ALL_PROXY", "all_proxy", "CODEX_HOME")
TURN_TEXT = "Say hi"


@dataclass
class CheckResult:
    transport: str  # "websocket", or "sse" (the stand-in refuses the upgrade with 426)
    version: str
    codex_exit: int
    codex_calls: int
    gateway_calls: int
    report: Report

    def render(self) -> str:
        return (f"[{self.transport}] Codex CLI {self.version}: exit {self.codex_exit}, {self.codex_calls} calls; "
                f"gateway: {self.gateway_calls} calls\n{self.report.render()}")


def find_binary(path: Path) -> Path:
    """The `codex` executable: the path itself, or inside an npm install (`node_modules/.bin/codex` or the
    package directory)."""
    path = path.expanduser()
    for candidate in (path, path / "node_modules/.bin/codex", path / "bin/codex.js", path / "codex"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"no codex executable at {path} (give the binary, or the directory npm installed "
                            "@openai/codex into)")


def codex_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"(\d+\.\d+\.\d+)", out)
    if not match:
        raise RuntimeError(f"{binary} --version said {out!r}")
    return match.group(1)


def codex_home(directory: Path, account: Any) -> Path:
    """A ChatGPT-login CODEX_HOME for the stand-in's account."""
    directory.mkdir(mode=0o700)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    auth = {"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": now,
            "tokens": {"id_token": account.id_token, "access_token": account.access_token,
                       "refresh_token": account.refresh_token, "account_id": account.account_id}}
    (directory / "auth.json").write_text(json.dumps(auth), encoding="utf-8")
    (directory / "auth.json").chmod(0o600)
    (directory / "config.toml").write_text('cli_auth_credentials_store = "file"\n\n[analytics]\nenabled = false\n\n'
                                           "[features]\nplugins = false\n", encoding="utf-8")
    return directory


def cert_dir(directory: Path, ca_file: str) -> Path:
    """An OpenSSL hashed certificate directory holding only the stand-in's CA (for SSL_CERT_DIR)."""
    directory.mkdir()
    shutil.copy(ca_file, directory / "stand-in-ca.pem")
    subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca_file], capture_output=True,
                                  text=True, check=True).stdout.strip()
    (directory / f"{subject_hash}.0").symlink_to("stand-in-ca.pem")
    return directory


async def run_codex(binary: Path, base: str, scratch: Path, account: Any, ca_file: str, timeout: float) -> int:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    env.update({"CODEX_HOME": str(codex_home(scratch / "home", account)),
                "SSL_CERT_DIR": str(cert_dir(scratch / "certs", ca_file)), "NO_PROXY": "*"})
    work = scratch / "work"
    work.mkdir()
    args = [str(binary), "exec", "--skip-git-repo-check", "--ephemeral", "-c", f'chatgpt_base_url="{base}/backend-api/"',
            "-c", f'openai_base_url="{base}/backend-api/codex"', TURN_TEXT]
    with trio.move_on_after(timeout):
        result = await trio.run_process(args, env=env, cwd=work, stdin=b"", capture_stdout=True, capture_stderr=True,
                                        check=False)
        return result.returncode
    return -1


def replayed_turn(records: list[Any]) -> dict[str, Any] | None:
    """The real client's turn body (the first generating WebSocket frame, else the SSE POST), as a Responses
    request the gateway can take."""
    for record in records:
        frames = [m for m in record.ws_messages or [] if isinstance(m, dict) and m.get("generate") is not False]
        body = frames[0] if frames else (record.body if record.method == "POST" and
                                         record.path.endswith("/codex/responses") else None)
        if isinstance(body, dict):
            return {k: v for k, v in body.items() if k not in ("type", "previous_response_id", "client_metadata",
                                                               "prompt_cache_key")}
    return None


async def run_gateway_turn(sim: Any, data_dir: Path, version: str, request: dict[str, Any]) -> None:
    import httpx  # here: importing httpx (it loads click, pygments, rich) costs `codex-trio run` 10 MiB

    from ..app import Gateway
    from ..routing.catalog import refresh_catalog
    from ..surfaces import install_surfaces

    base = f"https://localhost:{sim.urls.port}"
    update_local_file(data_dir / "local.yaml", {
        "api": {"base_url": f"{base}/backend-api", "auth_base_url": base}, "tls": {"ca_file": sim.ca_file},
        "client": {"identity": "codex-exec", "version": version}})
    store = ConfigStore(data_dir, environ={})
    store.ensure_first_start()
    gateway = Gateway(config=store)
    install_surfaces(gateway)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: gateway.run(port=0, task_status=task_status))
        account = sim.accounts[0]
        await gateway.services.accounts.add_tokens(access_token=account.access_token,
                                                   refresh_token=account.refresh_token, id_token=account.id_token)
        await refresh_catalog(gateway.services, gateway.services.catalog)
        async with httpx.AsyncClient(base_url=url, timeout=120, headers={
                "authorization": f"Bearer {store.settings.server.proxy_api_key}"}) as client:
            answer = await client.post("/v1/responses", json=request)
            if answer.status_code != 200:
                raise RuntimeError(f"the gateway's turn failed: {answer.status_code} {answer.text[:300]}")
        gateway.stop_requested.set()


async def check(codex: Path, *, websocket: bool = True, timeout: float = 180.0) -> CheckResult:
    """Run both turns and compare them. `websocket=False`: the stand-in refuses the WebSocket with 426, so both
    clients fall back to `POST /codex/responses` with SSE."""
    from ..sim import running_sim

    binary = find_binary(codex)
    version = codex_version(binary)
    with tempfile.TemporaryDirectory(prefix="codex-trio-identity-") as scratch_name:
        scratch = Path(scratch_name)
        async with running_sim(accounts=1, websocket=websocket) as sim:
            base = f"https://localhost:{sim.urls.port}"
            exit_code = await run_codex(binary, base, scratch, sim.accounts[0], sim.ca_file, timeout)
            theirs = list(sim.state.requests)
            request = replayed_turn(theirs)
            sim.state.requests.clear()
            if request is not None:
                data_dir = scratch / "gateway"
                data_dir.mkdir(mode=0o700)
                await run_gateway_turn(sim, data_dir, version, request)
            ours = list(sim.state.requests)
    report = compare(calls_of(theirs), calls_of(ours))
    if request is None:
        report.differences.append("the real client made no turn against the stand-in (it did not follow "
                                  "chatgpt_base_url, or failed before its turn): nothing to compare")
    return CheckResult("websocket" if websocket else "sse", version, exit_code, len(theirs), len(ours), report)
