"""Ollama model endpoints (/api/version, /api/tags, /api/show, /api/ps, /api/pull), checked against what the
official ollama-python client and `codex --oss` read from them."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from ollama._types import ListResponse, ProcessResponse, ProgressResponse, ShowResponse

from codex_trio.errors import GatewayError
from codex_trio.protocols import ollama
from tests.conftest import FIXTURES

CLIENTS = FIXTURES / "clients"
STARTED = "2026-11-22T04:00:00.000000Z"
MODELS = [
    ollama.OllamaModel("gpt-5.4", context_length=400_000, reasoning_efforts=("low", "medium", "high", "xhigh"),
                       default_effort="medium", display_name="GPT-5.4"),
    ollama.OllamaModel("gpt-5.3-codex-spark", context_length=272_000, vision=False),
    ollama.OllamaModel("qwen3:8b"),
]


def test_version_is_new_enough_for_codex_oss():
    version = ollama.version_body()["version"]
    assert tuple(int(p) for p in version.split(".")) >= (0, 13, 4)
    assert ollama.version_body("0.18.3") == {"version": "0.18.3"}


def test_tags_lists_every_model_in_ollama_shape():
    body = ollama.tags_body(MODELS, modified_at=STARTED)
    first = body["models"][0]
    assert first == {"name": "gpt-5.4", "model": "gpt-5.4", "modified_at": STARTED, "size": 0,
                     "digest": hashlib.sha256(b"gpt-5.4").hexdigest(),
                     "details": {"parent_model": "", "format": "codex", "family": "gpt-5.4", "families": ["gpt-5.4"],
                                 "parameter_size": "unknown", "quantization_level": "unknown"}}
    assert [m["details"]["family"] for m in body["models"]] == ["gpt-5.4", "gpt-5.3", "qwen3"]
    parsed = ListResponse.model_validate(orjson.loads(orjson.dumps(body)))  # what ollama.Client().list() does
    assert [m.model for m in parsed.models] == ["gpt-5.4", "gpt-5.3-codex-spark", "qwen3:8b"]


def test_show_accepts_model_and_legacy_name():
    by_model = ollama.show_body(b'{"model":"gpt-5.4"}', MODELS, modified_at=STARTED)
    assert by_model == ollama.show_body(b'{"name":"gpt-5.4:latest"}', MODELS, modified_at=STARTED)
    assert by_model["capabilities"] == ["completion", "tools", "thinking", "vision"]
    assert by_model["parameters"] == "num_ctx 400000\nreasoning medium"
    assert by_model["model_info"]["gpt-5.4.context_length"] == 400_000
    assert by_model["model_info"]["general.architecture"] == "gpt-5.4"
    assert by_model["template"] == "{{ .Prompt }}"
    shown = ShowResponse.model_validate(orjson.loads(orjson.dumps(by_model)))  # ollama.Client().show()
    assert shown.capabilities == ["completion", "tools", "thinking", "vision"]
    assert shown.modelinfo["context_length"] == 400_000


def test_show_capabilities_follow_model_and_disable_vision():
    spark = ollama.show_body(b'{"model":"gpt-5.3-codex-spark"}', MODELS, modified_at=STARTED)
    assert spark["capabilities"] == ["completion", "tools"]
    assert spark["parameters"] == "num_ctx 272000"
    no_vision = ollama.show_body(b'{"model":"gpt-5.4"}', MODELS, modified_at=STARTED, disable_vision=True)
    assert "vision" not in no_vision["capabilities"]


@pytest.mark.parametrize("body, status, message", [
    (b'{"model":"llama3.2"}', 404, "model 'llama3.2' not found"),
    (b"{}", 400, "model is required"),
    (b"nope", 400, None),
])
def test_show_errors(body, status, message):
    with pytest.raises(GatewayError) as info:
        ollama.show_body(body, MODELS, modified_at=STARTED)
    assert info.value.status == status
    if message:
        assert ollama.encode_error(info.value) == (status, {"error": message})


def test_ps_lists_models_as_loaded():
    body = ollama.ps_body(MODELS[:1], expires_at="2026-11-22T05:00:00Z")
    assert body["models"][0]["expires_at"] == "2026-11-22T05:00:00Z"
    parsed = ProcessResponse.model_validate(body)  # ollama.Client().ps()
    assert (parsed.models[0].model, parsed.models[0].context_length) == ("gpt-5.4", 400_000)


def test_codex_oss_pull_of_known_model_streams_success():
    content_type, body = ollama.pull_reply((CLIENTS / "codex-oss.probe-pull.json").read_bytes(), MODELS)
    assert content_type == "application/x-ndjson"
    statuses = [ProgressResponse.model_validate_json(line).status for line in body.splitlines()]
    assert statuses == ["pulling manifest", "verifying sha256 digest", "writing manifest", "success"]


def test_pull_not_streaming_and_unknown_model():
    assert ollama.pull_reply(b'{"name":"gpt-5.4","stream":false}', MODELS) == (
        "application/json", b'{"status":"success"}')
    with pytest.raises(GatewayError) as info:
        ollama.pull_reply(b'{"model":"llama3.2","stream":true}', MODELS)
    assert info.value.status == 404
    assert "cannot pull" in info.value.message
