"""`codex-trio image` against a local stub of the gateway's /v1/images/generations.

The stub is built from the gateway's own pieces: the real request parser (so the CLI's body must pass the real
validation) and the real response encoder fed with a realistic upstream image stream.
"""

from __future__ import annotations

import base64
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from codex_trio.commands import image as image_cli
from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.protocols import images, openai_chat
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.upstream.events import CodexEvent, EventNormalizer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 32


class Stub:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[tuple[dict[str, str], dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                stub.requests.append((dict(self.headers), orjson.loads(body)))
                status, payload = stub.answer(self.path, self.headers.get("authorization"), body)
                raw = orjson.dumps(payload)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, auth: str | None, body: bytes) -> tuple[int, dict]:
        if path != "/v1/images/generations":
            return 404, {"error": {"message": "not found", "type": "not_found_error", "param": None, "code": None}}
        if auth != "Bearer good-key":
            return openai_chat.encode_error(GatewayError(401, "Missing or invalid API key", ErrorKind.AUTHENTICATION,
                                                         code="invalid_api_key"))
        if self.mode == "429":
            return openai_chat.encode_error(GatewayError(429, "The usage limit has been reached",
                                                         ErrorKind.RATE_LIMIT, code="usage_limit_reached"))
        try:
            turn = images.parse_generations_request(body, host_model="gpt-5.5")
            fmt = turn.request["tools"][0]["output_format"]
            data = JPEG if fmt == "jpeg" else PNG
            item = {"type": "image_generation_call", "id": "ig_1", "status": "completed",
                    "result": base64.b64encode(data).decode(), "revised_prompt": "revised", "output_format": fmt}
            raw = [{"type": "response.created", "response": {"id": "r"}}]
            if self.mode != "text-only":
                raw.append({"type": "response.output_item.done", "output_index": 0, "item": item})
            raw.append({"type": "response.completed", "response": {"id": "r", "status": "completed", "output": []}})
            normalizer = EventNormalizer()
            events = [n for e in raw for n in normalizer.feed(CodexEvent(e["type"], e))]
            return 200, images.encode_generations_response(turn, events, ResponseMeta("i", "gpt-5.5", 1700000000))
        except GatewayError as err:
            return openai_chat.encode_error(err)


@pytest.fixture
def stub():
    server = Stub()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def run(args, tmp_path, capsys, env=None, config_dir=None):
    code = image_cli.main(args, env=env or {}, cwd=tmp_path, config_dir=config_dir or tmp_path / "no-config")
    out, err = capsys.readouterr()
    return code, out, err


def test_default_path_auto_numbers_and_never_overwrites(stub, tmp_path, capsys):
    env = {"CODEX_API_BASE_URL": stub.url, "CODEX_API_TOKEN": "good-key"}
    code, out, err = run(["A green leaf, flat design!", "--size", "1024x1024"], tmp_path, capsys, env)
    assert code == 0 and out == "assets/generated/a-green-leaf-flat-design.png\n"
    assert (tmp_path / "assets/generated/a-green-leaf-flat-design.png").read_bytes() == PNG
    assert "revised prompt: revised" in err
    code, out, _ = run(["A green leaf, flat design!"], tmp_path, capsys, env)
    assert out == "assets/generated/a-green-leaf-flat-design-2.png\n"
    headers, body = stub.requests[0]
    assert body == {"model": "gpt-5.5", "prompt": "A green leaf, flat design!", "size": "1024x1024",
                    "output_format": "png", "response_format": "b64_json", "n": 1}
    assert headers["Authorization"] == "Bearer good-key"


def test_out_overwrites_and_quiet_prints_only_path(stub, tmp_path, capsys):
    target = tmp_path / "brand" / "leaf.jpg"
    target.parent.mkdir()
    target.write_bytes(b"old")
    code, out, err = run(["leaf", "-o", "brand/leaf.jpg", "--format", "jpeg", "--quiet", "--base-url", stub.url,
                          "--token", "good-key"], tmp_path, capsys)
    assert code == 0 and out == "brand/leaf.jpg\n" and err == ""
    assert target.read_bytes() == JPEG
    code, out, _ = run(["leaf", "--format", "webp", "--quiet", "--base-url", stub.url, "--token", "good-key"],
                       tmp_path, capsys)
    assert out == "assets/generated/leaf.webp\n"


def test_credentials_precedence(stub, tmp_path, capsys):
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "base_url").write_text(stub.url + "/\n")
    (config / "token").write_text("good-key\n")
    assert run(["from file", "--quiet"], tmp_path, capsys, config_dir=config)[0] == 0
    env = {"CODEX_API_TOKEN": "bad-env-key"}
    code, _, err = run(["env beats file"], tmp_path, capsys, env, config)
    assert code == 1 and "HTTP 401" in err and "CODEX_API_TOKEN" in err
    assert run(["flag beats env", "--token", "good-key"], tmp_path, capsys, env, config)[0] == 0
    assert [h["Authorization"] for h, _ in stub.requests] == ["Bearer good-key", "Bearer bad-env-key",
                                                              "Bearer good-key"]


def test_rate_limited_and_no_image_and_invalid_size(stub, tmp_path, capsys):
    env = {"CODEX_API_BASE_URL": stub.url, "CODEX_API_TOKEN": "good-key"}
    stub.mode = "429"
    code, _, err = run(["x"], tmp_path, capsys, env)
    assert code == 1 and "HTTP 429" in err and "rate-limited" in err
    stub.mode = "text-only"
    code, _, err = run(["x"], tmp_path, capsys, env)
    assert code == 1 and "Model did not return an image" in err
    stub.mode = "ok"
    code, _, err = run(["x", "--size", "1000x1000"], tmp_path, capsys, env)
    assert code == 1 and "HTTP 400" in err and "divisible by 16" in err
    assert not (tmp_path / "assets").exists()


def test_unreachable_gateway(tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, err = run(["x", "--base-url", f"http://127.0.0.1:{port}"], tmp_path, capsys)
    assert code == 1 and out == "" and "failed to reach gateway" in err and "codex-trio run" in err


def test_usage_errors(tmp_path, capsys):
    assert run([], tmp_path, capsys)[0] == 2
    assert run(["x", "--format", "gif"], tmp_path, capsys)[0] == 2


def test_slugify():
    assert image_cli.slugify("  Hello, World!  ") == "hello-world"
    assert image_cli.slugify("!!!") == "image"
    assert len(image_cli.slugify("word " * 40)) <= 48
