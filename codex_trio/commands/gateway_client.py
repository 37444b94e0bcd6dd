"""What the commands that call a running gateway share (`codex-trio image`, `codex-trio transcribe`): where the
gateway is and its key, and the message of an error answer.

Credentials, first match wins: `--base-url` / `--token`, then `CODEX_API_BASE_URL` / `CODEX_API_TOKEN`, then
`~/.config/codex-api/base_url` and `~/.config/codex-api/token` (one line each). Prefer the file or the environment:
a token typed on a command line ends up in shell history and agent transcripts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
CONFIG_DIR = Path("~/.config/codex-api")


def _read_line(path: Path) -> str | None:
    try:
        value = path.expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value or None


def resolve_credentials(base_url: str | None, token: str | None, env: dict[str, str] | None = None,
                        config_dir: Path = CONFIG_DIR) -> tuple[str, str | None]:
    env = os.environ if env is None else env
    base = (base_url or env.get("CODEX_API_BASE_URL") or _read_line(config_dir / "base_url") or DEFAULT_BASE_URL)
    key = token or env.get("CODEX_API_TOKEN") or _read_line(config_dir / "token")
    return base.rstrip("/"), key


def error_message(response: "httpx.Response") -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error or response.text[:300])
