"""Local token counting: exact formula arithmetic, image sizes from real encoders, and accuracy against
tiktoken's o200k_base on the real client fixtures.

tiktoken downloads its vocabulary on first use, which fails offline. The `bpe-openai` wheel ships the same
`o200k_base.tiktoken` file; it is placed in a private TIKTOKEN_CACHE_DIR under the name tiktoken looks for,
and tiktoken itself verifies it against its pinned SHA-256 before using it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
from pathlib import Path

import orjson
import pytest
from PIL import Image

from codex_trio.errors import GatewayError
from codex_trio.protocols import anthropic, gemini, token_count
from codex_trio.protocols.codex_request import DEFAULT_INSTRUCTIONS
from tests.conftest import FIXTURES

CLIENTS = FIXTURES / "clients"
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


@pytest.fixture(scope="module")
def o200k(tmp_path_factory):
    tiktoken = pytest.importorskip("tiktoken")
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    spec = importlib.util.find_spec("bpe_openai")  # located, not imported (its import only warns)
    if spec is not None and spec.submodule_search_locations:
        packed = Path(spec.submodule_search_locations[0], "data", "o200k_base.tiktoken.gz")
        if packed.exists():
            (cache / hashlib.sha1(O200K_URL.encode()).hexdigest()).write_bytes(gzip.decompress(packed.read_bytes()))
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        encoding = tiktoken.get_encoding("o200k_base")
    except Exception as exc:  # no vocabulary file anywhere and no network
        pytest.fail(f"o200k_base vocabulary unavailable offline ({exc.__class__.__name__}): bpe-openai (in the "
                    "test extras) ships it")
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous
    return lambda text: len(encoding.encode_ordinary(text))


def chars(text: str) -> int:
    return len(text)


def image_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


# ---- formula ----------------------------------------------------------------------------------------------


def test_formula_is_exact_with_a_known_counter():
    request = {
        "instructions": "abcd",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
            {"type": "function_call", "call_id": "c", "name": "fn", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "out"},
            {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "why"}], "encrypted_content": "x"},
        ],
        "tools": [{"type": "function", "name": "fn", "description": "desc", "parameters": {"type": "object"}},
                  {"type": "web_search"}],
    }
    expected = (3  # reply primer
                + 3 + len("system") + 4  # instructions as a system message
                + 3 + len("user") + 5
                + 3 + 2 + 2
                + 3 + 3
                + 3  # reasoning summary
                + 12 + (7 + 2 + 4 + len('{"type":"object"}')) + 7)
    assert token_count.count_request_tokens(request, chars) == expected


@pytest.mark.parametrize("width, height, detail, tokens", [
    (1024, 1024, "auto", 765),  # OpenAI's documented examples
    (2048, 4096, "high", 1105),
    (4096, 8192, "low", 85),
    (512, 512, "auto", 255),
    (100, 100, "auto", 255),
])
def test_image_tokens(width, height, detail, tokens):
    assert token_count.image_tokens(width, height, detail) == tokens


@pytest.mark.parametrize("fmt, size", [("PNG", (300, 200)), ("JPEG", (640, 480)), ("GIF", (33, 77)),
                                       ("WEBP", (1500, 10)), ("JPEG", (4000, 3000))])
def test_image_size_from_real_files(fmt, size):
    assert token_count.image_size(image_bytes(fmt, size)) == size


def test_lossless_and_extended_webp():
    out = io.BytesIO()
    Image.new("RGBA", (123, 45), (1, 2, 3, 4)).save(out, format="WEBP", lossless=True)
    assert token_count.image_size(out.getvalue()) == (123, 45)
    assert token_count.image_size(b"not an image") is None


def test_inline_image_uses_its_real_size():
    data = base64.b64encode(image_bytes("PNG", (2048, 4096))).decode()
    request = {"input": [{"type": "message", "role": "user", "content": [
        {"type": "input_image", "image_url": f"data:image/png;base64,{data}"},
        {"type": "input_image", "image_url": "https://example.test/unknown.png"},
        {"type": "input_image", "image_url": "https://example.test/small.png", "detail": "low"}]}]}
    assert token_count.count_request_tokens(request, chars) == 3 + 3 + len("user") + 1105 + 765 + 85


# ---- endpoints ---------------------------------------------------------------------------------------------


def test_anthropic_count_tokens_body_and_errors():
    body = orjson.dumps({"model": "claude-x", "system": "sys", "messages": [{"role": "user", "content": "hi"}]})
    assert anthropic.count_tokens(body, chars) == {"input_tokens": 3 + (3 + 6 + 3) + (3 + 4 + 2)}
    with pytest.raises(GatewayError) as caught:
        anthropic.count_tokens(b'{"model": "m"}', chars)
    assert caught.value.status == 400


def test_gemini_count_tokens_both_shapes():
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    plain = gemini.count_tokens("m", orjson.dumps({"contents": contents}), chars)
    wrapped = gemini.count_tokens("m", orjson.dumps({"generateContentRequest": {
        "model": "models/m", "contents": contents, "systemInstruction": {"parts": [{"text": "sys"}]}}}), chars)
    default = len(DEFAULT_INSTRUCTIONS)
    assert plain == {"totalTokens": 3 + (3 + 6 + default) + (3 + 4 + 2)}
    assert wrapped == {"totalTokens": 3 + (3 + 6 + 3) + (3 + 4 + 2)}
    with pytest.raises(GatewayError):
        gemini.count_tokens("m", b'{"generateContentRequest": 3}', chars)


# ---- accuracy on real fixtures -------------------------------------------------------------------------------


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def fixed_overhead(request: dict, count) -> int:
    """The documented per-request, per-item and per-tool constants that plain text content does not have."""
    total = 3 + 3 + count("system")
    if request["instructions"] == DEFAULT_INSTRUCTIONS:
        total += count(request["instructions"])
    for item in request["input"]:
        total += 3 + (count(item["role"]) if item["type"] == "message" else 0)
    return total + (12 + 7 * len(request["tools"]) if request["tools"] else 0)


def anthropic_text(body: dict) -> list[str]:
    system = body.get("system") or []
    pieces = [system] if isinstance(system, str) else [
        b["text"] for b in system if not b["text"].startswith("x-anthropic-billing-header:")]
    for message in body["messages"]:
        content = message["content"]
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if block["type"] == "text":
                pieces.append(block["text"])
            elif block["type"] == "tool_use":
                pieces += [block["name"], compact(block["input"])]
            elif block["type"] == "tool_result":
                pieces.append(block["content"] if isinstance(block["content"], str) else
                              "\n".join(b["text"] for b in block["content"] if b["type"] == "text"))
    for tool in body.get("tools") or []:
        pieces += [tool["name"], tool.get("description", ""), compact(tool["input_schema"])]
    return pieces


def gemini_text(body: dict) -> list[str]:
    pieces = [p["text"] for p in (body.get("systemInstruction") or {}).get("parts", [])]
    for content in body["contents"]:
        for part in content["parts"]:
            if "text" in part:
                pieces.append(part["text"])
            elif "functionCall" in part:
                pieces += [part["functionCall"]["name"], compact(part["functionCall"].get("args", {}))]
            elif "functionResponse" in part:
                pieces.append(compact(part["functionResponse"]["response"]))
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations", tool.get("function_declarations", [])):
            schema = decl.get("parametersJsonSchema") or decl.get("parameters_json_schema") or decl.get("parameters")
            pieces += [decl["name"], decl.get("description", ""), compact(schema)]
    return pieces


def check(counted: int, reference: int, overhead: int) -> None:
    """Within 2 % of the text content once the documented fixed overhead is taken off."""
    assert abs(counted - overhead - reference) <= 0.02 * reference, (counted, overhead, reference)


@pytest.mark.parametrize("name", ["claude-code.messages.json", "claude-code.messages.tool-result.json",
                                  "anthropic-python.messages.tool-result.json", "litellm.anthropic.messages.json"])
def test_anthropic_fixture_accuracy(o200k, name):
    raw = (CLIENTS / name).read_bytes()
    reference = sum(o200k(p) for p in anthropic_text(json.loads(raw)))
    overhead = fixed_overhead(anthropic.parse_request(raw).request, o200k)
    check(anthropic.count_tokens(raw, o200k)["input_tokens"], reference, overhead)


@pytest.mark.parametrize("name", ["gemini-cli.streamGenerateContent.json",
                                  "gemini-cli.streamGenerateContent.function-response.json",
                                  "gemini-cli.router.generateContent.json",
                                  "google-genai-python.generateContent.function-response.json",
                                  "litellm.gemini.generateContent.json"])
def test_gemini_fixture_accuracy(o200k, name):
    raw = (CLIENTS / name).read_bytes()
    reference = sum(o200k(p) for p in gemini_text(json.loads(raw)))
    overhead = fixed_overhead(gemini.parse_request("gemini-mock", raw, False).request, o200k)
    check(gemini.count_tokens("gemini-mock", raw, o200k)["totalTokens"], reference, overhead)


@pytest.mark.parametrize("name", ["claude-code.messages.json", "claude-code.messages.tool-result.json"])
def test_large_fixture_total_is_within_two_percent(o200k, name):
    """On a real agent request the overhead itself is inside the 2 % bound."""
    raw = (CLIENTS / name).read_bytes()
    reference = sum(o200k(p) for p in anthropic_text(json.loads(raw)))
    assert reference > 10000
    assert abs(anthropic.count_tokens(raw, o200k)["input_tokens"] - reference) <= 0.02 * reference


# ---- what the SDKs send to the count endpoints, and that they accept our answer -----------------------------


def test_anthropic_sdk_count_tokens_round_trip():
    import anthropic as sdk
    import httpx2

    def handler(request):
        return httpx2.Response(200, json=anthropic.count_tokens(request.content, chars))

    client = sdk.Anthropic(api_key="k", base_url="http://127.0.0.1:9", max_retries=0,
                           http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    result = client.messages.count_tokens(model="claude-x", system="sys", messages=[{"role": "user", "content": "hi"}])
    assert result.input_tokens == 3 + (3 + 6 + 3) + (3 + 4 + 2)


def test_genai_sdk_count_tokens_round_trip():
    import httpx
    from google import genai
    from google.genai import types

    def handler(request):
        model = request.url.path.rsplit("/", 1)[-1].split(":")[0]
        return httpx.Response(200, json=gemini.count_tokens(model, request.content, chars))

    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url="http://127.0.0.1:9/", api_version="v1beta",
        httpx_client=httpx.Client(transport=httpx.MockTransport(handler))))
    result = client.models.count_tokens(model="gemini-mock", contents="hi")
    default = len(DEFAULT_INSTRUCTIONS)
    assert result.total_tokens == 3 + (3 + 6 + default) + (3 + 4 + 2)
