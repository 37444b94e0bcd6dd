"""`codex-trio transcribe FILE`: transcribe an audio file through a running gateway (`/v1/audio/transcriptions`)
and print the transcript.

Where the gateway is and its key: `gateway_client.py` (flags, then environment, then ~/.config/codex-api).
Exit status: 0 printed, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path

from .gateway_client import DEFAULT_BASE_URL, error_message, resolve_credentials

DESCRIPTION = "Transcribe an audio file (wav, mp3, m4a, ogg, webm, flac) through a running gateway."
DEFAULT_MODEL = "gpt-4o-transcribe"
_TIMEOUT_SECONDS, _CONNECT_SECONDS = 300.0, 10.0


class TranscribeCliError(Exception):
    """A failure with a message that says what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("file", help="the audio file")
    parser.add_argument("--language", help="ISO-639-1 code of the spoken language (default: detected)")
    parser.add_argument("--format", default="text", choices=("text", "json", "verbose_json"), dest="response_format",
                        help="what to print (default text)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"transcription model name (default {DEFAULT_MODEL})")
    parser.add_argument("--base-url", help="gateway URL (default: $CODEX_API_BASE_URL, ~/.config/codex-api/base_url, "
                        f"{DEFAULT_BASE_URL})")
    parser.add_argument("--token", help="gateway API key (default: $CODEX_API_TOKEN, ~/.config/codex-api/token)")
    return parser


def request_transcript(base_url: str, token: str | None, path: Path, *, model: str, language: str | None,
                       response_format: str) -> str:
    import httpx  # here, so building the `codex-trio` parser stays quick

    try:
        audio = path.read_bytes()
    except OSError as exc:
        raise TranscribeCliError(f"cannot read {path}: {exc.strerror}") from None
    headers = {"User-Agent": "codex-trio-transcribe/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    fields = {"model": model, "response_format": response_format, **({"language": language} if language else {})}
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        with httpx.Client(timeout=httpx.Timeout(_TIMEOUT_SECONDS, connect=_CONNECT_SECONDS)) as client:
            response = client.post(f"{base_url}/v1/audio/transcriptions", data=fields, headers=headers,
                                   files={"file": (path.name, audio, content_type)})
    except httpx.TimeoutException:
        raise TranscribeCliError(f"timed out waiting for the gateway at {base_url}") from None
    except httpx.HTTPError as exc:
        raise TranscribeCliError(f"failed to reach gateway at {base_url} ({exc.__class__.__name__}: {exc}). Start it "
                                 "with `codex-trio run`, or set --base-url / CODEX_API_BASE_URL / "
                                 "~/.config/codex-api/base_url") from None
    if response.status_code == 401:
        raise TranscribeCliError(f"HTTP 401 {error_message(response)}: wrong or missing gateway key; set "
                                 "CODEX_API_TOKEN or write it to ~/.config/codex-api/token")
    if response.status_code >= 400:
        raise TranscribeCliError(f"HTTP {response.status_code} {error_message(response)}")
    return response.text if response_format != "text" else response.text.rstrip("\n")


def cmd_transcribe(args: argparse.Namespace) -> int:
    """The `codex-trio transcribe` subcommand."""
    base_url, token = resolve_credentials(args.base_url, args.token)
    try:
        print(request_transcript(base_url, token, Path(args.file), model=args.model, language=args.language,
                                 response_format=args.response_format))
    except TranscribeCliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register(commands: "argparse._SubParsersAction", _common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("transcribe", help="transcribe an audio file through a running gateway",
                                 description=DESCRIPTION)
    add_arguments(parser).set_defaults(handler=cmd_transcribe)
