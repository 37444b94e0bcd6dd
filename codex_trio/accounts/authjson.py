"""The Codex CLI's login file, `$CODEX_HOME/auth.json` (spec/upstream.md §2.6): reading it for import, and
writing refreshed tokens back so the CLI on the same machine keeps working (the refresh token is single-use,
so once we rotate it the CLI's copy is dead unless we hand it the new one)."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..files import write_private_atomic


class AuthJsonError(Exception):
    """The file cannot be imported; the message says what to do."""


@dataclass(frozen=True, slots=True)
class AuthJsonLogin:
    path: Path
    access_token: str
    refresh_token: str | None
    id_token: str | None
    account_id: str | None
    last_refresh: float | None


def codex_home(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("CODEX_HOME"):
        return Path(env["CODEX_HOME"]).expanduser()
    return Path.home() / ".codex"


def _credentials_store(home: Path) -> str | None:
    try:
        config = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = config.get("cli_auth_credentials_store")
    return value if isinstance(value, str) else None


def _keyring_help(home: Path, mode: str | None) -> str:
    why = (f"config.toml sets cli_auth_credentials_store = \"{mode}\", so the Codex CLI keeps its login in the "
           "OS keyring (service \"Codex Auth\") and deletes auth.json" if mode in ("keyring", "auto")
           else f"there is no {home / 'auth.json'}")
    return (f"{why}. To import it: set cli_auth_credentials_store = \"file\" in {home / 'config.toml'}, run "
            "`codex login` again and re-run the import; or add the account here with a browser/device login, "
            "or paste a refresh token.")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_auth_json(path: Path | None = None, *, env: dict[str, str] | None = None) -> AuthJsonLogin:
    home = codex_home(env) if path is None else path.parent
    path = path or home / "auth.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AuthJsonError(_keyring_help(home, _credentials_store(home))) from None
    except OSError as exc:
        raise AuthJsonError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AuthJsonError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AuthJsonError(f"{path} is not a JSON object")
    tokens = data.get("tokens") if isinstance(data.get("tokens"), dict) else None
    if tokens is None and isinstance(data.get("access_token"), str):
        tokens = data  # the flat shape some tools write
    if tokens is None or not isinstance(tokens.get("access_token"), str):
        if data.get("OPENAI_API_KEY"):
            raise AuthJsonError(f"{path} holds an API-key login, not a ChatGPT login; run `codex login` with "
                                "your ChatGPT account first")
        raise AuthJsonError(f"{path} has no ChatGPT tokens; run `codex login` first")

    def opt(key: str) -> str | None:
        value = tokens.get(key)
        return value if isinstance(value, str) and value else None

    return AuthJsonLogin(path, tokens["access_token"], opt("refresh_token"), opt("id_token"), opt("account_id"),
                         _parse_time(data.get("last_refresh")))


def is_auth_json(payload: Any) -> bool:
    """Whether an import payload (bytes, text or parsed JSON) is a Codex CLI auth.json: one login under
    `tokens`, not a list of accounts."""
    data = payload
    if isinstance(payload, (bytes, str)):
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
    return isinstance(data, dict) and isinstance(data.get("tokens"), dict) and "accounts" not in data


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_back(path: Path, *, previous_refresh_token: str | None, access_token: str, refresh_token: str | None,
               id_token: str | None, account_id: str | None, refreshed_at: float) -> bool:
    """Replace the tokens in a linked auth.json atomically (temp file 0600 + fsync + rename).

    Only when the file still holds the refresh token we rotated: if it holds another one, the CLI has logged
    in again (or refreshed itself) and its login must not be overwritten. Returns whether it wrote. A file
    that cannot be read is never written.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), dict):
        return False
    tokens = data["tokens"]
    if tokens.get("refresh_token") != previous_refresh_token:
        return False
    tokens["access_token"] = access_token
    if refresh_token:
        tokens["refresh_token"] = refresh_token
    if id_token:
        tokens["id_token"] = id_token
    if account_id:
        tokens["account_id"] = account_id
    data["last_refresh"] = _iso(refreshed_at)
    write_private_atomic(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return True
