"""`codex-trio image "<prompt>"`: generate one image through a running gateway and save it in the workspace.

Where the gateway is and its key: `gateway_client.py` (flags, then environment, then ~/.config/codex-api).

Prints the saved path on stdout (progress on stderr unless `--quiet`). Exit status: 0 saved, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys
from pathlib import Path

from .gateway_client import CONFIG_DIR, DEFAULT_BASE_URL, error_message, resolve_credentials

DEFAULT_MODEL = "gpt-5.5"
_TIMEOUT_SECONDS, _CONNECT_SECONDS = 300.0, 10.0  # one image takes 15–40 s, large ones longer
_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


class ImageCliError(Exception):
    """A failure with a message that says what to do."""


DESCRIPTION = "Generate an image through a running gateway and save it into the current project."


def _parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="codex-trio image", description=DESCRIPTION))


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command's options, on its own parser or on the `codex-trio image` subcommand."""
    parser.add_argument("prompt", help="what to draw (1-3 sentences: subject, style, composition)")
    parser.add_argument("-o", "--out", help="file to write (overwritten if it exists); default "
                        "assets/generated/<slug>.<ext>, auto-numbered, never overwriting")
    parser.add_argument("--size", default="auto", help="auto, 1024x1024, 1536x1024, 1024x1536, 2048x2048, "
                        "3840x2160, ... (default auto)")
    parser.add_argument("--format", default="png", choices=("png", "jpeg", "webp"), dest="output_format")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"chat model hosting image_generation (default "
                        f"{DEFAULT_MODEL})")
    parser.add_argument("--base-url", help="gateway URL (default: $CODEX_API_BASE_URL, ~/.config/codex-api/base_url, "
                        f"{DEFAULT_BASE_URL})")
    parser.add_argument("--token", help="gateway API key (default: $CODEX_API_TOKEN, ~/.config/codex-api/token)")
    parser.add_argument("--quiet", action="store_true", help="print only the saved path")
    return parser


def slugify(prompt: str, limit: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")
    slug = slug[:limit].rstrip("-")
    return slug or "image"


def default_path(prompt: str, extension: str, root: Path) -> Path:
    """assets/generated/<slug>.<ext>, or <slug>-2, -3, ... when taken."""
    folder = root / "assets" / "generated"
    slug = slugify(prompt)
    candidate = folder / f"{slug}.{extension}"
    number = 2
    while candidate.exists():
        candidate = folder / f"{slug}-{number}.{extension}"
        number += 1
    return candidate


def request_image(base_url: str, token: str | None, prompt: str, *, size: str, output_format: str,
                  model: str) -> tuple[bytes, str | None]:
    """POST /v1/images/generations; (image bytes, revised prompt). Raises ImageCliError."""
    import httpx  # here, so building the `codex-trio` parser stays quick

    headers = {"User-Agent": "codex-trio-image/1", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"model": model, "prompt": prompt, "size": size, "output_format": output_format,
            "response_format": "b64_json", "n": 1}
    url = f"{base_url}/v1/images/generations"
    try:
        with httpx.Client(timeout=httpx.Timeout(_TIMEOUT_SECONDS, connect=_CONNECT_SECONDS)) as client:
            response = client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise ImageCliError(f"timed out waiting for the gateway at {base_url}; large images can take minutes, "
                            "retry or pick a smaller --size") from None
    except httpx.HTTPError as exc:
        raise ImageCliError(f"failed to reach gateway at {base_url} ({exc.__class__.__name__}: {exc}). Start it "
                            "with `codex-trio run`, or set --base-url / CODEX_API_BASE_URL / "
                            "~/.config/codex-api/base_url") from None
    if response.status_code == 401:
        raise ImageCliError(f"HTTP 401 {error_message(response)}: wrong or missing gateway key; set "
                            "CODEX_API_TOKEN or write it to ~/.config/codex-api/token")
    if response.status_code == 429:
        raise ImageCliError(f"HTTP 429 {error_message(response)}: the subscription is rate-limited; wait for the "
                            "limit to reset and retry")
    if response.status_code == 502 and "image_generation_failed" in response.text:
        raise ImageCliError("Model did not return an image: rephrase the prompt to ask explicitly for an image "
                            "(\"use the image_generation tool\")")
    if response.status_code >= 400:
        raise ImageCliError(f"HTTP {response.status_code} {error_message(response)}")
    try:
        entry = response.json()["data"][0]
        image = base64.b64decode(entry["b64_json"], validate=True)
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise ImageCliError("Model did not return an image (the gateway reply had no data[0].b64_json): rephrase "
                            "the prompt to ask explicitly for an image") from None
    if not image:
        raise ImageCliError("Model did not return an image (empty image data)")
    revised = entry.get("revised_prompt")
    return image, revised if isinstance(revised, str) else None


def main(argv: list[str] | None = None, *, env: dict[str, str] | None = None, cwd: Path | None = None,
         config_dir: Path = CONFIG_DIR) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on bad usage (2)
        return int(exc.code or 0)
    return run(args, env=env, cwd=cwd, config_dir=config_dir)


def cmd_image(args: argparse.Namespace) -> int:
    """The `codex-trio image` subcommand."""
    return run(args)


def run(args: argparse.Namespace, *, env: dict[str, str] | None = None, cwd: Path | None = None,
        config_dir: Path = CONFIG_DIR) -> int:
    root = cwd or Path.cwd()
    base_url, token = resolve_credentials(args.base_url, args.token, env, config_dir)

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    say(f"generating via {base_url} (model {args.model}, size {args.size}, {args.output_format}) ...")
    try:
        image, revised = request_image(base_url, token, args.prompt, size=args.size,
                                       output_format=args.output_format, model=args.model)
    except ImageCliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out:
        path = Path(args.out)
        path = path if path.is_absolute() else root / path
    else:
        path = default_path(args.prompt, _EXTENSIONS[args.output_format], root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)
    except OSError as exc:
        print(f"error: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return 1
    if revised:
        say(f"revised prompt: {revised}")
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    print(shown)
    return 0


def register(commands: "argparse._SubParsersAction", _common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("image", help="generate an image through a running gateway and save it", description=DESCRIPTION)
    add_arguments(parser).set_defaults(handler=cmd_image)
